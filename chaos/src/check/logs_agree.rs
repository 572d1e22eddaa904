//! Invariant 2: every node's decision log is a prefix of one sequence, and no two observers
//! disagree on a gate's state at the same version.
//!
//! Checks each node's log against the reference (the longest log), then every answer that
//! names a version — reads (linearizable or local), evaluations, overrides — against the
//! reference state at that version. An answer naming a version no node holds is a decision
//! that was shown to a client and then lost.

use std::collections::BTreeMap;

use super::{states_by_version, Invariant, Violation};
use crate::history::{Call, DecisionRecord, Outcome, Record};

pub fn check(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for node in record.nodes.iter().filter(|n| n.reachable) {
        for (gate, g) in &node.gates {
            let reference = logs.get(gate).map_or(&[][..], Vec::as_slice);
            for (i, d) in g.decisions.iter().enumerate() {
                let expected = u64::try_from(i + 1).unwrap_or(u64::MAX);
                if d.version != expected {
                    out.push(Violation::new(
                        Invariant::LogsAgree,
                        format!(
                            "node {} gate {gate}: decision #{expected} has version {}",
                            node.node, d.version
                        ),
                        Vec::new(),
                    ));
                    break;
                }
                if reference.get(i).is_some_and(|r| !r.same_as(d)) {
                    out.push(Violation::new(
                        Invariant::LogsAgree,
                        format!(
                            "node {} gate {gate}: version {expected} is `{}` by {} but another node has `{}` by {}",
                            node.node, d.action, d.decided_by, reference[i].action, reference[i].decided_by
                        ),
                        Vec::new(),
                    ));
                    break;
                }
            }
        }
    }
    let states: BTreeMap<&str, _> = logs
        .iter()
        .map(|(g, log)| (g.as_str(), states_by_version(log)))
        .collect();
    for op in record.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let (gate, version, kill, cohorts): (&str, u64, bool, Vec<(&str, f64)>) = match &op.call {
            Call::Read {
                input,
                output: Some(v),
            } => (
                &input.gate,
                v.version,
                v.kill_switch,
                v.cohorts
                    .iter()
                    .map(|(c, s)| (c.as_str(), s.exposure))
                    .collect(),
            ),
            Call::Evaluate {
                input,
                output: Some(v),
            } => (
                &input.gate,
                v.gate_version,
                v.kill_switch,
                vec![(input.cohort.as_str(), v.exposure)],
            ),
            Call::Override {
                input,
                output: Some(d),
            } => {
                let held = logs
                    .get(&input.gate)
                    .and_then(|l| l.iter().find(|r| r.version == d.version));
                if held.is_some_and(|r| !r.same_as(d)) {
                    out.push(Violation::new(
                        Invariant::LogsAgree,
                        format!("gate {}: override answered version {} that the log holds as another decision", input.gate, d.version),
                        vec![op.id],
                    ));
                }
                (&input.gate, d.version, d.kill_switch, Vec::new())
            }
            _ => continue,
        };
        let Some(by_version) = states.get(gate) else {
            out.push(Violation::new(
                Invariant::LogsAgree,
                format!("gate {gate}: read at version {version}, but no node has the gate"),
                vec![op.id],
            ));
            continue;
        };
        let Some((ref_kill, ref_exposure)) = usize::try_from(version)
            .ok()
            .and_then(|v| by_version.get(v))
        else {
            out.push(Violation::new(
                Invariant::LogsAgree,
                format!(
                    "gate {gate}: {} answered version {version}, but the nodes hold only {} decisions (a shown decision was lost)",
                    op.call.kind(),
                    by_version.len() - 1
                ),
                vec![op.id],
            ));
            continue;
        };
        let exposure_differs = cohorts
            .iter()
            .any(|(c, e)| ref_exposure.get(*c).is_some_and(|r| (r - e).abs() > 1e-9));
        if *ref_kill != kill || exposure_differs {
            out.push(Violation::new(
                Invariant::LogsAgree,
                format!(
                    "gate {gate}: {} at version {version} saw kill switch {kill} and exposures {cohorts:?}; the log has {ref_kill} and {ref_exposure:?}",
                    op.call.kind()
                ),
                vec![op.id],
            ));
        }
    }
    out
}
