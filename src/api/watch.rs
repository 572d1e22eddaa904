//! Watch streams: the current state of each gate, then every decision in order, exactly once.
//!
//! Served from the node's own applied state, on any node. The stream subscribes to applied
//! decisions *before* reading the state, then skips what it already sent by version, so nothing
//! falls between the two. A subscriber that lags behind the broadcast buffer re-reads the
//! decision log from its last version: it is never silently skipped ahead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert::{decision, gate_key, gate_state};
use super::error::ApiError;
use crate::ids::GateKey;
use crate::node::Node;
use crate::proto::v1 as pb;
use crate::state::State;

/// Seconds without a known leader before a watch stream ends.
const LEADERLESS_CHECKS: u32 = 3;

/// Most gates one stream may watch.
const MAX_GATES: usize = 1000;

type Event = Result<pb::WatchEvent, Status>;

fn decision_event(d: &crate::state::Decision) -> Event {
    Ok(pb::WatchEvent {
        event: Some(pb::watch_event::Event::Decision(decision(d))),
    })
}

/// A watch request's gates and resume points, checked; errors name the field.
pub fn parse_request(
    request: &pb::WatchRequest,
) -> Result<(BTreeSet<GateKey>, BTreeMap<GateKey, u64>), ApiError> {
    if request.gates.is_empty() {
        return Err(ApiError::invalid("gates", "name at least one gate"));
    }
    if request.gates.len() > MAX_GATES {
        return Err(ApiError::invalid(
            "gates",
            format!("at most {MAX_GATES} gates per stream"),
        ));
    }
    let gates: BTreeSet<GateKey> = request
        .gates
        .iter()
        .enumerate()
        .map(|(i, g)| gate_key(&format!("gates[{i}]"), g))
        .collect::<Result<_, _>>()?;
    let mut resume = BTreeMap::new();
    for (gate, version) in &request.after_version {
        let key = gate_key(&format!("after_version[{gate}]"), gate)?;
        if !gates.contains(&key) {
            return Err(ApiError::invalid(
                format!("after_version[{gate}]"),
                "is not one of the watched gates",
            ));
        }
        resume.insert(key, *version);
    }
    Ok((gates, resume))
}

/// What a watch request names that this node's applied state does not have: an unknown gate
/// (NOT_FOUND, as GetGate says), or a resume version beyond the gate's (OUT_OF_RANGE).
fn missing(
    state: &State,
    gates: &BTreeSet<GateKey>,
    resume: &BTreeMap<GateKey, u64>,
) -> Option<ApiError> {
    for gate in gates {
        let Some(g) = state.gates.get(gate) else {
            return Some(ApiError::NotFound(format!("gate {gate} has no contract")));
        };
        if let Some(&after) = resume.get(gate) {
            if after > g.version {
                return Some(ApiError::OutOfRange {
                    field: format!("after_version[{gate}]"),
                    reason: format!("{after} is beyond the gate's version {}", g.version),
                });
            }
        }
    }
    None
}

/// Starts a watch: validates the request and spawns the producer task. A gate this node
/// does not know, or a resume point beyond its version, is checked again after a read
/// barrier (this node may only lag the one the client saw it on) before it is refused.
pub async fn start(
    node: Arc<Node>,
    request: pb::WatchRequest,
) -> Result<ReceiverStream<Event>, ApiError> {
    let (gates, resume) = parse_request(&request)?;
    if missing(&node.state.read().state, &gates, &resume).is_some() {
        node.read_barrier().await?;
        if let Some(e) = missing(&node.state.read().state, &gates, &resume) {
            return Err(e);
        }
    }
    let (tx, rx) = mpsc::channel(256);
    let decisions = node.state.subscribe();
    tokio::spawn(produce(node, gates, resume, decisions, tx));
    Ok(ReceiverStream::new(rx))
}

/// Events owed to the watcher for `gate` after `last`, read from the state.
fn catch_up(state: &State, gate: &GateKey, last: u64) -> Vec<Event> {
    let Some(g) = state.gates.get(gate) else {
        return Vec::new();
    };
    let from = g.decisions.partition_point(|d| d.version <= last);
    g.decisions[from..].iter().map(decision_event).collect()
}

async fn produce(
    node: Arc<Node>,
    gates: BTreeSet<GateKey>,
    resume: BTreeMap<GateKey, u64>,
    mut decisions: broadcast::Receiver<Arc<crate::state::Decision>>,
    tx: mpsc::Sender<Event>,
) {
    let _open = crate::node::metrics::InFlight::new(&node.metrics.watch_streams);
    let mut last: BTreeMap<GateKey, u64> = BTreeMap::new();
    let mut initial = Vec::new();
    {
        let applied = node.state.read();
        let read = pb::ReadInfo {
            consistency: pb::Consistency::Local as i32,
            applied_index: applied.last_applied.map_or(0, |l| l.index),
            age_ms: node.state.apply_age_ms(),
            node_id: node.id,
        };
        for gate in &gates {
            if let Some(&after) = resume.get(gate) {
                initial.extend(catch_up(&applied.state, gate, after));
                let seen = applied
                    .state
                    .gates
                    .get(gate)
                    .map_or(after, |g| g.version.max(after));
                last.insert(gate.clone(), seen);
            } else if let Some(g) = applied.state.gates.get(gate) {
                initial.push(Ok(pb::WatchEvent {
                    event: Some(pb::watch_event::Event::State(gate_state(g, read))),
                }));
                last.insert(gate.clone(), g.version);
            } else {
                last.insert(gate.clone(), 0);
            }
        }
    }
    for event in initial {
        if tx.send(event).await.is_err() {
            return;
        }
    }
    let mut shutdown = node.shutdown_signal();
    // A node cut off from the cluster would serve a stream that silently stops: after
    // LEADERLESS_CHECKS seconds without a known leader, end it so the client resumes elsewhere.
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut leaderless = 0u32;
    loop {
        let received = tokio::select! {
            r = decisions.recv() => r,
            () = tx.closed() => return,
            _ = shutdown.changed() => {
                let _ = tx.send(Err(Status::unavailable("node shutting down; resume on another node"))).await;
                return;
            }
            _ = check.tick() => {
                leaderless = if node.leader().is_some() { 0 } else { leaderless + 1 };
                if leaderless >= LEADERLESS_CHECKS {
                    let why = "this node has known no leader for 3s; resume on another node";
                    let _ = tx.send(Err(Status::unavailable(why))).await;
                    return;
                }
                continue;
            }
        };
        let owed: Vec<Event> = match received {
            Ok(d) => {
                let Some(seen) = last.get_mut(&d.gate) else {
                    continue;
                };
                if d.version <= *seen {
                    continue;
                }
                let events = if d.version == *seen + 1 {
                    vec![decision_event(&d)]
                } else {
                    catch_up(&node.state.read().state, &d.gate, *seen)
                };
                *seen = (*seen).max(d.version);
                events
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let applied = node.state.read();
                let mut events = Vec::new();
                for (gate, seen) in &mut last {
                    events.extend(catch_up(&applied.state, gate, *seen));
                    *seen = applied
                        .state
                        .gates
                        .get(gate)
                        .map_or(*seen, |g| g.version.max(*seen));
                }
                events
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for event in owed {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}
