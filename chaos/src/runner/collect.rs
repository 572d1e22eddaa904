//! The end of a drill: wait until every node has judged the last windows and agrees, then
//! read every node's final state (locally from each).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;

use super::client::{decision_record, gate_view, Pool};
use super::plan::{GAMEDAY, GATE};
use crate::history::{GateFinal, NodeFinal, WindowSamples};

/// Waits (at most 40 s) until every node has judged the windows up to `last_signal` and all
/// agree on each gate's version; returns the versions.
pub(super) async fn settle(pool: &Pool, last_signal: i64) -> BTreeMap<String, u64> {
    let window_start = last_signal.div_euclid(2000) * 2000;
    let until = Instant::now() + Duration::from_secs(40);
    let mut versions = BTreeMap::new();
    while Instant::now() < until {
        let mut per_node: Vec<BTreeMap<String, u64>> = Vec::new();
        let mut judged = true;
        for id in pool.ids() {
            let mut map = BTreeMap::new();
            for gate in [GATE, GAMEDAY] {
                let request = pb::GetGateRequest {
                    gate: gate.into(),
                    consistency: pb::Consistency::Local as i32,
                };
                if let Ok(g) = GatesClient::new(pool.channel(id)).get_gate(request).await {
                    let g = g.into_inner();
                    judged &= g.cohorts.iter().all(|c| {
                        c.last_window
                            .as_ref()
                            .is_some_and(|w| rampart::api::convert::millis(w) >= window_start)
                    });
                    map.insert(gate.to_owned(), g.version);
                } else {
                    judged = false;
                }
            }
            per_node.push(map);
        }
        if let Some(first) = per_node.first() {
            versions.clone_from(first);
            if judged && per_node.iter().all(|m| m == first) {
                return versions;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    versions
}

/// Every node's final state, read locally from each.
pub(super) async fn collect(pool: &Pool) -> Vec<NodeFinal> {
    let mut nodes = Vec::new();
    for id in pool.ids() {
        let mut node = NodeFinal {
            node: id,
            reachable: true,
            applied_index: 0,
            gates: BTreeMap::new(),
            signals_accepted: None,
            windows: None,
        };
        let mut windows = Some(Vec::new());
        for gate in [GATE, GAMEDAY] {
            match read_gate(pool, id, gate).await {
                Ok((view, decisions, applied)) => {
                    node.applied_index = node.applied_index.max(applied);
                    node.gates
                        .insert(gate.to_owned(), GateFinal { view, decisions });
                }
                Err(_) => node.reachable = false,
            }
            // A node that cannot list windows (an older binary) leaves the counters to the
            // decisions' evidence.
            if let Some(all) = windows.as_mut() {
                match read_windows(pool, id, gate).await {
                    Ok(w) => all.extend(w),
                    Err(_) => windows = None,
                }
            }
        }
        node.windows = windows;
        if !node.reachable {
            node.gates.clear();
        }
        nodes.push(node);
    }
    nodes
}

/// The window aggregates a node holds for a gate, read locally.
async fn read_windows(pool: &Pool, id: u64, gate: &str) -> anyhow::Result<Vec<WindowSamples>> {
    let mut client = GatesClient::new(pool.channel(id));
    let reply = client
        .list_windows(pb::ListWindowsRequest {
            gate: gate.into(),
            consistency: pb::Consistency::Local as i32,
            ..pb::ListWindowsRequest::default()
        })
        .await?
        .into_inner();
    Ok(reply
        .windows
        .iter()
        .map(|w| WindowSamples {
            gate: gate.to_owned(),
            cohort: w.cohort.clone(),
            metric: w.metric.clone(),
            window_start: w
                .window_start
                .as_ref()
                .map_or(0, rampart::api::convert::millis),
            samples_treatment: w.samples_treatment,
            samples_control: w.samples_control,
        })
        .collect())
}

async fn read_gate(
    pool: &Pool,
    id: u64,
    gate: &str,
) -> anyhow::Result<(
    crate::history::GateView,
    Vec<crate::history::DecisionRecord>,
    u64,
)> {
    let mut client = GatesClient::new(pool.channel(id));
    let local = pb::Consistency::Local as i32;
    let state = client
        .get_gate(pb::GetGateRequest {
            gate: gate.into(),
            consistency: local,
        })
        .await?
        .into_inner();
    let mut decisions = Vec::new();
    loop {
        let after = decisions
            .last()
            .map_or(0, |d: &crate::history::DecisionRecord| d.version);
        let page = client
            .list_decisions(pb::ListDecisionsRequest {
                gate: gate.into(),
                after_version: after,
                limit: 1000,
                consistency: local,
            })
            .await?
            .into_inner();
        if page.decisions.is_empty() {
            break;
        }
        decisions.extend(page.decisions.iter().map(decision_record));
    }
    // The log only grows: what was applied after the state was read is cut off, so the view
    // and the log describe the same moment.
    let at_version = usize::try_from(state.version).unwrap_or(usize::MAX);
    if decisions.len() < at_version {
        bail!("node {id} gate {gate}: decision log shorter than its version");
    }
    decisions.truncate(at_version);
    let applied = state.read.as_ref().map_or(0, |r| r.applied_index);
    Ok((gate_view(&state), decisions, applied))
}
