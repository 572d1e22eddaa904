//! flagd's `EventStream`: `provider_ready` at once (providers wait about 500 ms for it), then
//! `configuration_change` naming each gate whose answers a decision changed (exposure, kill
//! switch, contract, deletion), and `keep_alive` when nothing else was sent for
//! [`KEEP_ALIVE`].
//!
//! Fed by the decisions this node applies (the stream `Watch` uses), so a kill switch reaches
//! every subscribed provider within milliseconds of its commit, from any node. A node that has
//! known no leader for [`super::LEADERLESS`] ends its streams with `UNAVAILABLE`, so providers
//! reconnect (to another node, where they are told one).

use std::sync::Arc;
use std::time::Duration;

use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::resolve::fields;
use super::Availability;
use crate::node::Node;
use crate::state::{Action, Decision};

/// Longest quiet time on a stream (flagd providers expect an event at least every 20 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event: its type and data.
pub type Event = Result<(&'static str, Option<Struct>), Status>;

/// Whether a decision changes what some unit gets or why.
fn changes_answers(d: &Decision) -> bool {
    d.kill_switch != d.kill_switch_before
        || matches!(d.action, Action::Contract | Action::Deleted)
        || d.changes.iter().any(|c| c.from_exposure != c.to_exposure)
}

/// `configuration_change` data: `{"flags": {gate: {"type": ..., "gate_version": ...}}}`.
fn changed<'a>(gates: impl IntoIterator<Item = (&'a str, &'static str, u64)>) -> Struct {
    let flags = gates
        .into_iter()
        .map(|(gate, kind, version)| {
            let flag = fields([
                (
                    "type",
                    Value {
                        kind: Some(Kind::StringValue(kind.to_owned())),
                    },
                ),
                (
                    "gate_version",
                    Value {
                        kind: Some(Kind::NumberValue(version as f64)),
                    },
                ),
            ]);
            (
                gate.to_owned(),
                Value {
                    kind: Some(Kind::StructValue(flag)),
                },
            )
        })
        .collect();
    fields([(
        "flags",
        Value {
            kind: Some(Kind::StructValue(Struct { fields: flags })),
        },
    )])
}

/// The event stream of one provider.
pub fn start(node: Arc<Node>, availability: Availability) -> Result<ReceiverStream<Event>, Status> {
    availability.check().map_err(Status::from)?;
    // Subscribed before provider_ready: nothing applied after it goes unannounced.
    let decisions = node.state.subscribe();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(node, availability, decisions, tx));
    Ok(ReceiverStream::new(rx))
}

async fn run(
    node: Arc<Node>,
    availability: Availability,
    mut decisions: broadcast::Receiver<Arc<Decision>>,
    tx: mpsc::Sender<Event>,
) {
    if tx.send(Ok(("provider_ready", None))).await.is_err() {
        return;
    }
    let mut shutdown = node.shutdown_signal();
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        let event = tokio::select! {
            received = decisions.recv() => match received {
                Ok(d) if changes_answers(&d) => {
                    let kind = if d.action == Action::Deleted { "delete" } else { "update" };
                    Ok(("configuration_change", Some(changed([(d.gate.as_str(), kind, d.version)]))))
                }
                Ok(_) => continue,
                // Too far behind to know which gates changed: every gate may have.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let applied = node.state.read();
                    let gates = applied.state.gates.values().map(|g| {
                        (g.key.as_str(), if g.deleted { "delete" } else { "update" }, g.version)
                    });
                    Ok(("configuration_change", Some(changed(gates))))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = quiet.tick() => Ok(("keep_alive", None)),
            _ = check.tick() => match availability.check() {
                Ok(()) => continue,
                Err(e) => Err(Status::from(e)),
            },
            () = tx.closed() => return,
            _ = shutdown.changed() => Err(Status::unavailable("node shutting down; reconnect to another node")),
        };
        let last = event.is_err();
        if tx.send(event).await.is_err() || last {
            return;
        }
        quiet.reset();
    }
}
