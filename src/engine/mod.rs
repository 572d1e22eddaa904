//! The engine: statistics and policy, nothing else.
//!
//! Pure functions of (contract, window aggregates, cohort state) → judgement with evidence.
//! No IO, no clock, no async, no locks: the leader's evaluator and the backtester call the
//! same code and get the same answers.
//!
//! # Layout
//!
//! - [`contract`]: the contract language and its validation.
//! - [`signal`], [`window`]: signals and their exact per-window aggregates; [`sketch`]:
//!   mergeable latency sketches.
//! - [`stats`]: tests and intervals (z, Welch, mSPRT, SRM), checked against scipy/statsmodels.
//! - [`budget`]: how the contract's α is shared so the guarantee holds per gate.
//! - [`spans`]: the evidence spans each test is judged on (restarts, change detection).
//! - [`judge`] and [`reliability`]: one metric in one window → rules met, or unreliable;
//!   the cohort's sample-ratio check.
//! - [`topics`]: severe complaint topics, compared between the arms.
//! - [`policy`]: `evaluate`, the entry point: streaks, zones, precedence; [`decide`] turns
//!   the outcome into a verdict and the next cohort state; [`reason`] writes the sentences.
//! - [`evidence`]: what is stored with every decision.
//! - [`backtest`]: replays a signal file through `evaluate` in event time.
//! - [`bucket`]: sticky bucketing of units into exposure.
//! - [`notify`]: the contract's webhooks and the events they subscribe to.
//!
//! The engine's statistics, the error-rate control and the measured false-alarm rate and
//! power are summarised in `docs/engine.md` and `docs/engine-report.md`.

pub mod backtest;
pub mod bucket;
pub mod budget;
pub mod contract;
pub mod decide;
pub mod evidence;
pub mod judge;
pub mod notify;
pub mod policy;
pub mod reason;
pub mod reliability;
pub mod signal;
pub mod sketch;
pub mod spans;
pub mod stats;
pub mod topics;
mod validate;
pub mod window;

pub use contract::{Contract, ContractError, FieldError};
pub use evidence::{Figures, MetricEvidence, TopicEvidence, Zone};
pub use policy::{
    early_kill, evaluate, CohortState, CohortStatus, EvaluationInput, Judgement, Verdict,
};
pub use signal::{Arm, Measurement, Signal, SignalError, SignalLine};
pub use window::{CohortWindow, Window};
