//! The replicated state machine: gates, contracts, windows, decisions and idempotency keys.
//!
//! `State::apply` is deterministic: the same log gives the same state on every node. It owns
//! the rules that need the replicated state (signals against contracts and open windows,
//! decisions against gate versions, overrides) and never does IO, reads a clock or awaits.
//! Storage (`crate::store`) persists it; the evaluator reads it.

pub mod command;
pub mod gate;
pub mod notify;
pub mod restore;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use command::{
    Command, IngestBatch, IngestOutcome, Override, OverrideKind, Rejection, Request, Response,
    StateError,
};
pub use gate::{Action, Assignment, CohortChange, CohortUnresolved, DecidedBy, Decision, Gate};

use crate::engine::signal::{Refusal, SignalError};
use crate::engine::{CohortWindow, Signal, Window};
use crate::ids::{GateKey, Millis};

/// How long an idempotency key is remembered, in cluster time.
pub const DEDUP_RETENTION_MS: Millis = 24 * 60 * 60 * 1000;
/// Most idempotency keys remembered at once; the oldest are forgotten first.
pub const DEDUP_MAX_KEYS: usize = 1_000_000;
/// How far ahead of cluster time a signal's event time may be (clock skew of producers).
pub const MAX_FUTURE_MS: Millis = crate::engine::signal::MAX_FUTURE_MS;

/// Everything the cluster agrees on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Cluster time: the largest proposal time applied so far.
    pub cluster_time: Millis,
    pub gates: BTreeMap<GateKey, Gate>,
    /// Outcome of each remembered ingest batch, by idempotency key.
    pub ingested: BTreeMap<String, IngestOutcome>,
    /// Keys in the order they were first seen, with their cluster time, for expiry.
    pub ingested_order: VecDeque<(Millis, String)>,
    /// Signals accepted since the cluster began (across every gate).
    pub signals_accepted: u64,
    /// The restore in progress, or the last one done (`state::restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restoring: Option<restore::RestoreStaging>,
}

/// What applying one entry did: its answer, and the decisions it appended (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub response: Response,
    pub decisions: Vec<Decision>,
}

impl State {
    /// Applies one entry at its proposal time.
    pub fn apply(&mut self, request: &Request) -> Response {
        self.apply_at(request, 0).response
    }

    /// `apply` for the entry at `log_index` of the Raft log (recorded with ingest outcomes,
    /// so a retried batch is answered with the index that committed it), with the decisions
    /// the entry appended, for the store to publish to watchers.
    pub fn apply_at(&mut self, request: &Request, log_index: u64) -> Applied {
        let gate = request.command.gate();
        let before = gate
            .and_then(|g| self.gates.get(g))
            .map_or(0, |g| g.version);
        let response = self.respond(request, log_index);
        let decisions = gate
            .and_then(|g| self.gates.get(g))
            .map(|g| {
                let from = g.decisions.partition_point(|d| d.version <= before);
                g.decisions[from..].to_vec()
            })
            .unwrap_or_default();
        Applied {
            response,
            decisions,
        }
    }

    fn respond(&mut self, request: &Request, log_index: u64) -> Response {
        self.cluster_time = self.cluster_time.max(request.at);
        let now = self.cluster_time;
        match &request.command {
            Command::PutContract { contract } => {
                let gate = self
                    .gates
                    .entry(contract.gate.clone())
                    .or_insert_with(|| Gate::new((**contract).clone(), now));
                let decision = gate.put_contract((**contract).clone(), now);
                Response::ContractPut {
                    contract_version: decision.contract_version,
                    gate_version: decision.version,
                }
            }
            Command::DeleteContract { gate } => match self.live_gate_mut(gate) {
                Ok(g) => Response::ContractDeleted {
                    gate_version: g.delete(now).version,
                },
                Err(e) => Response::Refused(e),
            },
            Command::Ingest {
                idempotency_key,
                signals,
            } => Response::Ingested(self.ingest(idempotency_key, signals, log_index)),
            Command::IngestGroup { batches } => Response::IngestedGroup(
                batches
                    .iter()
                    .map(|b| self.ingest(&b.idempotency_key, &b.signals, log_index))
                    .collect(),
            ),
            Command::Decide {
                gate,
                cohort,
                window,
                based_on,
                judgement,
                leader,
                term,
            } => {
                let Some(g) = self.gates.get_mut(gate) else {
                    return Response::Decided {
                        applied: false,
                        version: 0,
                        skipped: Some("unknown gate".into()),
                    };
                };
                let by = DecidedBy::Leader {
                    node: *leader,
                    term: *term,
                };
                match g.decide(cohort, *window, *based_on, (**judgement).clone(), by, now) {
                    Ok(d) => Response::Decided {
                        applied: true,
                        version: d.version,
                        skipped: None,
                    },
                    Err(why) => Response::Decided {
                        applied: false,
                        version: g.version,
                        skipped: Some(why),
                    },
                }
            }
            Command::Override(ov) => match self.live_gate_mut(&ov.gate) {
                Ok(g) => match g.apply_override(ov, now) {
                    Ok(d) => Response::Overridden(Box::new(d.clone())),
                    Err(e) => Response::Refused(e),
                },
                Err(e) => Response::Refused(e),
            },
            Command::Notified { gate, url, version } => match self.gates.get_mut(gate) {
                Some(g) => match g.notified(url, *version) {
                    Ok(cursor) => Response::Notified { cursor },
                    Err(e) => Response::Refused(e),
                },
                None => Response::Refused(StateError::UnknownGate(gate.clone())),
            },
            Command::Restore(part) => self.restore(part),
            Command::Tick => Response::Ticked,
        }
    }

