//! The entries of the replicated log (what clients and the leader propose) and their results.
//!
//! Every entry carries the proposing leader's clock (`at`); the state machine advances cluster
//! time to `max(cluster_time, at)`, so cluster time travels in the log and never runs
//! backwards across leader changes.

use serde::{Deserialize, Serialize};

use super::gate::Decision;
use crate::engine::{Contract, Judgement, Signal, Window};
use crate::ids::{CohortName, GateKey, Millis, NodeId};

/// One entry of application data in the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The time the leader stamped on the entry when it proposed it: its wall clock as far as
    /// a majority of the voters' clocks allow (`node::clock::allowed`), never below the
    /// cluster time already applied.
    pub at: Millis,
    pub command: Command,
}

/// What a log entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create or replace a gate's contract (a new contract version).
    PutContract { contract: Box<Contract> },
    /// Retire a gate: its signals are refused and it is no longer evaluated; its decision log stays.
    DeleteContract { gate: GateKey },
    /// A batch of signals, counted once per idempotency key.
    Ingest {
        idempotency_key: String,
        signals: Vec<Signal>,
    },
    /// Several ingest batches in one entry: the leader groups batches that arrive together so
    /// one Raft append (one fsync) carries them all. Applied exactly like consecutive `Ingest`s.
    IngestGroup { batches: Vec<IngestBatch> },
    /// The leader's judgement of one closed window of one cohort, computed from `based_on`.
    Decide {
        gate: GateKey,
        cohort: CohortName,
        window: Window,
        based_on: u64,
        judgement: Box<Judgement>,
        leader: NodeId,
        term: u64,
    },
    /// A human decision.
    Override(Override),
    /// The leader delivered decision `version` of `gate` to the webhook `url` (or gave up on
    /// it): that receiver's cursor moves to `version` (see `state::notify`).
    Notified {
        gate: GateKey,
        url: String,
        version: u64,
    },
    /// Nothing but time: lets windows close when no other entry arrives.
    Tick,
    /// One part of a backup restored into a fresh cluster (see `state::restore`).
    Restore(super::restore::RestorePart),
}

impl Command {
    /// The gate whose decision log this command may extend, if any.
    pub fn gate(&self) -> Option<&GateKey> {
        match self {
            Command::PutContract { contract } => Some(&contract.gate),
            Command::DeleteContract { gate } | Command::Decide { gate, .. } => Some(gate),
            Command::Override(ov) => Some(&ov.gate),
            Command::Ingest { .. }
            | Command::IngestGroup { .. }
            | Command::Notified { .. }
            | Command::Restore(_)
            | Command::Tick => None,
        }
    }

    /// Whether the evaluator may have something new to judge once this is applied: anything
    /// but its own decisions (which would otherwise wake it for every window it closes).
    pub fn wakes_evaluator(&self) -> bool {
        !matches!(self, Command::Decide { .. })
    }
}

/// One client batch inside an `IngestGroup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestBatch {
    pub idempotency_key: String,
    pub signals: Vec<Signal>,
}

/// An operator's change of a gate, always with an actor and a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub gate: GateKey,
    /// One cohort, or every cohort of the gate.
    pub cohort: Option<CohortName>,
    pub kind: OverrideKind,
    pub actor: String,
    pub reason: String,
}

/// The overrides a human can apply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// Keep the exposure until resumed.
    Hold,
    /// Back to ramping; the only way to turn a kill switch off.
    Resume,
    /// Allow the next stage above the approval limit.
    Approve,
    /// Exposure to zero.
    Rollback,
    /// Kill switch on: everyone gets the fallback.
    Kill,
    /// Exposure to this percentage.
    SetExposure(f64),
}

impl OverrideKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            OverrideKind::Hold => "hold",
            OverrideKind::Resume => "resume",
            OverrideKind::Approve => "approve",
            OverrideKind::Rollback => "rollback",
            OverrideKind::Kill => "kill",
            OverrideKind::SetExposure(_) => "set_exposure",
        }
    }
}

/// One signal refused by the state machine, by its position in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub index: u32,
    pub field: String,
    pub reason: String,
}

/// The result of an ingested batch; stored under its idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    pub accepted: u32,
    pub rejected: Vec<Rejection>,
    /// True when the key was seen before and this answer is the stored one.
    pub duplicate: bool,
    /// The Raft log index of the entry that first applied the batch (a duplicate's answer
    /// carries the original's). 0 in answers stored by older nodes.
    #[serde(default)]
    pub log_index: u64,
}

/// What applying an entry produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Membership and blank entries.
    None,
    ContractPut {
        contract_version: u64,
        gate_version: u64,
    },
    ContractDeleted {
        gate_version: u64,
    },
    Ingested(IngestOutcome),
    /// One outcome per batch of an `IngestGroup`, in order.
    IngestedGroup(Vec<IngestOutcome>),
    /// Whether a decision was applied, and why not when it was not.
    Decided {
        applied: bool,
        version: u64,
        skipped: Option<String>,
    },
    Overridden(Box<Decision>),
    /// The receiver's cursor after a `Notified` (never lower than before).
    Notified {
        cursor: u64,
    },
    Ticked,
    /// Parts of a restore applied so far; `received == parts` once the state is replaced.
    Restored {
        received: u32,
        parts: u32,
    },
    /// The command was refused; nothing changed.
    Refused(StateError),
}

/// Why the state machine refused a command. Expected errors, reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StateError {
    #[error("gate {0} has no contract")]
    UnknownGate(GateKey),
    #[error("gate {gate} has no cohort {cohort}")]
    UnknownCohort { gate: GateKey, cohort: CohortName },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The command needs an empty cluster (a restore).
    #[error("{reason}")]
    NotEmpty { reason: String },
}
