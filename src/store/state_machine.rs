//! The state machine store: the in-memory `State` shared with readers, applied in log order,
//! persisted as snapshots.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, Notify};

use super::codec::{decode, encode};
use super::durable::write_atomic;
use super::{At, StoreError, REPLACE_NODE};
use crate::consensus::{Entry, LogId, Membership, StorageError, TypeConfig};
use crate::state::{Decision, Response, State};

const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_MAGIC: &[u8; 8] = b"RAMPSNAP";

/// What a snapshot holds: the state and the log position it reflects, together.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<u64, openraft::BasicNode>,
    state: State,
}

/// The newest snapshot: its meta and its encoded bytes (as in `snapshot.bin`).
type StoredSnapshot = (SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>);

/// The applied state as readers see it, with what it reflects.
#[derive(Debug, Default)]
pub struct Applied {
    pub state: State,
    pub last_applied: Option<LogId>,
    pub membership: Membership,
}

/// Shared between the state machine (the only writer) and readers (API, evaluator, watches).
#[derive(Debug)]
pub struct StateHandle {
    applied: RwLock<Applied>,
    /// Every decision as it is applied, in log order.
    decisions: broadcast::Sender<Arc<Decision>>,
    /// The last applied log index.
    applied_index: watch::Sender<u64>,
    last_apply: Mutex<Instant>,
    /// Woken whenever an entry that can close a window (any command) is applied.
    commands_applied: Notify,
}

impl StateHandle {
    fn new(applied: Applied) -> Self {
        let index = applied.last_applied.map_or(0, |l| l.index);
        Self {
            applied: RwLock::new(applied),
            decisions: broadcast::channel(4096).0,
            applied_index: watch::channel(index).0,
            last_apply: Mutex::new(Instant::now()),
            commands_applied: Notify::new(),
        }
    }

    /// A read view of the applied state. Never hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.applied
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decisions as they are applied, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Decision>> {
        self.decisions.subscribe()
    }

    /// The last applied index, observable.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// Notified after commands are applied (the evaluator waits on it).
    pub fn commands_applied(&self) -> &Notify {
        &self.commands_applied
    }

    /// Milliseconds since this node last applied an entry.
    pub fn apply_age_ms(&self) -> u64 {
        let at = *self
            .last_apply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.applied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// openraft's view of the state machine.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    handle: Arc<StateHandle>,
    dir: PathBuf,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    metrics: SnapshotMetrics,
}

/// How long snapshots take to build and save, and how big the newest one is.
#[derive(Debug, Clone)]
pub struct SnapshotMetrics {
    pub seconds: Histogram,
    pub bytes: Gauge,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

fn encode_snapshot(file: &SnapshotFile) -> Result<Vec<u8>, StoreError> {
    let mut bytes = SNAPSHOT_MAGIC.to_vec();
    bytes.extend(encode(file)?);
    Ok(bytes)
}

fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotFile, StoreError> {
    match bytes.strip_prefix(SNAPSHOT_MAGIC) {
        Some(body) => decode(body),
        None => Err(StoreError::Decode(
            "not a rampart snapshot (bad magic)".into(),
        )),
    }
}

/// Decodes the bytes of a `snapshot.bin` and encodes the snapshot again (the fuzz targets
/// check a decoded snapshot re-encodes to bytes that decode to the same snapshot).
pub fn reencode_snapshot(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    encode_snapshot(&decode_snapshot(bytes)?)
}

impl StateMachineStore {
    /// Loads the newest snapshot in `dir`, if any. `purged` is the last index the log no
    /// longer holds: a snapshot that is missing, damaged or older than it leaves a gap the log
    /// cannot fill, and is refused. A damaged snapshot the log covers (nothing purged) is set
    /// aside as `snapshot.bin.damaged`; the node starts from an empty state and openraft
    /// re-applies the log — the node never serves state its log did not produce.
    pub fn open(dir: &Path, purged: Option<u64>) -> Result<Self, StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let found = match std::fs::read(&path) {
            Ok(bytes) => match decode_snapshot(&bytes) {
                Ok(file) => Some((file, bytes)),
                Err(e) => {
                    if let Some(p) = purged {
                        return Err(StoreError::Damaged(format!(
                            "{e}; the log was purged up to index {p}, so the state cannot be \
                             rebuilt from it; {REPLACE_NODE}"
                        )))
                        .at(|| format!("reading {}", path.display()));
                    }
                    let aside = dir.join(format!("{SNAPSHOT_FILE}.damaged"));
                    tracing::error!(
                        file = %path.display(),
                        error = %e,
                        moved_to = %aside.display(),
                        "damaged snapshot refused; rebuilding the state from the log"
                    );
                    std::fs::rename(&path, &aside)
                        .at(|| format!("moving {} aside", path.display()))?;
                    super::durable::sync_dir(dir)?;
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).at(|| format!("reading {}", path.display())),
        };
        let covered = found
            .as_ref()
            .and_then(|(f, _)| f.meta.last_log_id)
            .map(|l| l.index);
        if let Some(p) = purged.filter(|p| covered < Some(*p)) {
            return Err(StoreError::Lost(format!(
                "{} reflects the log up to index {} but the log was purged up to index {p}: \
                 entries in between exist nowhere on this node; {REPLACE_NODE}",
                path.display(),
                covered.map_or("none (no snapshot)".into(), |i| i.to_string()),
            )));
        }
        let (applied, current) = match found {
            Some((file, bytes)) => {
                let applied = Applied {
                    state: file.state,
                    last_applied: file.meta.last_log_id,
                    membership: file.meta.last_membership.clone(),
                };
                (applied, Some((file.meta, bytes)))
            }
            None => (Applied::default(), None),
        };
        let metrics = SnapshotMetrics {
            seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            bytes: Gauge::default(),
        };
        if let Some((_, bytes)) = &current {
            metrics
                .bytes
                .set(i64::try_from(bytes.len()).unwrap_or(i64::MAX));
        }
        Ok(Self {
            handle: Arc::new(StateHandle::new(applied)),
            dir: dir.to_owned(),
            current: Arc::new(Mutex::new(current)),
            metrics,
        })
    }

