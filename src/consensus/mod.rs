//! Consensus: openraft's type configuration, its network over tonic, and the node-to-node
//! gRPC service. This module moves bytes between Raft instances; it never interprets commands.

pub mod network;

use std::io::Cursor;

use crate::state::{Request, Response};

openraft::declare_raft_types!(
    /// rampart's Raft types: requests and responses of `crate::state`, u64 node ids.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;
pub type Membership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type RaftMetrics = openraft::RaftMetrics<u64, openraft::BasicNode>;
