//! Invariant 1a: a signal batch acknowledged to a client is never lost.
//!
//! Each window counter must hold at least the trials of the acknowledged batches that fell in
//! it. A shortfall names the acknowledged batches of that counter. When the nodes expose their
//! `signals_accepted` counter, it must reach the acknowledged batches' accepted signals.

use super::attribution::Attribution;
use super::{Invariant, Violation};
use crate::history::Record;

pub fn check(attribution: &Attribution, record: &Record) -> Vec<Violation> {
    let mut out = Vec::new();
    for (key, counter) in &attribution.checked {
        if counter.observed < counter.acked {
            let mut ops = counter.acked_ops.clone();
            ops.sort_unstable();
            ops.dedup();
            out.push(Violation::new(
                Invariant::AckedNotLost,
                format!(
                    "{key} holds {} trials but acknowledged batches sent {} ({} missing)",
                    counter.observed,
                    counter.acked,
                    counter.acked - counter.observed
                ),
                ops,
            ));
        }
    }
    for node in record.nodes.iter().filter(|n| n.reachable) {
        if let Some(total) = node.signals_accepted {
            if total < attribution.acked_signals {
                out.push(Violation::new(
                    Invariant::AckedNotLost,
                    format!(
                        "node {} accepted {total} signals; acknowledged batches hold {}",
                        node.node, attribution.acked_signals
                    ),
                    Vec::new(),
                ));
            }
        }
    }
    out
}
