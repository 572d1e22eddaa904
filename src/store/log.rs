//! The Raft log store on sled: entries, vote, committed id, last purged id.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError, Vote};

use super::codec::{decode, encode};
use super::durable::Syncer;
use super::mark::{Acked, Mark};
use super::{At, StoreError, REPLACE_NODE};
use crate::consensus::{Entry, LogId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";
/// Set once this log has been checked against an `acked.bin`: from then on a missing mark is
/// a lost one, not a first start (or a log written before the mark existed).
const MARKED: &[u8] = b"marked";

/// sled segment size: values above a quarter of it become unsynced blob files.
const SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// The Raft log of one node. Cheap to clone: clones share the database.
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: sled::Tree,
    meta: sled::Tree,
    syncer: Syncer,
    /// What this node acknowledged (vote, last index), mirrored in the mark file.
    mark: Mark,
    acked: Mutex<Acked>,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn vote_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_vote(AnyError::new(&e)).into()
}

impl LogStore {
    /// The durations of the log's flush + fdatasync so far (a shared handle).
    pub fn fsync_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.inner.syncer.seconds()
    }

    /// Opens the sled database in `dir` (created when missing) with the acknowledged mark in
    /// `mark_dir`, reads every value back (checksums) and refuses a log or vote older than
    /// what the mark says this node acknowledged.
    pub fn open(dir: &Path, mark_dir: &Path) -> Result<Self, StoreError> {
        let db = open_db(dir).map_err(|e| damaged_sled(dir, e))?;
        let log = db.open_tree("log")?;
        let meta = db.open_tree("meta")?;
        let syncer = Syncer::new(db, dir)?;
        syncer.sync()?;
        // sled created its files on first open: make their directory entries durable too.
        for file in ["conf", "db"] {
            let path = dir.join(file);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .at(|| format!("fsync of {}", path.display()))?;
        }
        super::durable::sync_dir(dir)?;
        let mark_path = mark_dir.join(super::mark::MARK_FILE);
        // Before `Mark::open`, which writes an empty mark when there is none.
        if meta.contains_key(MARKED)? && !mark_path.exists() {
            return Err(StoreError::Lost(format!(
                "{} is missing, but the raft log in {} was kept beside one: what this node \
                 acknowledged can no longer be checked (a deleted or lost acked.bin, perhaps \
                 with a truncated raft/db); {REPLACE_NODE}",
                mark_path.display(),
                syncer.path().display(),
            )));
        }
        let (mark, recorded) = Mark::open(mark_dir)?;
        let store = Self {
            inner: Arc::new(Inner {
                log,
                meta,
                syncer,
                mark,
                acked: Mutex::new(Acked::default()),
            }),
        };
        let found = store.verify()?;
        if let Some(recorded) = recorded {
            store.check_against(&recorded, &found)?;
        }
        *store.acked() = found;
        store.inner.mark.record(&found)?;
        super::durable::sync_dir(mark_dir)?;
        if !store.inner.meta.contains_key(MARKED)? {
            store.meta_put(MARKED, &true)?;
            store.inner.syncer.sync()?;
        }
        Ok(store)
    }

    fn acked(&self) -> std::sync::MutexGuard<'_, Acked> {
        self.inner
            .acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates the acknowledged mark and makes it durable.
    fn record(&self, change: impl FnOnce(&mut Acked)) -> Result<(), StoreError> {
        let mut acked = self.acked();
        change(&mut acked);
        self.inner.mark.record(&acked)
    }

    /// Checks every entry's checksum (without decoding it) and decodes the meta values and
    /// the last entry; returns the vote and last index found.
    fn verify(&self) -> Result<Acked, StoreError> {
        let db = self.inner.syncer.path().display().to_string();
        let mut last = None;
        for item in self.inner.log.iter() {
            let (key, bytes) = item.at(|| format!("reading the log tree of {db}"))?;
            let index = <[u8; 8]>::try_from(key.as_ref())
                .ok()
                .map(u64::from_be_bytes);
            let what = || {
                let key = index.map_or("(not an index)".to_owned(), |i| i.to_string());
                format!("{db}, tree `log`, key {key}")
            };
            super::codec::verify(&bytes).at(what)?;
            last = index;
        }
        let vote = self
            .meta_get::<Vote<u64>>(VOTE)
            .at(|| format!("{db}, tree `meta`, key `vote`"))?;
        self.meta_get::<Option<LogId>>(COMMITTED)
            .at(|| format!("{db}, tree `meta`, key `committed`"))?;
        let purged = self
            .last_purged()
            .at(|| format!("{db}, tree `meta`, key `last_purged`"))?;
        if let Some((key, bytes)) = self.inner.log.last()? {
            let entry = decode::<Entry>(&bytes).at(|| format!("{db}, tree `log`, last entry"))?;
            if key.as_ref() != entry.log_id.index.to_be_bytes() {
                return Err(StoreError::Damaged(format!(
                    "the last key holds the entry of index {}",
                    entry.log_id.index
                )))
                .at(|| format!("{db}, tree `log`"));
            }
        }
        Ok(Acked {
            vote,
            last_index: last.or(purged.map(|p| p.index)),
        })
    }

    /// Refuses a log or vote older than what this node acknowledged.
    fn check_against(&self, recorded: &Acked, found: &Acked) -> Result<(), StoreError> {
        let db = self.inner.syncer.path().display();
        let mark = self.inner.mark.path().display();
        if found.last_index < recorded.last_index {
            return Err(StoreError::Lost(format!(
                "the raft log in {db} ends at index {} but this node acknowledged entries up to \
                 index {} ({mark}): acknowledged entries are gone (a truncated or damaged \
                 raft/db); {REPLACE_NODE}",
                found.last_index.map_or("none".into(), |i| i.to_string()),
                recorded.last_index.unwrap_or(0),
            )));
        }
        let vote_kept = match (recorded.vote, found.vote) {
            (Some(r), Some(f)) => f >= r,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !vote_kept {
            return Err(StoreError::Lost(format!(
                "the vote in {db} is {} but this node saved {} ({mark}): a node that forgets \
                 its vote can vote twice in a term; {REPLACE_NODE}",
                found.vote.map_or("none".into(), |v| v.to_string()),
                recorded.vote.map_or("none".into(), |v| v.to_string()),
            )));
        }
        Ok(())
    }

    fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.inner.meta.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn meta_put<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.inner.meta.insert(key, encode(value)?)?;
        Ok(())
    }

    /// The index of the last entry in the log (the last purged one when the log is empty),
    /// read from the store itself rather than from Raft's metrics, which lag at startup.
    pub fn last_index(&self) -> Result<u64, StoreError> {
        if let Some(key) = self.inner.log.last()?.map(|(key, _)| key) {
            if let Ok(bytes) = <[u8; 8]>::try_from(key.as_ref()) {
                return Ok(u64::from_be_bytes(bytes));
            }
        }
        Ok(self.last_purged()?.map_or(0, |id| id.index))
    }

    /// The id of the last entry in the log (the last purged one when the log is empty).
    pub fn last_log_id(&self) -> Result<Option<LogId>, StoreError> {
        match self.inner.log.last()? {
            Some((_, bytes)) => Ok(Some(decode::<Entry>(&bytes)?.log_id)),
            None => self.last_purged(),
        }
    }

    /// The index of the last purged entry, if any.
    pub fn purged_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.last_purged()?.map(|l| l.index))
    }

    fn last_purged(&self) -> Result<Option<LogId>, StoreError> {
        self.meta_get(LAST_PURGED)
    }

    /// Every entry with index >= `from`, removed and made durable. The mark goes down first:
    /// a crash in between leaves it below the log, which is allowed.
    fn remove_from(&self, from: u64) -> Result<(), StoreError> {
        self.record(|a| a.last_index = a.last_index.min(from.checked_sub(1)))?;
        let mut batch = sled::Batch::default();
        for key in self.inner.log.range(from.to_be_bytes()..).keys() {
            batch.remove(key?);
        }
        self.inner.log.apply_batch(batch)?;
        self.inner.syncer.sync()
    }
}

