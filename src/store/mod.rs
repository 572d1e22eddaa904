//! Storage: openraft's log and the state machine on sled, behind this one module.
//!
//! # On-disk layout (format version 2; version 1 is still read)
//!
//! A node's data directory holds:
//! - `raft/`: one sled database with two trees:
//!   - `log`: key = log index as 8 big-endian bytes (so iteration follows log order),
//!     value = `codec::encode(openraft Entry<TypeConfig>)`;
//!   - `meta`: keys `vote`, `committed`, `last_purged`, each `codec::encode(value)`.
//! - `snapshot.bin`: the newest state-machine snapshot: the magic `RAMPSNAP`, then
//!   `codec::encode(SnapshotFile { meta, state })`. Written to a temporary file,
//!   fsynced, renamed over the old one, and the directory fsynced.
//! - `acked.bin`: the acknowledged mark (`mark`): the newest vote saved and the last log
//!   index reported durable, outside sled, so a `raft/db` that lost its tail is refused.
//!
//! `codec::encode` writes `[2] ++ CRC-32 ++ MessagePack(value)`; `codec::decode` also reads
//! version 1 (`[1] ++ MessagePack(value)`, what older nodes wrote) and refuses unknown versions
//! and checksum mismatches. A newer format is added as a new arm, never by changing an old one.
//! MessagePack with named fields lets a newer node read older values (new fields carry
//! `#[serde(default)]`).
//!
//! # Integrity at start
//!
//! Opening checks every log entry's checksum, decodes the meta values and the last entry,
//! compares the log and vote with `acked.bin`, and checks the snapshot: any damage or loss is
//! refused with an error naming the file and telling how to replace the node
//! (`REPLACE_NODE`), except a damaged snapshot the log still covers (nothing purged), which
//! is set aside as `snapshot.bin.damaged` while the state is rebuilt from the log.
//!
//! # Durability
//!
//! sled's `flush()` is not an fsync (it uses `sync_file_range`), so before a vote is
//! acknowledged or an append reported durable, the store flushes sled *and* calls
//! `fdatasync` on sled's data file (`durable::Syncer`). Values larger than a quarter of sled's
//! segment are written by sled to separate blob files that it never syncs; the segment size
//! is set to 8 MiB and entries are capped well below 2 MiB (`MAX_ENTRY_BYTES`) so no entry is
//! ever a blob.
//!
//! # State machine
//!
//! The state machine lives in memory (`StateHandle`) and is persisted as snapshots. On start a
//! node loads its snapshot (state and last-applied id, written together) and openraft
//! re-applies the committed log after it (the store persists `committed`). This module never
//! interprets commands: `crate::state` does.

pub mod backup;
pub mod codec;
pub mod durable;
pub mod log;
pub mod mark;
pub mod state_machine;

use std::path::Path;

pub use log::LogStore;
pub use state_machine::{SnapshotMetrics, StateHandle, StateMachineStore};

/// Largest encoded log entry accepted on the write path.
pub const MAX_ENTRY_BYTES: usize = 1536 * 1024;

/// Errors of the storage layer. All are fatal to the node: openraft stops on them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("decode: {0}")]
    Decode(String),
    #[error("encode: {0}")]
    Encode(String),
    /// A persisted value or file whose bytes are not what was written.
    #[error("damaged: {0}")]
    Damaged(String),
    /// Less on disk than this node acknowledged (a truncated log, a lost vote).
    #[error("acknowledged data lost: {0}")]
    Lost(String),
    /// An error while working on a named file: what was being done, then the cause.
    #[error("{what}: {source}")]
    At {
        what: String,
        #[source]
        source: Box<StoreError>,
    },
}

/// Names the file and operation an error happened in (`result.at(|| "fdatasync raft/db")`).
pub trait At<T> {
    fn at(self, what: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T, E: Into<StoreError>> At<T> for Result<T, E> {
    fn at(self, what: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::At {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}

/// What a node whose disk lost or damaged what it acknowledged must do.
pub const REPLACE_NODE: &str = "do not start this node on this data: remove it from the \
    cluster (`rampart cluster remove <id>` on a healthy node), wipe its data directory, and add \
    it back as a new learner (`rampart cluster add <id> <addr>`), which then catches up from \
    the leader";

/// Opens (or creates) a node's storage under `dir`.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    std::fs::create_dir_all(dir).at(|| format!("creating {}", dir.display()))?;
    let log = LogStore::open(&dir.join("raft"), dir)?;
    let sm = StateMachineStore::open(dir, log.purged_index()?)?;
    durable::sync_dir(dir)?;
    Ok((log, sm))
}

#[cfg(test)]
mod tests;
