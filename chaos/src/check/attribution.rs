//! Which batch fed which window counter, and what each counter ended up holding.
//!
//! The drills send rate signals only, at most one per (gate, cohort, metric, arm) in a batch, so
//! a batch adds exactly its trials to one counter per signal. A counter's final value comes
//! from the nodes' window aggregates (`Gates/ListWindows`) where a node lists the window, else
//! from the evidence of the decision that judged the window (its `window_samples_treatment` / `window_samples_control`, recorded as `samples_*`).
//!
//! Per idempotency key: acknowledged (some attempt answered OK: counted exactly once, minus the
//! signals the answer rejected), maybe (no OK, some attempt unknown: each signal counted once
//! or not at all), or refused (every attempt failed: not counted).

use std::collections::BTreeMap;

use crate::history::{Call, DecisionRecord, Millis, Outcome, Record};

/// One counter: a metric's arm in one window of one cohort of one gate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    pub gate: String,
    pub cohort: String,
    pub metric: String,
    pub arm: String,
    pub window_start: Millis,
}

impl std::fmt::Display for CounterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{} window {}",
            self.gate, self.cohort, self.metric, self.arm, self.window_start
        )
    }
}

/// What the history says one counter must hold, and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    /// The final value on the nodes.
    pub observed: u64,
    /// Sum of the acknowledged batches' accepted trials.
    pub acked: u64,
    /// Trials of batches with an unknown outcome (each may or may not be in).
    pub maybe: Vec<u64>,
    /// Ops of the acknowledged batches (every attempt).
    pub acked_ops: Vec<u64>,
    /// Ops of batches attempted more than once.
    pub retried_ops: Vec<u64>,
    /// Ops of batches with an unknown outcome.
    pub maybe_ops: Vec<u64>,
}

/// The attribution of a whole record.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub checked: BTreeMap<CounterKey, Counter>,
    /// Counters fed by batches whose window has no known final value.
    pub unchecked: usize,
    /// Sum of accepted signals over acknowledged batches, and over maybe batches.
    pub acked_signals: u64,
    pub maybe_signals: u64,
}

#[derive(Default)]
struct Batch {
    ops: Vec<u64>,
    /// Accepted signal positions of the OK answer, when there is one.
    ok_rejected: Option<Vec<u32>>,
    unknown: bool,
    signals: Vec<crate::history::SignalRec>,
}

/// Groups attempts by key and adds each batch to the counters its signals fall in.
pub fn attribute(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Attribution {
    let observed = observed(record, logs);
    let mut batches: BTreeMap<&str, Batch> = BTreeMap::new();
    for op in &record.ops {
        let Call::Ingest { input, output } = &op.call else {
            continue;
        };
        let batch = batches.entry(input.key.as_str()).or_default();
        batch.ops.push(op.id);
        if batch.signals.is_empty() {
            batch.signals.clone_from(&input.signals);
        }
        match (op.outcome, output) {
            (Outcome::Ok, Some(out)) => batch.ok_rejected = Some(out.rejected.clone()),
            (Outcome::Unknown, _) => batch.unknown = true,
            _ => {}
        }
    }
    let mut result = Attribution::default();
    let mut unchecked = std::collections::BTreeSet::new();
    for batch in batches.values() {
        let retried = batch.ops.len() > 1;
        for (i, s) in batch.signals.iter().enumerate() {
            let position = u32::try_from(i).unwrap_or(u32::MAX);
            let acked = match &batch.ok_rejected {
                Some(rejected) if rejected.contains(&position) => continue,
                Some(_) => true,
                None if batch.unknown => false,
                None => continue,
            };
            if acked {
                result.acked_signals += 1;
            } else {
                result.maybe_signals += 1;
            }
            let Some((key, value)) = locate(&observed, s) else {
                unchecked.insert((s.gate.clone(), s.cohort.clone(), s.metric.clone(), s.at_ms));
                continue;
            };
            let counter = result.checked.entry(key).or_insert_with(|| Counter {
                observed: value,
                ..Counter::default()
            });
            if acked {
                counter.acked += s.trials;
                counter.acked_ops.extend(&batch.ops);
            } else {
                counter.maybe.push(s.trials);
                counter.maybe_ops.extend(&batch.ops);
            }
            if retried {
                counter.retried_ops.extend(&batch.ops);
            }
        }
    }
    result.unchecked = unchecked.len();
    result
}

/// Window bounds and final value of every counter the nodes report.
type Observed = BTreeMap<(String, String, String, String), Vec<(Millis, Millis, u64)>>;

fn observed(record: &Record, logs: &BTreeMap<String, Vec<DecisionRecord>>) -> Observed {
    let mut out: Observed = BTreeMap::new();
    // The evidence of the decision that judged each window first: its own samples.
    for (gate, log) in logs {
        for d in log {
            let (Some(start), Some(end)) = (d.window_start, d.window_end) else {
                continue;
            };
            for e in &d.evidence {
                for (arm, value) in [
                    ("treatment", e.samples_treatment),
                    ("control", e.samples_control),
                ] {
                    out.entry((
                        gate.clone(),
                        e.cohort.clone(),
                        e.metric.clone(),
                        arm.to_owned(),
                    ))
                    .or_default()
                    .push((start, end, value));
                }
            }
        }
    }
    // Then the window aggregates from the API, when a node exposes them (the first such node
    // wins: `convergence` checks the nodes agree): they are the counters themselves, also for
    // a window decided before it closed (an early kill), which keeps taking on-time signals
    // its decision's evidence does not hold. Window length comes from the judged windows.
    let lengths: BTreeMap<&str, Millis> = logs
        .iter()
        .filter_map(|(g, log)| {
            log.iter()
                .find_map(|d| Some(d.window_end? - d.window_start?))
                .map(|len| (g.as_str(), len))
        })
        .collect();
    if let Some(windows) = record.nodes.iter().find_map(|n| n.windows.as_ref()) {
        for w in windows {
            let Some(len) = lengths.get(w.gate.as_str()) else {
                continue;
            };
            for (arm, value) in [
                ("treatment", w.samples_treatment),
                ("control", w.samples_control),
            ] {
                let counters = out
                    .entry((
                        w.gate.clone(),
                        w.cohort.clone(),
                        w.metric.clone(),
                        arm.to_owned(),
                    ))
                    .or_default();
                counters.retain(|(start, _, _)| *start != w.window_start);
                counters.push((w.window_start, w.window_start + len, value));
            }
        }
    }
    out
}

fn locate(observed: &Observed, s: &crate::history::SignalRec) -> Option<(CounterKey, u64)> {
    let windows = observed.get(&(
        s.gate.clone(),
        s.cohort.clone(),
        s.metric.clone(),
        s.arm.clone(),
    ))?;
    let &(start, _, value) = windows
        .iter()
        .find(|(start, end, _)| *start <= s.at_ms && s.at_ms < *end)?;
    Some((
        CounterKey {
            gate: s.gate.clone(),
            cohort: s.cohort.clone(),
            metric: s.metric.clone(),
            arm: s.arm.clone(),
            window_start: start,
        },
        value,
    ))
}

/// Whether some subset of `items` sums to exactly `target`.
pub fn subset_sum(items: &[u64], target: u64) -> bool {
    let mut reachable = std::collections::BTreeSet::from([0u64]);
    for &item in items {
        let next: Vec<u64> = reachable
            .iter()
            .map(|r| r + item)
            .filter(|s| *s <= target)
            .collect();
        reachable.extend(next);
        if reachable.contains(&target) {
            return true;
        }
    }
    reachable.contains(&target)
}
