//! Group commit of ingest batches: batches that arrive while earlier ones are being
//! replicated travel together in one Raft entry, so one append (one fsync on each node)
//! acknowledges many clients. openraft 0.9 appends each proposal on its own, so without this
//! every batch would cost the leader one fsync.
//!
//! Each client still gets its own outcome, and each batch keeps its own idempotency key: the
//! group is applied exactly like the same batches one after another.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Attempt, Node, Written};
use crate::state::{Command, IngestBatch, Response};

/// Proposals in flight at once; more batches wait and join the next group.
const IN_FLIGHT: usize = 4;
/// Rough encoded size of one group, kept well under `store::MAX_ENTRY_BYTES`.
pub(super) const GROUP_BYTES: usize = 1024 * 1024;

/// One client batch waiting for its group to commit.
pub(super) struct Pending {
    pub batch: IngestBatch,
    pub reply: oneshot::Sender<Result<Written, Attempt>>,
}

/// An estimate, on the high side, of the encoded size of a batch's signals.
pub(super) fn weight(signals: &[crate::engine::Signal]) -> usize {
    signals
        .iter()
        .map(|s| 160 + s.gate.as_str().len() + s.metric.as_str().len() + topics_len(s))
        .sum()
}

fn topics_len(s: &crate::engine::Signal) -> usize {
    match &s.measurement {
        crate::engine::Measurement::Observation { topics, .. } => {
            topics.iter().map(|t| t.len() + 2).sum()
        }
        _ => 0,
    }
}

/// Collects pending batches into groups and proposes them; returns on shutdown.
pub(super) async fn run(node: Arc<Node>, mut queue: mpsc::Receiver<Pending>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut shutdown = node.shutdown_signal();
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => tokio::select! {
                p = queue.recv() => match p { Some(p) => p, None => return },
                _ = shutdown.changed() => return,
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        // Everything that queued up while we waited for a free slot joins this group.
        let mut bytes = weight(&first.batch.signals);
        let mut group = vec![first];
        while let Ok(p) = queue.try_recv() {
            let w = weight(&p.batch.signals);
            if bytes + w > GROUP_BYTES {
                carry = Some(p);
                break;
            }
            bytes += w;
            group.push(p);
        }
        let node = node.clone();
        tokio::spawn(async move {
            commit(&node, group).await;
            drop(permit);
        });
    }
}

async fn commit(node: &Node, group: Vec<Pending>) {
    let (batches, replies): (Vec<IngestBatch>, Vec<_>) =
        group.into_iter().map(|p| (p.batch, p.reply)).unzip();
    let command = Command::IngestGroup { batches };
    // On a follower the whole group goes to the leader in one forwarded call; when this node
    // knows another leader it skips asking its own Raft first.
    let known_leader = node.leader().filter(|(id, _)| *id != node.id);
    let attempt = match known_leader {
        Some(leader) => Err(Attempt::Forward(Some(leader))),
        None => node.write_here(command.clone()).await,
    };
    let result = match attempt {
        Err(Attempt::Forward(Some((leader, addr)))) => {
            match node.forward(leader, &addr, &command).await {
                Ok(written) => Ok(written),
                Err(e) if e.retryable() => Err(Attempt::Forward(None)),
                Err(e) => Err(Attempt::Failed(e)),
            }
        }
        other => other,
    };
    match result {
        Ok(Written {
            response: Response::IngestedGroup(outcomes),
            log_index,
        }) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A client that gave up is fine: its batch is committed all the same.
                let _ = reply.send(Ok(Written {
                    response: Response::Ingested(outcome),
                    log_index,
                }));
            }
        }
        Ok(other) => {
            let why = format!("unexpected response to a group: {other:?}");
            for reply in replies {
                let _ = reply.send(Err(Attempt::Failed(super::NodeError::Unknown(why.clone()))));
            }
        }
        Err(attempt) => {
            for reply in replies {
                let _ = reply.send(Err(attempt.clone()));
            }
        }
    }
}
