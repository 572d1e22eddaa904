//! Invariant 9, clocks: cluster time stays within a bound of the true clock (the drill
//! runner's, on the same machine), and no gate is blinded: on-time signals are accepted and
//! windows are judged to the end of the run, whatever one node's clock says.
//!
//! - every decision's time and every judged window's end are at most `AHEAD_MS` after the
//!   end of the last operation of the history (a leader that moved cluster time ahead judges
//!   windows of the future and stamps decisions with its clock);
//! - of the signals of acknowledged batches sent promptly (the call started *and was answered*
//!   within `PROMPT_MS` of the signal's time: the cluster judges lateness on arrival, somewhere
//!   in the call, so a call that took seconds through a restart may rightly arrive late) in
//!   windows after the gate's first judged one, at most `max(2, 1%)` are refused (a cluster
//!   time ahead refuses them as late; one far behind, as from the future);
//! - each gate that judged windows judged them up to `BEHIND_MS` before the last ingest (a
//!   leader whose clock runs slow must not stop decisions).

use std::collections::BTreeMap;

use super::{Invariant, Violation};
use crate::history::{Call, DecisionRecord, Outcome, Record};

/// How far ahead of the true clock a decision may be stamped: rampart's default
/// max_clock_skew_ms (5 s) plus 1 s for the runner's own timing.
pub const AHEAD_MS: i64 = 6_000;
/// A signal is on time when its batch was sent, and answered, this soon after its time.
pub const PROMPT_MS: i64 = 300;
/// How far before the last ingest the last judged window may end: a drill window (2 s),
/// its grace (0.5 s), and 2.5 s of slack.
pub const BEHIND_MS: i64 = 5_000;

pub fn check(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(end_ms) = record.ops.iter().map(|o| o.end / 1000).max() else {
        return out;
    };
    for node in record.nodes.iter().filter(|n| n.reachable) {
        for (gate, g) in &node.gates {
            for d in &g.decisions {
                let latest = d.window_end.map_or(d.at_ms, |e| e.max(d.at_ms));
                if latest > end_ms + AHEAD_MS {
                    out.push(Violation::new(
                        Invariant::Clock,
                        format!(
                            "node {} gate {gate} version {}: decision at {} for a window ending {:?}, {} ms after the history ended",
                            node.node, d.version, d.at_ms, d.window_end, latest - end_ms
                        ),
                        Vec::new(),
                    ));
                    break;
                }
            }
        }
    }
    // The first judged window of each (gate, cohort): signals before it may be refused (the
    // contract was applied after them).
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (gate, log) in logs {
        for d in log {
            if let Some(start) = d.window_start {
                first
                    .entry((gate.as_str(), d.cohort.as_str()))
                    .or_insert(start);
            }
        }
    }
    let (mut prompt, mut refused) = (0usize, Vec::new());
    let mut last_ingest: BTreeMap<&str, i64> = BTreeMap::new();
    for op in &record.ops {
        let Call::Ingest {
            input,
            output: Some(output),
        } = &op.call
        else {
            continue;
        };
        if op.outcome != Outcome::Ok || output.duplicate {
            continue;
        }
        for (i, s) in input.signals.iter().enumerate() {
            let at = last_ingest.entry(s.gate.as_str()).or_default();
            *at = (*at).max(op.start / 1000);
            let counted = first
                .get(&(s.gate.as_str(), s.cohort.as_str()))
                .is_some_and(|f| s.at_ms >= *f);
            if !counted || op.end / 1000 - s.at_ms > PROMPT_MS {
                continue;
            }
            prompt += 1;
            if output
                .rejected
                .contains(&u32::try_from(i).unwrap_or(u32::MAX))
            {
                refused.push(op.id);
            }
        }
    }
    let count = refused.len();
    if count > 2.max(prompt / 100) {
        refused.dedup();
        out.push(Violation::new(
            Invariant::Clock,
            format!("{count} of {prompt} on-time signals refused (a blind gate)"),
            refused,
        ));
    }
    for (gate, log) in logs {
        let Some(last_end) = log.iter().filter_map(|d| d.window_end).max() else {
            continue;
        };
        if let Some(last) = last_ingest.get(gate.as_str()) {
            if last_end < last - BEHIND_MS {
                out.push(Violation::new(
                    Invariant::Clock,
                    format!(
                        "gate {gate}: the last judged window ends at {last_end}, {} ms before the last ingest (decisions stopped)",
                        last - last_end
                    ),
                    Vec::new(),
                ));
            }
        }
    }
    out
}
