//! Invariant 1b: a batch retried with the same idempotency key is counted once.
//!
//! Beyond the acknowledged batches, a counter may only hold some subset of the batches whose
//! outcome is unknown, each at most once. Anything else was counted twice (or invented); the
//! violation names the retried batches of that counter. When the nodes expose their
//! `signals_accepted` counter, the total is bounded the same way.

use super::attribution::{subset_sum, Attribution};
use super::{Invariant, Violation};
use crate::history::Record;

pub fn check(attribution: &Attribution, record: &Record) -> Vec<Violation> {
    let mut out = Vec::new();
    for (key, counter) in &attribution.checked {
        if counter.observed <= counter.acked {
            continue;
        }
        let extra = counter.observed - counter.acked;
        if subset_sum(&counter.maybe, extra) {
            continue;
        }
        let mut ops = if counter.retried_ops.is_empty() {
            counter.acked_ops.clone()
        } else {
            counter.retried_ops.clone()
        };
        ops.extend(&counter.maybe_ops);
        ops.sort_unstable();
        ops.dedup();
        out.push(Violation::new(
            Invariant::CountedOnce,
            format!(
                "{key} holds {} trials: {} acknowledged plus {extra} that no set of unknown batches {:?} adds up to (a batch counted twice?)",
                counter.observed, counter.acked, counter.maybe
            ),
            ops,
        ));
    }
    let high = attribution.acked_signals + attribution.maybe_signals;
    for node in record.nodes.iter().filter(|n| n.reachable) {
        let Some(total) = node.signals_accepted else {
            continue;
        };
        if total > high {
            out.push(Violation::new(
                Invariant::CountedOnce,
                format!(
                    "node {} accepted {total} signals; the history allows at most {high}",
                    node.node
                ),
                Vec::new(),
            ));
        }
    }
    out
}