    /// Shared handles on the snapshot timings and size.
    pub fn snapshot_metrics(&self) -> SnapshotMetrics {
        self.metrics.clone()
    }

    /// The handle readers use.
    pub fn handle(&self) -> Arc<StateHandle> {
        self.handle.clone()
    }

    fn save_snapshot(
        &self,
        meta: SnapshotMeta<u64, openraft::BasicNode>,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        write_atomic(&self.dir.join(SNAPSHOT_FILE), &bytes)?;
        self.metrics
            .bytes
            .set(i64::try_from(bytes.len()).unwrap_or(i64::MAX));
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((meta, bytes));
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        let applied = self.handle.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        let mut published = Vec::new();
        let mut commands = false;
        let last_index = {
            let mut applied = self.handle.write();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::None,
                    EntryPayload::Membership(m) => {
                        applied.membership = Membership::new(Some(entry.log_id), m);
                        Response::None
                    }
                    EntryPayload::Normal(request) => {
                        commands |= request.command.wakes_evaluator();
                        let done = applied.state.apply_at(&request, entry.log_id.index);
                        published.extend(done.decisions.into_iter().map(Arc::new));
                        done.response
                    }
                };
                responses.push(response);
            }
            applied.last_applied.map_or(0, |l| l.index)
        };
        *self
            .handle
            .last_apply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        for decision in published {
            // No receiver is fine: nobody is watching.
            let _ = self.handle.decisions.send(decision);
        }
        self.handle.applied_index.send_replace(last_index);
        if commands {
            self.handle.commands_applied.notify_one();
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // A point-in-time copy, taken between applies: its data matches its last_log_id exactly.
        let applied = self.handle.read();
        SnapshotBuilder {
            store: self.clone(),
            state: applied.state.clone(),
            last_applied: applied.last_applied,
            membership: applied.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let file = decode_snapshot(&bytes)
            .at(|| format!("the snapshot {} received from the leader", meta.snapshot_id))
            .map_err(snap_err)?;
        self.save_snapshot(meta.clone(), bytes).map_err(snap_err)?;
        let index = {
            let mut applied = self.handle.write();
            // Replace everything: nothing of the old state survives an install.
            *applied = Applied {
                state: file.state,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
            meta.last_log_id.map_or(0, |l| l.index)
        };
        self.handle.applied_index.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

/// Builds a snapshot from a point-in-time copy of the state.
#[derive(Debug)]
pub struct SnapshotBuilder {
    store: StateMachineStore,
    state: State,
    last_applied: Option<LogId>,
    membership: Membership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let snapshot_id = match self.last_applied {
            Some(l) => format!(
                "{}-{}-{}",
                l.leader_id,
                l.index,
                crate::ids::Millis::from(self.state.cluster_time)
            ),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            state: std::mem::take(&mut self.state),
        };
        let store = self.store.clone();
        let started = Instant::now();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StoreError> {
            let bytes = encode_snapshot(&file)?;
            store.save_snapshot(file.meta, bytes.clone())?;
            store
                .metrics
                .seconds
                .observe(started.elapsed().as_secs_f64());
            Ok(bytes)
        })
        .await
        .map_err(sm_err)?
        .map_err(snap_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
