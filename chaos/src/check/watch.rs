//! Invariant 8: a watch stream delivers every decision, in order, exactly once — across
//! reconnections that resume from the last version seen.
//!
//! Per watcher (client) and gate: a stream starts from a state snapshot (version v) or resumes
//! after the version the watcher saw last; then each decision must be the next version, with
//! the content the log holds at that version. A watcher whose last stream was closed by the
//! runner (outcome ok, after the nodes converged) must have reached the gate's final version.

use std::collections::BTreeMap;

use super::{Invariant, Violation};
use crate::history::{Call, DecisionRecord, Outcome, Record};

/// Returns the violations and the number of events checked.
pub fn check(
    record: &Record,
    logs: &BTreeMap<String, Vec<DecisionRecord>>,
) -> (Vec<Violation>, usize) {
    let mut out = Vec::new();
    let mut events = 0;
    let mut streams: BTreeMap<u32, Vec<&crate::history::Op>> = BTreeMap::new();
    for op in &record.ops {
        if matches!(op.call, Call::Watch { .. }) {
            streams.entry(op.client).or_default().push(op);
        }
    }
    for (client, mut ops) in streams {
        ops.sort_by_key(|o| o.start);
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        let mut last_op: BTreeMap<&str, &crate::history::Op> = BTreeMap::new();
        for op in ops {
            let Call::Watch { input, output } = &op.call else {
                continue;
            };
            let mut fresh: BTreeMap<&str, bool> = BTreeMap::new();
            for gate in &input.gates {
                last_op.insert(gate, op);
                match (input.after_version.get(gate), last.get(gate.as_str())) {
                    (Some(&after), Some(&seen)) if after != seen => out.push(Violation::new(
                        Invariant::Watch,
                        format!("watcher {client} gate {gate}: resumed after version {after} but had seen {seen}"),
                        vec![op.id],
                    )),
                    (Some(&after), _) => {
                        last.insert(gate, after);
                    }
                    (None, _) => {
                        fresh.insert(gate, true);
                    }
                }
            }
            for item in output {
                events += 1;
                let gate = item.gate.as_str();
                if item.state {
                    let before = last.get(gate).copied();
                    if fresh.remove(gate).is_none() && before.is_some_and(|b| item.version < b) {
                        out.push(Violation::new(
                            Invariant::Watch,
                            format!("watcher {client} gate {gate}: state snapshot at version {} after seeing {}", item.version, before.unwrap_or(0)),
                            vec![op.id],
                        ));
                    }
                    last.insert(gate, item.version);
                    continue;
                }
                if fresh.contains_key(gate) {
                    out.push(Violation::new(
                        Invariant::Watch,
                        format!(
                            "watcher {client} gate {gate}: decision {} before the state snapshot",
                            item.version
                        ),
                        vec![op.id],
                    ));
                }
                let expected = last.get(gate).copied().unwrap_or(0) + 1;
                if item.version != expected {
                    let what = if item.version < expected {
                        "again (duplicate or out of order)"
                    } else {
                        "skipping decisions"
                    };
                    out.push(Violation::new(
                        Invariant::Watch,
                        format!("watcher {client} gate {gate}: got version {} {what}; expected {expected}", item.version),
                        vec![op.id],
                    ));
                }
                let held = logs.get(gate).and_then(|l| {
                    usize::try_from(item.version)
                        .ok()
                        .and_then(|v| l.get(v.wrapping_sub(1)))
                });
                if let (Some(d), Some(r)) = (&item.decision, held) {
                    if !r.same_as(d) {
                        out.push(Violation::new(
                            Invariant::Watch,
                            format!("watcher {client} gate {gate}: version {} is not the log's decision", item.version),
                            vec![op.id],
                        ));
                    }
                }
                last.insert(gate, item.version.max(last.get(gate).copied().unwrap_or(0)));
            }
        }
        for (gate, op) in last_op {
            if op.outcome != Outcome::Ok {
                continue;
            }
            let final_version = logs
                .get(gate)
                .map_or(0, |l| u64::try_from(l.len()).unwrap_or(u64::MAX));
            let seen = last.get(gate).copied().unwrap_or(0);
            if seen < final_version {
                out.push(Violation::new(
                    Invariant::Watch,
                    format!("watcher {client} gate {gate}: saw up to version {seen}; the log reached {final_version}"),
                    vec![op.id],
                ));
            }
        }
    }
    (out, events)
}
