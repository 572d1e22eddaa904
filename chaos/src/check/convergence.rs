//! Invariant 7 (and DESIGN's "a node that crashes restarts from its own disk and catches up"):
//! after the faults heal, every node holds the same state.
//!
//! Every member must be reachable, hold every gate, with the same version, the same decision
//! log length and the same view (kill switch, exposures); the view must be the one its own
//! last decision left.

use super::{states_by_version, Invariant, Violation};
use crate::history::Record;

pub fn check(record: &Record) -> Vec<Violation> {
    let mut out = Vec::new();
    for node in record.nodes.iter().filter(|n| !n.reachable) {
        out.push(Violation::new(
            Invariant::Convergence,
            format!("node {} could not be read after healing", node.node),
            Vec::new(),
        ));
    }
    let reachable: Vec<_> = record.nodes.iter().filter(|n| n.reachable).collect();
    let Some(first) = reachable.first() else {
        if !record.nodes.is_empty() {
            out.push(Violation::new(
                Invariant::Convergence,
                "no node could be read",
                Vec::new(),
            ));
        }
        return out;
    };
    let gates: std::collections::BTreeSet<&String> =
        reachable.iter().flat_map(|n| n.gates.keys()).collect();
    for gate in gates {
        for node in &reachable {
            let Some(g) = node.gates.get(gate) else {
                out.push(Violation::new(
                    Invariant::Convergence,
                    format!("node {} does not hold gate {gate}", node.node),
                    Vec::new(),
                ));
                continue;
            };
            let n = u64::try_from(g.decisions.len()).unwrap_or(u64::MAX);
            if g.view.version != n {
                out.push(Violation::new(
                    Invariant::Convergence,
                    format!(
                        "node {} gate {gate}: at version {} with {n} decisions",
                        node.node, g.view.version
                    ),
                    Vec::new(),
                ));
            }
            let states = states_by_version(&g.decisions);
            if let Some((kill, exposure)) = states.last() {
                let differs = g.view.cohorts.iter().any(|(c, v)| {
                    exposure
                        .get(c)
                        .is_some_and(|e| (e - v.exposure).abs() > 1e-9)
                });
                if *kill != g.view.kill_switch || differs {
                    out.push(Violation::new(
                        Invariant::Convergence,
                        format!(
                            "node {} gate {gate}: its state is not what its decision log leaves",
                            node.node
                        ),
                        Vec::new(),
                    ));
                }
            }
            if let Some(f) = first.gates.get(gate) {
                if f.view.version != g.view.version {
                    out.push(Violation::new(
                        Invariant::Convergence,
                        format!(
                            "gate {gate}: node {} is at version {} and node {} at {}",
                            first.node, f.view.version, node.node, g.view.version
                        ),
                        Vec::new(),
                    ));
                }
            }
        }
    }
    out
}
