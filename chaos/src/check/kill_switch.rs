//! Invariant 4: a kill switch, once on, stays on until an operator's resume.
//!
//! Walks each gate's decision log: the switch a decision starts from is the one the previous
//! decision left; it goes off only in an `override:resume` decided by an operator, and that
//! resume must be one a client of the history asked for. An evaluation that reports the kill
//! switch on must have served the fallback.

use std::collections::BTreeMap;

use super::{Invariant, Violation};
use crate::history::{Call, DecisionRecord, Outcome, Record};

pub fn check(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for (gate, log) in logs {
        let mut on = false;
        for d in log {
            if d.kill_switch_before != on {
                out.push(Violation::new(
                    Invariant::KillSwitch,
                    format!(
                        "gate {gate} version {}: starts from kill switch {} but version {} left it {on}",
                        d.version,
                        d.kill_switch_before,
                        d.version.saturating_sub(1)
                    ),
                    Vec::new(),
                ));
            }
            if on && !d.kill_switch {
                let asked: Vec<u64> = record
                    .ops
                    .iter()
                    .filter(|o| o.outcome != Outcome::Failed)
                    .filter(|o| match &o.call {
                        Call::Override { input, .. } => {
                            input.gate == *gate
                                && input.kind == "resume"
                                && d.by_operator(&input.actor)
                                && d.reason.ends_with(&input.reason)
                        }
                        _ => false,
                    })
                    .map(|o| o.id)
                    .collect();
                if d.action != "override:resume" || !d.decided_by.starts_with("operator:") {
                    out.push(Violation::new(
                        Invariant::KillSwitch,
                        format!(
                            "gate {gate} version {}: kill switch turned off by `{}` ({}), not by an operator's resume",
                            d.version, d.action, d.decided_by
                        ),
                        Vec::new(),
                    ));
                } else if asked.is_empty() {
                    out.push(Violation::new(
                        Invariant::KillSwitch,
                        format!(
                            "gate {gate} version {}: a resume ({}) that no operator call of the history asked for",
                            d.version, d.reason
                        ),
                        Vec::new(),
                    ));
                }
            }
            on = d.kill_switch;
        }
    }
    for op in record.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if let Call::Evaluate {
            input,
            output: Some(e),
        } = &op.call
        {
            if e.kill_switch && e.treatment {
                out.push(Violation::new(
                    Invariant::KillSwitch,
                    format!(
                        "gate {} version {}: evaluation served the treatment with the kill switch on",
                        input.gate, e.gate_version
                    ),
                    vec![op.id],
                ));
            }
        }
    }
    out
}
