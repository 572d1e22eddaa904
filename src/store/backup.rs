//! The backup file (`rampart snapshot save`, `rampart restore`): the whole replicated state at
//! one log position, versioned and checksummed like everything the store persists.
//!
//! Layout: `RAMPBKUP` ++ `codec::encode(Backup)` (format version byte, CRC-32, MessagePack
//! with named fields). `Backup::format` versions the contents; a node reads every older format.

use serde::{Deserialize, Serialize};

use super::codec::{decode, encode};
use super::StoreError;
use crate::state::State;

const BACKUP_MAGIC: &[u8; 8] = b"RAMPBKUP";
/// The contents' version written today.
pub const BACKUP_FORMAT: u32 = 1;

/// A consistent copy of the replicated state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub format: u32,
    /// The log index the state reflects on the cluster it was taken from.
    pub log_index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The node that answered the backup call.
    pub taken_by: u64,
    pub state: State,
}

/// Counts that describe a backup to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BackupSummary {
    pub gates: usize,
    pub decisions: usize,
    pub signals_accepted: u64,
    pub idempotency_keys: usize,
    pub log_index: u64,
    pub cluster_time_ms: i64,
}

impl Backup {
    pub fn summary(&self) -> BackupSummary {
        BackupSummary {
            gates: self.state.gates.len(),
            decisions: self.state.gates.values().map(|g| g.decisions.len()).sum(),
            signals_accepted: self.state.signals_accepted,
            idempotency_keys: self.state.ingested.len(),
            log_index: self.log_index,
            cluster_time_ms: self.state.cluster_time,
        }
    }
}

/// The bytes of a backup file.
pub fn encode_backup(backup: &Backup) -> Result<Vec<u8>, StoreError> {
    let mut bytes = BACKUP_MAGIC.to_vec();
    bytes.extend(encode(backup)?);
    Ok(bytes)
}

/// Reads a backup file's bytes, refusing other files, damaged ones and unknown formats.
pub fn decode_backup(bytes: &[u8]) -> Result<Backup, StoreError> {
    let Some(body) = bytes.strip_prefix(BACKUP_MAGIC) else {
        return Err(StoreError::Decode(
            "not a rampart backup (it does not start with RAMPBKUP)".into(),
        ));
    };
    let backup: Backup = decode(body)?;
    if backup.format > BACKUP_FORMAT {
        return Err(StoreError::Decode(format!(
            "backup format {} is newer than this binary reads (up to {BACKUP_FORMAT}); \
             restore with a newer rampart",
            backup.format
        )));
    }
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage_and_other_files() {
        let backup = Backup {
            format: BACKUP_FORMAT,
            log_index: 42,
            term: 3,
            taken_by: 1,
            state: State {
                signals_accepted: 7,
                ..State::default()
            },
        };
        let bytes = encode_backup(&backup).expect("encode");
        assert_eq!(decode_backup(&bytes).expect("decode"), backup);
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let err = decode_backup(&damaged).expect_err("damaged").to_string();
        assert!(err.contains("checksum"), "{err}");
        let err = decode_backup(b"RAMPSNAP....")
            .expect_err("snapshot")
            .to_string();
        assert!(err.contains("not a rampart backup"), "{err}");
        let newer = Backup {
            format: BACKUP_FORMAT + 1,
            ..backup
        };
        let err = decode_backup(&encode_backup(&newer).expect("encode"))
            .expect_err("newer")
            .to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
