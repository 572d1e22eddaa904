//! Restoring a backup into a fresh cluster through the log.
//!
//! A backup's state is too big for one log entry, so it arrives in parts (`Command::Restore`),
//! each one entry within the entry size limit. Parts are staged in the replicated state, so a
//! snapshot or a restart in the middle of a restore loses nothing, and the last part replaces
//! the whole state at once: every node switches at the same log index. Only a fresh cluster
//! (no gate, no signal) takes a restore. Deterministic like the rest of `State::apply`: no IO,
//! no clock.

use serde::{Deserialize, Serialize};

use super::{Response, State, StateError};

/// One part of a restore: `bytes` are part `part` (from 0) of `parts` of the MessagePack
/// encoding of the state to restore. `id` tells restores apart; part 0 starts a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorePart {
    pub id: String,
    pub part: u32,
    pub parts: u32,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A restore in progress (`received < parts`) or done (`received == parts`, no bytes kept:
/// remembered so that a retried part of it is answered, not refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreStaging {
    pub id: String,
    pub parts: u32,
    pub received: u32,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Encodes a state for `RestorePart`s (what the last part decodes).
pub fn encode_for_restore(state: &State) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(state).map_err(|e| e.to_string())
}

impl State {
    /// Whether nothing was ever put into this state: no gate, no signal, no ingest key.
    pub fn is_fresh(&self) -> bool {
        self.gates.is_empty() && self.ingested.is_empty() && self.signals_accepted == 0
    }

    /// Why this state cannot take a restore, if it cannot.
    pub fn restore_refusal(&self) -> Option<StateError> {
        (!self.is_fresh()).then(|| StateError::NotEmpty {
            reason: format!(
                "the cluster holds {} gates and {} accepted signals; a backup is restored only \
                 into a fresh cluster",
                self.gates.len(),
                self.signals_accepted
            ),
        })
    }

    pub(super) fn restore(&mut self, p: &RestorePart) -> Response {
        let progress = |s: &RestoreStaging| Response::Restored {
            received: s.received,
            parts: s.parts,
        };
        // A part applied before (a retried write whose first answer was lost) changes nothing.
        if let Some(s) = self.restoring.as_ref().filter(|s| s.id == p.id) {
            if p.part < s.received {
                return progress(s);
            }
        }
        if let Some(refusal) = self.restore_refusal() {
            return Response::Refused(refusal);
        }
        let invalid = |field: &str, reason: String| {
            Response::Refused(StateError::Invalid {
                field: field.into(),
                reason,
            })
        };
        if p.parts == 0 || p.part >= p.parts {
            return invalid(
                "restore.part",
                format!("part {} of {} parts does not exist", p.part, p.parts),
            );
        }
        let staging = match self.restoring.as_mut() {
            _ if p.part == 0 => self.restoring.insert(RestoreStaging {
                id: p.id.clone(),
                parts: p.parts,
                received: 0,
                bytes: Vec::new(),
            }),
            Some(s) if s.id == p.id && s.parts == p.parts && s.received == p.part => s,
            Some(s) if s.id == p.id => {
                return invalid(
                    "restore.part",
                    format!(
                        "restore {} expects part {} of {}, not part {} of {}",
                        s.id, s.received, s.parts, p.part, p.parts
                    ),
                )
            }
            _ => {
                return invalid(
                    "restore.id",
                    format!("no restore {} in progress (start with part 0)", p.id),
                )
            }
        };
        staging.bytes.extend_from_slice(&p.bytes);
        staging.received += 1;
        if staging.received < staging.parts {
            return progress(staging);
        }
        let bytes = std::mem::take(&mut staging.bytes);
        let done = staging.clone();
        match rmp_serde::from_slice::<State>(&bytes) {
            Ok(mut restored) => {
                restored.cluster_time = restored.cluster_time.max(self.cluster_time);
                restored.restoring = Some(done.clone());
                *self = restored;
                progress(&done)
            }
            Err(e) => {
                self.restoring = None;
                invalid(
                    "restore",
                    format!("the restored state does not decode: {e}"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Command, Request};

    fn source() -> State {
        let mut s = State {
            signals_accepted: 12,
            cluster_time: 5_000,
            ..State::default()
        };
        s.ingested.insert("k".into(), Default::default());
        s.ingested_order.push_back((4_000, "k".into()));
        s
    }

    fn parts(state: &State, id: &str, size: usize) -> Vec<RestorePart> {
        let bytes = encode_for_restore(state).expect("encode");
        let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
        let n = pieces.len() as u32;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, b)| RestorePart {
                id: id.into(),
                part: i as u32,
                parts: n,
                bytes: b.to_vec(),
            })
            .collect()
    }

    fn apply(state: &mut State, part: &RestorePart, at: i64) -> Response {
        state.apply(&Request {
            at,
            command: Command::Restore(part.clone()),
        })
    }

    #[test]
    fn parts_in_order_replace_the_state_through_a_snapshot_and_retries() {
        let want = source();
        let parts = parts(&want, "r1", 7);
        assert!(parts.len() > 3);
        let mut state = State::default();
        for (i, p) in parts.iter().enumerate() {
            let r = apply(&mut state, p, 9_000);
            assert_eq!(
                r,
                Response::Restored {
                    received: i as u32 + 1,
                    parts: parts.len() as u32
                }
            );
            // A retried part changes nothing.
            assert_eq!(apply(&mut state, p, 9_000), r);
            // A snapshot in the middle keeps the staged parts.
            let encoded = encode_for_restore(&state).expect("encode");
            state = rmp_serde::from_slice(&encoded).expect("decode");
        }
        assert_eq!(state.signals_accepted, 12);
        assert_eq!(state.ingested, want.ingested);
        assert_eq!(state.cluster_time, 9_000, "cluster time never runs back");
        let done = state.restoring.as_ref().expect("remembered");
        assert!(done.bytes.is_empty() && done.received == done.parts);
        // Now the state is not fresh: a new restore is refused, a retried old part is not.
        let again = apply(&mut state, &parts[0], 9_000);
        assert!(matches!(again, Response::Restored { .. }), "{again:?}");
        let other = apply(
            &mut state,
            &RestorePart {
                id: "r2".into(),
                ..parts[0].clone()
            },
            9_000,
        );
        assert!(
            matches!(other, Response::Refused(StateError::NotEmpty { .. })),
            "{other:?}"
        );
    }

    #[test]
    fn out_of_order_parts_and_garbage_are_refused_naming_the_field() {
        let parts = parts(&source(), "r1", 7);
        let mut state = State::default();
        let skipped = apply(&mut state, &parts[1], 1);
        assert!(
            matches!(&skipped, Response::Refused(StateError::Invalid { field, .. }) if field == "restore.id"),
            "{skipped:?}"
        );
        apply(&mut state, &parts[0], 1);
        let gap = apply(&mut state, &parts[2], 1);
        assert!(
            matches!(&gap, Response::Refused(StateError::Invalid { field, reason }) if field == "restore.part" && reason.contains("expects part 1")),
            "{gap:?}"
        );
        let garbage = RestorePart {
            id: "g".into(),
            part: 0,
            parts: 1,
            bytes: vec![0xc1; 9],
        };
        let r = apply(&mut state, &garbage, 1);
        assert!(
            matches!(&r, Response::Refused(StateError::Invalid { field, .. }) if field == "restore"),
            "{r:?}"
        );
        assert!(state.is_fresh() && state.restoring.is_none());
    }
}
