//! The checker: a drill's record in, one verdict per invariant out. Pure: no IO, no clock.
//!
//! One invariant per module; each returns the violations it found, every violation naming
//! the operations (op ids of the history) and nodes involved.
//!
//! - [`acked_not_lost`]: an acknowledged batch is in the window aggregates;
//! - [`counted_once`]: a batch (however often retried) is counted at most once;
//! - [`logs_agree`]: every node's decision log is a prefix of one sequence, and every read
//!   reports the state that sequence has at the version it names;
//! - [`linearizable`]: linearizable reads and overrides form a linearizable history of the
//!   gate-state register (Wing–Gong search, [`crate::wgl`]);
//! - [`kill_switch`]: a kill switch is turned off only by an operator's resume;
//! - [`one_decision`]: at most one decision per gate, cohort and window, none from a deposed
//!   leader after its successor decided;
//! - [`convergence`]: after healing, every node holds the same state;
//! - [`watch`]: each watcher saw every decision, in order, exactly once;
//! - [`clock`]: cluster time stays near the true clock and no gate is blinded.

pub mod acked_not_lost;
pub mod attribution;
pub mod clock;
pub mod convergence;
pub mod counted_once;
pub mod kill_switch;
pub mod linearizable;
pub mod logs_agree;
pub mod one_decision;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{DecisionRecord, NodeFinal, Record};

/// The invariants the drills prove (`docs/design.md`, "Invariants").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    AckedNotLost,
    CountedOnce,
    LogsAgree,
    Linearizable,
    KillSwitch,
    OneDecision,
    Convergence,
    Watch,
    Clock,
}

impl Invariant {
    pub const ALL: [Invariant; 9] = [
        Invariant::AckedNotLost,
        Invariant::CountedOnce,
        Invariant::LogsAgree,
        Invariant::Linearizable,
        Invariant::KillSwitch,
        Invariant::OneDecision,
        Invariant::Convergence,
        Invariant::Watch,
        Invariant::Clock,
    ];

    /// A short column name.
    pub fn short(self) -> &'static str {
        match self {
            Invariant::AckedNotLost => "lost",
            Invariant::CountedOnce => "once",
            Invariant::LogsAgree => "prefix",
            Invariant::Linearizable => "linear",
            Invariant::KillSwitch => "kill",
            Invariant::OneDecision => "1/window",
            Invariant::Convergence => "converge",
            Invariant::Watch => "watch",
            Invariant::Clock => "clock",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Invariant::AckedNotLost => "acknowledged batch not lost",
            Invariant::CountedOnce => "retried batch counted once",
            Invariant::LogsAgree => "decision logs prefixes of one sequence",
            Invariant::Linearizable => "linearizable reads linearizable",
            Invariant::KillSwitch => "kill switch off only by operator resume",
            Invariant::OneDecision => "one decision per gate, cohort, window",
            Invariant::Convergence => "nodes converge after healing",
            Invariant::Watch => "watch saw every decision in order exactly once",
            Invariant::Clock => "cluster time near the true clock, no blind gate",
        };
        f.write_str(name)
    }
}

/// One broken promise, with the operations (op ids) that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub message: String,
    pub ops: Vec<u64>,
}

impl Violation {
    pub fn new(invariant: Invariant, message: impl Into<String>, ops: Vec<u64>) -> Self {
        Self {
            invariant,
            message: message.into(),
            ops,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.invariant.short(), self.message)?;
        if !self.ops.is_empty() {
            let shown: Vec<String> = self.ops.iter().take(20).map(|o| format!("#{o}")).collect();
            write!(f, " (ops {}", shown.join(" "))?;
            if self.ops.len() > 20 {
                write!(f, " and {} more", self.ops.len() - 20)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// How much the checks could cover (a check with nothing to look at proves nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Window counters (gate, cohort, metric, arm, window) compared with acknowledged batches.
    pub counters_checked: usize,
    /// Counters fed by the workload whose window was never judged (not checkable).
    pub counters_unchecked: usize,
    pub linearizable_ops: usize,
    /// Gates whose search ran out of budget.
    pub linearizable_inconclusive: usize,
    pub decisions: usize,
    pub watch_events: usize,
}

/// The checker's verdict on one record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub coverage: Coverage,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn holds(&self, invariant: Invariant) -> bool {
        self.violations.iter().all(|v| v.invariant != invariant)
    }
}

/// Knobs of the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Steps the linearizability search may take per gate before it says inconclusive.
    pub search_budget: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            search_budget: 5_000_000,
        }
    }
}

/// Runs every check.
pub fn check(record: &Record, options: Options) -> Report {
    let logs = reference_logs(&record.nodes);
    let mut report = Report::default();
    let attribution = attribution::attribute(record, &logs);
    report.coverage.counters_checked = attribution.checked.len();
    report.coverage.counters_unchecked = attribution.unchecked;
    report.coverage.decisions = logs.values().map(Vec::len).sum();
    report
        .violations
        .extend(acked_not_lost::check(&attribution, record));
    report
        .violations
        .extend(counted_once::check(&attribution, record));
    report.violations.extend(logs_agree::check(record, &logs));
    let (lin, lin_ops, inconclusive) = linearizable::check(record, &logs, options.search_budget);
    report.violations.extend(lin);
    report.coverage.linearizable_ops = lin_ops;
    report.coverage.linearizable_inconclusive = inconclusive;
    report.violations.extend(kill_switch::check(record, &logs));
    report.violations.extend(one_decision::check(record, &logs));
    report.violations.extend(convergence::check(record));
    let (w, events) = watch::check(record, &logs);
    report.violations.extend(w);
    report.coverage.watch_events = events;
    report.violations.extend(clock::check(record, &logs));
    report
}

/// Each gate's reference decision sequence: the longest log any node holds. (Whether the
/// others are prefixes of it is `logs_agree`'s job.)
pub fn reference_logs(nodes: &[NodeFinal]) -> BTreeMap<String, Vec<DecisionRecord>> {
    let mut logs: BTreeMap<String, Vec<DecisionRecord>> = BTreeMap::new();
    for node in nodes.iter().filter(|n| n.reachable) {
        for (gate, g) in &node.gates {
            let longest = logs.entry(gate.clone()).or_default();
            if g.decisions.len() > longest.len() {
                longest.clone_from(&g.decisions);
            }
        }
    }
    logs
}

/// A gate's state after each version of its log: (kill switch, exposure per cohort).
pub fn states_by_version(log: &[DecisionRecord]) -> Vec<(bool, BTreeMap<String, f64>)> {
    let mut states = Vec::with_capacity(log.len() + 1);
    let mut exposure = BTreeMap::new();
    states.push((false, exposure.clone()));
    for d in log {
        for c in &d.changes {
            exposure.insert(c.cohort.clone(), c.to_exposure);
        }
        states.push((d.kill_switch, exposure.clone()));
    }
    states
}
