//! Invariant 3: reads that ask for linearizable consistency are linearizable.
//!
//! The register is a gate's state, named by its version (`logs_agree` checks that the content
//! at each version is the log's). Client operations on it: linearizable reads (observe version
//! v) and overrides (install version w). The leader's own decisions and contract changes also
//! move the version, at moments no client sees, so the model lets the version advance freely
//! between client operations but never go back:
//!
//! - read v is legal in state s if v >= s, and leaves s = v;
//! - override w is legal in state s if s < w, and leaves s = w.
//!
//! An override with an unknown outcome is found in the final log by its unique reason: if it
//! is there, it has a version and may take effect any time after its call; if not, it never
//! took effect and constrains nothing. The search is [`crate::wgl`], one gate at a time.
//! Also: a read cannot return a version decided after the read returned.

use std::collections::BTreeMap;

use super::{Invariant, Violation};
use crate::history::{Call, Consistency, DecisionRecord, Outcome, Record};
use crate::wgl::{self, Model, Timed, Verdict};

/// How far a node's decision stamp may be ahead of the client's clock (same machine).
pub const CLOCK_SLACK_US: i64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOp {
    Read(u64),
    Install(u64),
}

/// The gate-state register, with versions that only grow.
pub struct GateRegister;

impl Model for GateRegister {
    type State = u64;
    type Op = RegisterOp;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, state: &u64, op: &RegisterOp) -> Option<u64> {
        match *op {
            RegisterOp::Read(v) => (v >= *state).then_some(v),
            RegisterOp::Install(w) => (w > *state).then_some(w),
        }
    }
}

/// Returns violations, the number of operations checked, and how many gates were inconclusive.
pub fn check(
    record: &Record,
    logs: &BTreeMap<String, Vec<DecisionRecord>>,
    budget: u64,
) -> (Vec<Violation>, usize, usize) {
    let mut per_gate: BTreeMap<&str, Vec<Timed<RegisterOp>>> = BTreeMap::new();
    let mut out = Vec::new();
    for op in &record.ops {
        let (gate, timed) = match (&op.call, op.outcome) {
            (
                Call::Read {
                    input,
                    output: Some(v),
                },
                Outcome::Ok,
            ) if input.consistency == Consistency::Linearizable => {
                let decided_at = logs
                    .get(&input.gate)
                    .and_then(|l| l.iter().find(|d| d.version == v.version))
                    .map(|d| d.at_ms * 1000);
                if decided_at.is_some_and(|at| at > op.end + CLOCK_SLACK_US) {
                    out.push(Violation::new(
                        Invariant::Linearizable,
                        format!(
                            "gate {}: read returned version {} before it was decided",
                            input.gate, v.version
                        ),
                        vec![op.id],
                    ));
                }
                (
                    input.gate.as_str(),
                    Timed {
                        id: op.id,
                        call: op.start,
                        ret: Some(op.end),
                        op: RegisterOp::Read(v.version),
                    },
                )
            }
            (
                Call::Override {
                    input,
                    output: Some(d),
                },
                Outcome::Ok,
            ) => (
                input.gate.as_str(),
                Timed {
                    id: op.id,
                    call: op.start,
                    ret: Some(op.end),
                    op: RegisterOp::Install(d.version),
                },
            ),
            (Call::Override { input, .. }, Outcome::Unknown) => {
                let applied = logs.get(&input.gate).and_then(|l| {
                    l.iter()
                        .find(|d| d.by_operator(&input.actor) && d.reason.ends_with(&input.reason))
                });
                let Some(d) = applied else { continue };
                (
                    input.gate.as_str(),
                    Timed {
                        id: op.id,
                        call: op.start,
                        ret: None,
                        op: RegisterOp::Install(d.version),
                    },
                )
            }
            _ => continue,
        };
        per_gate.entry(gate).or_default().push(timed);
    }
    let mut checked = 0;
    let mut inconclusive = 0;
    for (gate, ops) in &per_gate {
        checked += ops.len();
        match wgl::check(&GateRegister, ops, budget) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => inconclusive += 1,
            Verdict::NotLinearizable { stuck, placed } => out.push(Violation::new(
                Invariant::Linearizable,
                format!(
                    "gate {gate}: no linearization of {} operations; after {placed} placed, none of the pending ones fits",
                    ops.len()
                ),
                stuck,
            )),
        }
    }
    (out, checked, inconclusive)
}
