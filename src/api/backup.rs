//! Backup and restore of the whole replicated state (`Admin/Backup`, `Admin/Restore`).
//!
//! A backup is read linearizably on the answering node and streamed as the bytes of a backup
//! file (`store::backup`). A restore checks the file, then replicates its state through the
//! log in parts (`state::restore`), reporting progress as parts commit. Owns no format and no
//! rule of its own: the file is the store's, the restore rule the state machine's.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rand::RngCore;
use tonic::{Request, Response, Status, Streaming};

use super::error::{ApiError, ApiResult};
use crate::node::{Node, NodeError};
use crate::proto::v1 as pb;
use crate::state::restore::{encode_for_restore, RestorePart};
use crate::state::{Command, Response as Applied};
use crate::store::backup::{decode_backup, encode_backup, Backup, BACKUP_FORMAT};

/// Bytes per streamed backup chunk.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes of state per restore part (one log entry each; under `store::MAX_ENTRY_BYTES`).
const PART_BYTES: usize = 1024 * 1024;
/// The largest backup file a restore takes.
pub const MAX_BACKUP_BYTES: usize = 4 * 1024 * 1024 * 1024;

pub type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;
pub type RestoreStream = Pin<Box<dyn Stream<Item = Result<pb::RestoreProgress, Status>> + Send>>;

/// The backup file of the state this node applied, after a read barrier.
pub async fn backup(node: &Node) -> ApiResult<BackupStream> {
    node.read_barrier().await.map_err(ApiError::from)?;
    let backup = {
        let applied = node.state.read();
        Backup {
            format: BACKUP_FORMAT,
            log_index: applied.last_applied.map_or(0, |l| l.index),
            term: applied.last_applied.map_or(0, |l| l.leader_id.term),
            taken_by: node.id,
            state: applied.state.clone(),
        }
    };
    let bytes = tokio::task::spawn_blocking(move || encode_backup(&backup))
        .await
        .map_err(|e| Status::internal(format!("encoding the backup: {e}")))?
        .map_err(|e| Status::internal(format!("encoding the backup: {e}")))?;
    let chunks: Vec<Result<pb::BackupChunk, Status>> = bytes
        .chunks(CHUNK_BYTES)
        .map(|c| Ok(pb::BackupChunk { data: c.to_vec() }))
        .collect();
    Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
}

/// Starts a restore: progress messages stream back while the parts are written (so a large
/// restore is not cut by the per-request timeout, which covers only the answer's start).
pub async fn restore(
    node: Arc<Node>,
    request: Request<Streaming<pb::BackupChunk>>,
) -> ApiResult<RestoreStream> {
    let mut chunks = request.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.data.len() > MAX_BACKUP_BYTES {
            return Err(ApiError::invalid(
                "data",
                format!("the backup is larger than {MAX_BACKUP_BYTES} bytes"),
            )
            .into());
        }
        bytes.extend_from_slice(&chunk.data);
    }
    let backup = decode_backup(&bytes).map_err(|e| ApiError::invalid("data", e.to_string()))?;
    drop(bytes);
    node.read_barrier().await.map_err(ApiError::from)?;
    if let Some(refusal) = node.state.read().state.restore_refusal() {
        return Err(ApiError::from(NodeError::Refused(refusal)).into());
    }
    let encoded = encode_for_restore(&backup.state)
        .map_err(|e| Status::internal(format!("encoding the state: {e}")))?;
    let summary = backup.summary();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let id = hex::encode(id);
        let pieces: Vec<&[u8]> = encoded.chunks(PART_BYTES).collect();
        let parts = u32::try_from(pieces.len().max(1)).unwrap_or(u32::MAX);
        let empty: &[u8] = &[];
        let pieces = if pieces.is_empty() {
            vec![empty]
        } else {
            pieces
        };
        for (i, piece) in pieces.into_iter().enumerate() {
            let part = RestorePart {
                id: id.clone(),
                part: u32::try_from(i).unwrap_or(u32::MAX),
                parts,
                bytes: piece.to_vec(),
            };
            let message = match write_part(&node, part).await {
                Ok((received, log_index)) => Ok(pb::RestoreProgress {
                    parts_done: received,
                    parts,
                    done: received == parts,
                    gates: if received == parts {
                        summary.gates as u64
                    } else {
                        0
                    },
                    decisions: if received == parts {
                        summary.decisions as u64
                    } else {
                        0
                    },
                    signals_accepted: if received == parts {
                        summary.signals_accepted
                    } else {
                        0
                    },
                    log_index,
                }),
                Err(e) => Err(Status::from(e)),
            };
            let failed = message.is_err();
            if tx.send(message).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Response::new(Box::pin(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    )))
}

/// Writes one part, retrying (a few times) writes whose outcome is unknown: the state machine
/// answers a part it already applied without applying it again.
async fn write_part(node: &Node, part: RestorePart) -> Result<(u32, u64), ApiError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match node.write(Command::Restore(part.clone())).await {
            Ok(written) => {
                return match written.response {
                    Applied::Restored { received, .. } => Ok((received, written.log_index)),
                    Applied::Refused(e) => Err(NodeError::Refused(e).into()),
                    other => Err(NodeError::Unknown(format!("unexpected answer {other:?}")).into()),
                }
            }
            Err(e) if attempts < 5 && (e.retryable() || matches!(e, NodeError::Unknown(_))) => {
                tracing::warn!(part = part.part, error = %e, "restore part retried");
            }
            Err(e) => return Err(e.into()),
        }
    }
}