    fn live_gate_mut(&mut self, key: &GateKey) -> Result<&mut Gate, StateError> {
        match self.gates.get_mut(key) {
            Some(g) if !g.deleted => Ok(g),
            _ => Err(StateError::UnknownGate(key.clone())),
        }
    }

    /// A gate that exists and is not deleted.
    pub fn live_gate(&self, key: &GateKey) -> Option<&Gate> {
        self.gates.get(key).filter(|g| !g.deleted)
    }

    fn ingest(&mut self, key: &str, signals: &[Signal], log_index: u64) -> IngestOutcome {
        if let Some(seen) = self.ingested.get(key) {
            return IngestOutcome {
                duplicate: true,
                ..seen.clone()
            };
        }
        let now = self.cluster_time;
        let mut outcome = IngestOutcome {
            log_index,
            ..IngestOutcome::default()
        };
        for (i, signal) in signals.iter().enumerate() {
            match self.fold_signal(signal, now) {
                Ok(()) => outcome.accepted += 1,
                Err(e) => outcome.rejected.push(Rejection {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    field: e.field,
                    reason: e.reason,
                }),
            }
        }
        self.signals_accepted += u64::from(outcome.accepted);
        self.remember(key, &outcome, now);
        outcome
    }

    fn fold_signal(&mut self, signal: &Signal, now: Millis) -> Result<(), SignalError> {
        let gate = match self.gates.get_mut(&signal.gate) {
            Some(g) if !g.deleted => g,
            _ => {
                return Err(Refusal::UnknownGate.error(format!(
                    "gate {} {}",
                    signal.gate,
                    Refusal::UnknownGate.words()
                )))
            }
        };
        let Some(spec) = gate.contract.metric(&signal.metric) else {
            return Err(Refusal::UnknownMetric.error(format!(
                "gate {} {} {}",
                signal.gate,
                Refusal::UnknownMetric.words(),
                signal.metric
            )));
        };
        if !gate.cohorts.contains_key(&signal.cohort) {
            return Err(Refusal::UnknownCohort.error(format!(
                "gate {} {} {}",
                signal.gate,
                Refusal::UnknownCohort.words(),
                signal.cohort
            )));
        }
        crate::engine::window::check_kind(spec, &signal.measurement)?;
        let start = gate.contract.window_start(signal.at);
        let window = Window {
            start,
            end: start + gate.contract.window.0,
        };
        if signal.at > now + MAX_FUTURE_MS {
            return Err(Refusal::Future.error(Refusal::Future.words().into()));
        }
        if start < gate.first_window {
            return Err(Refusal::BeforeGate.error(Refusal::BeforeGate.words().into()));
        }
        // Only a closed window refuses signals. One decided before it closed (an early kill;
        // an operator may have resumed the cohort since) still takes its on-time signals: the
        // decision stands, and later windows' evidence sees the whole window.
        if gate.window_closed(window, now) {
            return Err(Refusal::ClosedWindow.error(Refusal::ClosedWindow.words().into()));
        }
        let spec = spec.clone();
        gate.windows
            .entry((signal.cohort.clone(), start))
            .or_insert_with(|| CohortWindow::new(window))
            .add(&spec, signal)?;
        gate.signals_accepted += 1;
        Ok(())
    }

    fn remember(&mut self, key: &str, outcome: &IngestOutcome, now: Millis) {
        self.ingested.insert(key.to_owned(), outcome.clone());
        self.ingested_order.push_back((now, key.to_owned()));
        while let Some((at, oldest)) = self.ingested_order.front() {
            let expired =
                *at + DEDUP_RETENTION_MS < now || self.ingested_order.len() > DEDUP_MAX_KEYS;
            if !expired {
                break;
            }
            self.ingested.remove(oldest);
            self.ingested_order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
