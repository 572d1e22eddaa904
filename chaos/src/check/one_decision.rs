//! Invariant 5: at most one decision per gate, cohort and window; no decision of a deposed
//! leader applied after its successor decided.
//!
//! Looks at every engine decision (those that judged a window) in every node's log: a
//! (gate, cohort, window) judged twice is a violation, and so is a leader decision whose term
//! is lower than that of an earlier leader decision of the same gate.

use std::collections::{BTreeMap, BTreeSet};

use super::{Invariant, Violation};
use crate::history::{DecisionRecord, Record};

/// The term of `leader:<node>@<term>`.
pub fn leader_term(decided_by: &str) -> Option<u64> {
    decided_by
        .strip_prefix("leader:")?
        .split_once('@')?
        .1
        .parse()
        .ok()
}

fn check_log(where_: &str, gate: &str, log: &[DecisionRecord], out: &mut Vec<Violation>) {
    let mut judged: BTreeMap<(&str, i64), u64> = BTreeMap::new();
    let mut newest_term: Option<(u64, u64)> = None;
    for d in log {
        if let Some(start) = d.window_start {
            if let Some(first) = judged.insert((d.cohort.as_str(), start), d.version) {
                out.push(Violation::new(
                    Invariant::OneDecision,
                    format!(
                        "{where_}gate {gate} cohort {} window {start}: decided at version {first} and again at {}",
                        d.cohort, d.version
                    ),
                    Vec::new(),
                ));
            }
        }
        if let Some(term) = leader_term(&d.decided_by) {
            if let Some((seen, at)) = newest_term {
                if term < seen {
                    out.push(Violation::new(
                        Invariant::OneDecision,
                        format!(
                            "{where_}gate {gate} version {}: decided by a leader of term {term} after version {at} of term {seen} (a deposed leader's decision applied)",
                            d.version
                        ),
                        Vec::new(),
                    ));
                }
            }
            if newest_term.is_none_or(|(seen, _)| term >= seen) {
                newest_term = Some((term, d.version));
            }
        }
    }
}

pub fn check(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for (gate, log) in logs {
        check_log("", gate, log, &mut out);
    }
    // A node whose log diverges from the reference is `logs_agree`'s finding; a duplicate
    // there is reported once per node.
    let mut seen = BTreeSet::new();
    for node in record.nodes.iter().filter(|n| n.reachable) {
        for (gate, g) in &node.gates {
            if logs.get(gate).is_some_and(|l| l.starts_with(&g.decisions)) {
                continue;
            }
            let mut found = Vec::new();
            check_log(
                &format!("node {}: ", node.node),
                gate,
                &g.decisions,
                &mut found,
            );
            for v in found {
                if seen.insert(v.message.clone()) {
                    out.push(v);
                }
            }
        }
    }
    out
}
