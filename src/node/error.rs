//! Errors of the node layer: what a write, a read or an admin call can fail with.

use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// Why a node could not serve a request. Expected conditions; `api::error` maps them to gRPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NodeError {
    /// No leader is known (an election is running, or the cluster is not initialised).
    #[error("no leader is known; retry shortly")]
    NoLeader,
    /// The leader could not be reached to forward the request.
    #[error("leader {leader} unreachable: {message}")]
    LeaderUnreachable { leader: u64, message: String },
    /// The request's outcome is unknown (the leader changed or a timeout hit after sending).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The request took longer than the node's request timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The state machine refused the command; nothing changed.
    #[error("{0}")]
    Refused(StateError),
    /// The request breaks a limit (size, count).
    #[error("{field}: {reason}")]
    TooLarge { field: String, reason: String },
    /// A membership change that cannot be made as asked.
    #[error("membership: {0}")]
    Membership(String),
    /// A new cluster's leader has not read a majority of the voters' clocks yet, so it has no
    /// time to stamp the entry with (see "Cluster time" in docs/design.md).
    #[error("cluster time is not known yet (fewer than a majority of the voters' clocks read); retry shortly")]
    NoClusterTime,
    /// Raft stopped on this node (shutdown or a storage failure).
    #[error("raft stopped on this node: {0}")]
    Stopped(String),
}

impl NodeError {
    /// Whether a caller may retry the same request as is.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            NodeError::NoLeader | NodeError::LeaderUnreachable { .. } | NodeError::NoClusterTime
        )
    }
}
