//! The node-to-node gRPC service: Raft RPCs, forwarded writes and admin calls, read index.

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest};
use tonic::{Request, Response, Status};

use super::admin::AdminCommand;
use super::{Node, NodeError};
use crate::consensus::TypeConfig;
use crate::proto::internal::raft_internal_server::RaftInternal;
use crate::proto::internal::{
    Blob, ClockReply, ClockRequest, Empty, NodeStatusReply, PreVoteReply, PreVoteRequest,
    ReadIndexReply,
};
use crate::state::Command;
use crate::store::codec::{decode, encode_wire};

/// Serves other nodes of the cluster.
pub struct PeerService {
    pub node: Arc<Node>,
}

fn bad_payload(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("undecodable payload: {e}"))
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<Blob>, Status> {
    encode_wire(value)
        .map(|data| Response::new(Blob { data }))
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl RaftInternal for PeerService {
    async fn vote(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc = decode(&request.into_inner().data).map_err(bad_payload)?;
        let response = self.node.raft.vote(rpc).await;
        if response.as_ref().is_ok_and(|r| r.vote_granted) {
            self.node.candidacy.reset_timer();
        }
        reply(&response)
    }

    async fn append_entries(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode(&request.into_inner().data).map_err(bad_payload)?;
        // A leader at this node's vote or above is alive now, however long this node then
        // takes to write what it sent (its fsync under load must not look like silence).
        if rpc.vote.is_committed() && rpc.vote >= self.node.raft.metrics().borrow().vote {
            self.node.candidacy.heard_leader();
        }
        reply(&self.node.raft.append_entries(rpc).await)
    }

    async fn install_snapshot(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> =
            decode(&request.into_inner().data).map_err(bad_payload)?;
        let vote = rpc.vote;
        let response = self.node.raft.install_snapshot(rpc).await;
        if response.as_ref().is_ok_and(|r| r.vote == vote) {
            self.node.candidacy.heard_leader();
        }
        reply(&response)
    }

    async fn pre_vote(
        &self,
        request: Request<PreVoteRequest>,
    ) -> Result<Response<PreVoteReply>, Status> {
        Ok(Response::new(self.node.pre_vote(&request.into_inner())))
    }

    async fn forward(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        let command: Command = decode(&request.into_inner().data).map_err(bad_payload)?;
        reply(&self.node.write_forwarded(command).await)
    }

    async fn read_index(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        match self.node.leader_read_index().await {
            Ok(read_index) => Ok(Response::new(ReadIndexReply { read_index })),
            Err(NodeError::NoLeader) => Err(Status::unavailable("not the leader")),
            Err(e) => Err(Status::aborted(e.to_string())),
        }
    }

    async fn node_status(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<NodeStatusReply>, Status> {
        let m = self.node.raft.metrics().borrow().clone();
        let leads = m.current_leader == Some(self.node.id);
        let (limit, median) = if leads {
            let clock = self.node.time.report();
            (clock.limit, clock.quorum_median)
        } else {
            (None, None)
        };
        Ok(Response::new(NodeStatusReply {
            wall_ms: self.node.time.wall(),
            cluster_time_ms: self.node.state.read().state.cluster_time,
            time_limit: limit
                .map(super::clock::Limit::as_str)
                .unwrap_or_default()
                .to_owned(),
            quorum_clock_ms: median,
            id: self.node.id,
            addr: self.node.config.advertised(),
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            leader_id: self.node.leader_id(),
            state: format!("{:?}", m.state),
            matched: m
                .replication
                .iter()
                .flatten()
                .filter_map(|(id, l)| Some((*id, l.as_ref()?.index)))
                .collect(),
        }))
    }

    async fn clock(&self, request: Request<ClockRequest>) -> Result<Response<ClockReply>, Status> {
        let r = request.into_inner();
        let wall_ms = self.node.time.observe_leader(r.leader_id, r.leader_time_ms);
        Ok(Response::new(ClockReply { wall_ms }))
    }

    async fn forward_admin(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        let command: AdminCommand = decode(&request.into_inner().data).map_err(bad_payload)?;
        reply(&self.node.admin_forwarded(command).await)
    }
}