/// Opens sled, waiting up to 5s for the file lock: sled releases it from a background
/// thread after the previous handle in this process is dropped.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new()
            .path(dir)
            .segment_size(SEGMENT_SIZE)
            .open()
        {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(sled::Error::Io(e).into());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// sled's refusal to open, naming its two files and, for damage, the way out.
fn damaged_sled(dir: &Path, e: StoreError) -> StoreError {
    let damage = matches!(
        e,
        StoreError::Sled(sled::Error::Corruption { .. } | sled::Error::Unsupported(_))
    );
    let what = format!(
        "opening sled's files {} and {}",
        dir.join("conf").display(),
        dir.join("db").display()
    );
    let source = if damage {
        StoreError::Damaged(format!("{e}; {REPLACE_NODE}"))
    } else {
        e
    };
    StoreError::At {
        what,
        source: Box::new(source),
    }
}

fn bound_key(bound: Bound<&u64>) -> Bound<[u8; 8]> {
    match bound {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let keys = (bound_key(range.start_bound()), bound_key(range.end_bound()));
        let mut entries = Vec::new();
        for item in self.inner.log.range(keys) {
            let (_, bytes) = item.map_err(read_err)?;
            entries.push(decode::<Entry>(&bytes).map_err(read_err)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(LogState {
            last_purged_log_id: self.last_purged().map_err(read_err)?,
            last_log_id: self.last_log_id().map_err(read_err)?,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.meta_put(VOTE, vote).map_err(vote_err)?;
        self.inner.syncer.sync().map_err(vote_err)?;
        self.record(|a| a.vote = Some(*vote)).map_err(vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.meta_get(VOTE)
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: a stale committed id only means re-applying less at start-up.
        self.meta_put(COMMITTED, &committed).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .meta_get::<Option<LogId>>(COMMITTED)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let (mut first, mut last) = (None, 0);
        for entry in entries {
            first.get_or_insert(entry.log_id.index);
            last = entry.log_id.index;
            batch.insert(
                &entry.log_id.index.to_be_bytes(),
                encode(&entry).map_err(write_err)?,
            );
        }
        let (first, last) = (first.unwrap_or(0), last);
        self.inner
            .log
            .apply_batch(batch)
            .at(|| {
                format!(
                    "appending log entries {first}..={last} to {}",
                    self.inner.syncer.path().display()
                )
            })
            .map_err(write_err)?;
        // Durable before the callback: flush + fdatasync (see the module docs of `store`).
        // Then the mark: this node acknowledges up to `last` (see `store::mark`).
        let synced = self
            .inner
            .syncer
            .sync()
            .and_then(|()| self.record(|a| a.last_index = a.last_index.max(Some(last))))
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(synced);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_from(log_id.index).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purged id goes to disk first, so a crash never leaves a hole behind it.
        self.meta_put(LAST_PURGED, &log_id).map_err(write_err)?;
        self.inner.syncer.sync().map_err(write_err)?;
        let mut batch = sled::Batch::default();
        for key in self.inner.log.range(..=log_id.index.to_be_bytes()).keys() {
            batch.remove(key.map_err(write_err)?);
        }
        self.inner.log.apply_batch(batch).map_err(write_err)?;
        Ok(())
    }
}
