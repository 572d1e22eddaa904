//! A drill's row: what ran, what it cost (leader changes, unavailability, decision latency)
//! and each invariant's verdict; printed as a table and kept as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::drills::Outcome;
use super::observers::LeaderSample;
use super::plan::GAMEDAY;
use crate::check::{Invariant, Report};
use crate::history::{Call, Micros, Outcome as OpOutcome};

/// The grace of the drill contracts, in ms (a window is judged after its end + grace).
const GRACE_MS: i64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub drill: String,
    pub target: String,
    pub skipped: Option<String>,
    /// Wall time of the whole drill (set-up, workload, settling, collection), in seconds.
    pub seconds: u64,
    pub ops: usize,
    pub faults: u32,
    pub leader_changes: usize,
    /// Longest time with no acknowledged batch, in ms.
    pub longest_unavailable_ms: i64,
    /// From a window's close (end + grace) to its decision reaching the watcher: median, max.
    pub decision_latency_ms: Option<(i64, i64)>,
    /// Game days: from the breaching batch's acknowledgement to the rollback seen by the watcher.
    pub breach_to_rollback_ms: Option<i64>,
    pub verdicts: BTreeMap<Invariant, bool>,
    /// (time µs, leader, term) each time the sampled leader changed.
    pub leaders: Vec<(Micros, Option<u64>, u64)>,
    pub report: Report,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.report.ok()
    }
}

fn leader_changes(samples: &[LeaderSample]) -> usize {
    let mut changes = 0;
    let mut current: Option<(u64, u64)> = None;
    for s in samples {
        let Some(leader) = s.leader else { continue };
        if current.is_some_and(|c| c != (leader, s.term)) {
            changes += 1;
        }
        current = Some((leader, s.term));
    }
    changes
}

fn transitions(samples: &[LeaderSample]) -> Vec<(Micros, Option<u64>, u64)> {
    let mut out: Vec<(Micros, Option<u64>, u64)> = Vec::new();
    for s in samples {
        if out.last().is_none_or(|l| (l.1, l.2) != (s.leader, s.term)) {
            out.push((s.at, s.leader, s.term));
        }
    }
    out
}

pub fn row(drill: &str, target: &str, seconds: u64, outcome: &Outcome, report: Report) -> Row {
    let ops = &outcome.record.ops;
    let mut acks: Vec<Micros> = ops
        .iter()
        .filter(|o| o.outcome == OpOutcome::Ok && matches!(o.call, Call::Ingest { .. }))
        .map(|o| o.end)
        .collect();
    acks.sort_unstable();
    let longest = acks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) / 1000;
    let mut first_seen: BTreeMap<(String, u64), (Micros, Option<i64>, bool)> = BTreeMap::new();
    for op in ops {
        if let Call::Watch { output, .. } = &op.call {
            for item in output.iter().filter(|i| !i.state) {
                let Some(d) = &item.decision else { continue };
                first_seen
                    .entry((item.gate.clone(), item.version))
                    .or_insert((
                        item.at,
                        d.window_end,
                        d.kill_switch && !d.kill_switch_before,
                    ));
            }
        }
    }
    let mut latencies: Vec<i64> = first_seen
        .values()
        .filter_map(|(at, end, _)| end.map(|e| at / 1000 - (e + GRACE_MS)))
        .collect();
    latencies.sort_unstable();
    let decision_latency_ms = (!latencies.is_empty()).then(|| {
        (
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1],
        )
    });
    let breach_to_rollback_ms = outcome.breach_ack.and_then(|ack| {
        first_seen
            .iter()
            .filter(|((gate, _), (at, _, killed))| gate == GAMEDAY && *killed && *at >= ack)
            .map(|(_, (at, _, _))| (at - ack) / 1000)
            .min()
    });
    let verdicts = Invariant::ALL
        .iter()
        .map(|i| (*i, report.holds(*i)))
        .collect();
    Row {
        drill: drill.to_owned(),
        target: target.to_owned(),
        skipped: outcome.skipped.clone(),
        seconds,
        ops: ops.len(),
        faults: outcome.faults,
        leader_changes: leader_changes(&outcome.leader_samples),
        longest_unavailable_ms: longest,
        decision_latency_ms,
        breach_to_rollback_ms,
        verdicts,
        leaders: transitions(&outcome.leader_samples),
        report,
    }
}

pub fn header() -> String {
    let mut h = format!(
        "{:<20} {:<8} {:>4} {:>5} {:>6} {:>7} {:>8} {:>15} {:>9}",
        "drill",
        "target",
        "secs",
        "ops",
        "faults",
        "leaders",
        "unavail",
        "latency p50/max",
        "breach"
    );
    for i in Invariant::ALL {
        h.push_str(&format!(" {:>8}", i.short()));
    }
    h
}

pub fn line(r: &Row) -> String {
    if let Some(why) = &r.skipped {
        return format!("{:<20} {:<8} skipped: {why}", r.drill, r.target);
    }
    let latency = r
        .decision_latency_ms
        .map_or("-".to_owned(), |(p50, max)| format!("{p50}/{max}ms"));
    let breach = r
        .breach_to_rollback_ms
        .map_or("-".to_owned(), |b| format!("{b}ms"));
    let mut l = format!(
        "{:<20} {:<8} {:>4} {:>5} {:>6} {:>7} {:>6}ms {:>15} {:>9}",
        r.drill,
        r.target,
        r.seconds,
        r.ops,
        r.faults,
        r.leader_changes,
        r.longest_unavailable_ms,
        latency,
        breach
    );
    for i in Invariant::ALL {
        let ok = r.verdicts.get(&i).copied().unwrap_or(false);
        l.push_str(&format!(" {:>8}", if ok { "ok" } else { "VIOLATED" }));
    }
    l
}
