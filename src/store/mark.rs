//! The acknowledged high-water mark: the newest vote this node saved and the last log index it
//! reported durable, kept in a small checksummed file outside sled (`acked.bin` in the data
//! directory).
//!
//! sled recovers its log to the last consistent prefix it finds: a `raft/db` cut short (a
//! truncated copy, a lost tail, a damaged segment) opens without an error, with acknowledged
//! entries and the vote silently gone — the precondition for two leaders in one term. A node
//! that finds less in sled than this file says it acknowledged refuses to start.
//!
//! Layout (39 bytes, rewritten in place and fdatasynced, so one write is one sector):
//! `RAMPMARK`, format byte `1`, last index (u64 LE, `u64::MAX` = none), vote term, vote node
//! (u64 LE), vote committed (u8), vote present (u8), then CRC-32 of everything before it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use openraft::Vote;

use super::{At, StoreError};

/// The file name, in the data directory.
pub const MARK_FILE: &str = "acked.bin";
const MAGIC: &[u8; 8] = b"RAMPMARK";
const VERSION: u8 = 1;
/// The file's length.
pub const LEN: usize = 8 + 1 + 8 + 8 + 8 + 1 + 1 + 4;

/// What this node acknowledged: a lower bound on what its log and vote must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acked {
    pub vote: Option<Vote<u64>>,
    pub last_index: Option<u64>,
}

impl Acked {
    /// The file's bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8] = VERSION;
        out[9..17].copy_from_slice(&self.last_index.unwrap_or(u64::MAX).to_le_bytes());
        if let Some(v) = self.vote {
            out[17..25].copy_from_slice(&v.leader_id.term.to_le_bytes());
            out[25..33].copy_from_slice(&v.leader_id.node_id.to_le_bytes());
            out[33] = u8::from(v.committed);
            out[34] = 1;
        }
        let crc = crc32fast::hash(&out[..LEN - 4]);
        out[LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads what `encode` wrote, refusing any other bytes with the reason.
    pub fn decode(bytes: &[u8]) -> Result<Acked, String> {
        if bytes.len() != LEN {
            return Err(format!("{} bytes, expected {LEN}", bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err("bad magic".into());
        }
        let stored = u32::from_le_bytes(bytes[LEN - 4..].try_into().unwrap_or_default());
        let computed = crc32fast::hash(&bytes[..LEN - 4]);
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        if bytes[8] != VERSION {
            return Err(format!("unknown format version {}", bytes[8]));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let last = u64_at(9);
        // Only what `encode` writes: flags 0 or 1, no vote fields without a vote. Anything else
        // (a checksum over other bytes, another writer) is refused, never read as "no vote".
        let flag = |at: usize, name: &str| match bytes[at] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("vote {name} flag is {other}, not 0 or 1")),
        };
        let committed = flag(33, "committed")?;
        let vote = if flag(34, "present")? {
            let mut vote = Vote::new(u64_at(17), u64_at(25));
            vote.committed = committed;
            Some(vote)
        } else {
            if bytes[17..34].iter().any(|b| *b != 0) {
                return Err("vote fields are set but the vote is marked absent".into());
            }
            None
        };
        Ok(Acked {
            vote,
            last_index: (last != u64::MAX).then_some(last),
        })
    }
}

/// The open mark file.
#[derive(Debug)]
pub struct Mark {
    file: File,
    path: PathBuf,
}

impl Mark {
    /// Opens the mark in `dir`; `None` when there was none yet (a new node, or one written
    /// by a version without it), in which case an empty mark is written atomically first, so
    /// the file never exists half-written.
    pub fn open(dir: &Path) -> Result<(Mark, Option<Acked>), StoreError> {
        let path = dir.join(MARK_FILE);
        let existing = match std::fs::read(&path) {
            Ok(bytes) => Some(Acked::decode(&bytes).map_err(|reason| StoreError::At {
                what: format!("reading {}", path.display()),
                source: Box::new(StoreError::Damaged(format!(
                    "{reason}; {}",
                    super::REPLACE_NODE
                ))),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                super::durable::write_atomic(&path, &Acked::default().encode())?;
                None
            }
            Err(e) => return Err(e).at(|| format!("reading {}", path.display())),
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .at(|| format!("opening {}", path.display()))?;
        Ok((Mark { file, path }, existing))
    }

    /// Makes `acked` durable: one in-place write and an fdatasync.
    pub fn record(&self, acked: &Acked) -> Result<(), StoreError> {
        self.file
            .write_all_at(&acked.encode(), 0)
            .and_then(|()| self.file.sync_data())
            .at(|| format!("writing {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_first_open_leaves_a_readable_mark() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let (_mark, found) = Mark::open(dir.path()).expect("first open");
        assert_eq!(found, None);
        // Whatever happens next (the log refused, a crash), the file reads as an empty mark.
        let (_mark, found) = Mark::open(dir.path()).expect("second open");
        assert_eq!(found, Some(Acked::default()));
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut vote = Vote::new(7, 3);
        vote.committed = true;
        for acked in [
            Acked::default(),
            Acked {
                vote: Some(vote),
                last_index: Some(314),
            },
        ] {
            let bytes = acked.encode();
            assert_eq!(Acked::decode(&bytes), Ok(acked));
            for i in 0..LEN {
                let mut damaged = bytes;
                damaged[i] ^= 0x10;
                assert!(Acked::decode(&damaged).is_err(), "byte {i}");
            }
            assert!(Acked::decode(&bytes[..LEN - 1]).is_err());
        }
    }

    #[test]
    fn refuses_bytes_its_encoder_does_not_write_even_with_a_good_checksum() {
        let reseal = |mut bytes: [u8; LEN]| {
            let crc = crc32fast::hash(&bytes[..LEN - 4]);
            bytes[LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        let vote = Acked {
            vote: Some(Vote::new(7, 3)),
            last_index: Some(3),
        };
        let mut flag = vote.encode();
        flag[34] = 2;
        let err = Acked::decode(&reseal(flag)).unwrap_err();
        assert!(err.contains("present flag is 2"), "{err}");
        let mut committed = vote.encode();
        committed[33] = 7;
        assert!(Acked::decode(&reseal(committed)).is_err());
        let mut absent = vote.encode();
        absent[34] = 0;
        let err = Acked::decode(&reseal(absent)).unwrap_err();
        assert!(err.contains("marked absent"), "{err}");
    }
}
