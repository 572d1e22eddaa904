//! The engine: statistics and policy, nothing else.
//!
//! Pure functions of (contract, window aggregates, cohort state) → judgement with evidence.
//! No IO, no clock, no async, no locks: the leader's evaluator and the backtester call the
//! same code and get the same answers.
//!
//! # Layout
//!
//! - [`contract`]: the contract language and its validation.
//! - [`signal`], [`window`]: signals and their exact per-window aggregates.
//! - [`stats`]: tests and intervals (z, Welch, mSPRT, SRM), checked against scipy/statsmodels.
//! - [`judge`] and [`reliability`]: one metric in one window → rules met, or unreliable.
//! - [`topics`]: severe complaint topics new in the treatment.
//! - [`policy`]: `evaluate`, the entry point: streaks, zones, precedence; [`decide`] turns
//!   the outcome into a verdict and the next cohort state; [`reason`] writes the sentences.
//! - [`evidence`]: what is stored with every decision.
//! - [`backtest`]: replays a signal file through `evaluate` in event time.
//! - [`bucket`]: sticky bucketing of units into exposure.
//!
//! The engine's statistics, the error-rate control and the measured false-alarm rate and
//! power are summarised in `docs/engine.md` and `docs/engine-report.md`.

pub mod backtest;
pub mod bucket;
pub mod contract;
pub mod decide;
pub mod evidence;
pub mod judge;
pub mod policy;
pub mod reason;
pub mod reliability;
pub mod signal;
pub mod stats;
pub mod topics;
mod validate;
pub mod window;

pub use contract::{Contract, ContractError, FieldError};
pub use evidence::{MetricEvidence, TopicEvidence, Zone};
pub use policy::{evaluate, CohortState, CohortStatus, EvaluationInput, Judgement, Verdict};
pub use signal::{Arm, Measurement, Signal, SignalError, SignalLine};
pub use window::{CohortWindow, Window};
