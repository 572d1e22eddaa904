//! Cluster membership: initialise once, add a learner, promote it, remove a node, status.
//! Every call is idempotent and works on any node (changes are forwarded to the leader), so a
//! change interrupted by a leader's death can be driven again with the same call. Promotions
//! and removals pass the guardrails of `guard` first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use super::{Node, NodeError};
use crate::ids::NodeId;
use crate::proto::internal::Empty;

/// A membership change, executed by the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCommand {
    AddLearner { id: NodeId, addr: String },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

/// One node as the status call sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: NodeId,
    pub addr: String,
    pub role: String,
    pub reachable: bool,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub matched_index: Option<u64>,
    /// The leader's last log index minus `matched_index`, when the answering node leads.
    #[serde(default)]
    pub lag: Option<u64>,
    /// This node's wall clock minus the answering node's, measured by the status call.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// This node's wall clock minus the median of the reachable members' clocks.
    #[serde(default)]
    pub clock_skew_ms: Option<i64>,
}

/// The cluster as one node sees it, with every member asked for its own indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub joint: bool,
    pub nodes: Vec<NodeView>,
    pub answered_by: NodeId,
    /// The leader's applied cluster time, when it answered.
    #[serde(default)]
    pub cluster_time_ms: Option<i64>,
    /// The leader bounds cluster time, or a member's clock is more than the skew off.
    #[serde(default)]
    pub clock_skew: bool,
    /// Why the leader bounds cluster time (`clock::Limit::as_str`), or empty.
    #[serde(default)]
    pub time_limit: String,
    #[serde(default)]
    pub max_clock_skew_ms: i64,
}

impl Node {
    /// Initialises the cluster with `members` (this node alone when empty). Calling it again
    /// with the same members is a no-op; with other members it is refused.
    pub async fn init(&self, members: BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let members = if members.is_empty() {
            BTreeMap::from([(self.id, self.config.advertised())])
        } else {
            members
        };
        if !members.contains_key(&self.id) {
            return Err(NodeError::Membership(format!(
                "members must include this node ({})",
                self.id
            )));
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        let already = |node: &Node| {
            let voters: BTreeSet<NodeId> = node.members().keys().copied().collect();
            let wanted: BTreeSet<NodeId> = members.keys().copied().collect();
            if voters == wanted || voters.is_empty() {
                Ok(())
            } else {
                Err(NodeError::Membership(format!(
                    "already initialised with members {voters:?}"
                )))
            }
        };
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Stopped(e.to_string()))?
        {
            return already(self);
        }
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => already(self),
            Err(RaftError::APIError(e)) => Err(NodeError::Membership(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(NodeError::Stopped(e.to_string())),
        }
    }

    /// Runs a membership change on the leader, wherever it is.
    pub async fn admin(&self, command: AdminCommand) -> Result<(), NodeError> {
        let deadline = Instant::now() + self.config.request_timeout();
        loop {
            let result = if self.is_leader() {
                self.admin_forwarded(command.clone()).await
            } else if let Some((id, addr)) = self.leader() {
                self.forward_admin(id, &addr, &command).await
            } else {
                Err(NodeError::NoLeader)
            };
            match result {
                Err(e) if e.retryable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn forward_admin(
        &self,
        leader: NodeId,
        addr: &str,
        command: &AdminCommand,
    ) -> Result<(), NodeError> {
        self.call_leader::<_, Result<(), NodeError>>(leader, addr, super::Forwarded::Admin, command)
            .await?
    }

    /// Executes a membership change on this node, which must lead.
    pub async fn admin_forwarded(&self, command: AdminCommand) -> Result<(), NodeError> {
        let membership = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let joint = membership.get_joint_config().len() > 1;
        let change = match command {
            AdminCommand::AddLearner { id, addr } => {
                if membership.get_node(&id).is_some_and(|n| n.addr == addr) {
                    return Ok(());
                }
                if voters.contains(&id) {
                    return Err(NodeError::Membership(format!(
                        "node {id} is a voter already; remove it first"
                    )));
                }
                return match self.raft.add_learner(id, BasicNode { addr }, true).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(write_error(e)),
                };
            }
            AdminCommand::Promote { id } => {
                if membership.get_node(&id).is_none() {
                    return Err(NodeError::Membership(format!(
                        "node {id} is not a member; add it as a learner first"
                    )));
                }
                if voters.contains(&id) && !joint {
                    return Ok(());
                }
                if !voters.contains(&id) {
                    let addr = membership
                        .get_node(&id)
                        .map(|n| n.addr.clone())
                        .unwrap_or_default();
                    self.wait_caught_up(id, &addr).await?;
                }
                let mut after = voters.clone();
                after.insert(id);
                self.check_quorum_after(&format!("promoting node {id}"), &after)
                    .await?;
                ChangeMembers::AddVoterIds(BTreeSet::from([id]))
            }
            AdminCommand::Remove { id } => {
                if membership.get_node(&id).is_none() {
                    return Ok(());
                }
                if voters.contains(&id) {
                    if voters.len() == 1 {
                        return Err(NodeError::Membership("cannot remove the last voter".into()));
                    }
                    let mut after = voters.clone();
                    after.remove(&id);
                    self.check_quorum_after(&format!("removing node {id}"), &after)
                        .await?;
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                }
            }
        };
        match self.raft.change_membership(change, false).await {
            Ok(_) => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }

    /// Leader, term, members, and each member's own log and applied index.
    pub async fn status(&self) -> ClusterView {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let learners: Vec<NodeId> = membership.learner_ids().collect();
        let matched = m.replication.clone().unwrap_or_default();
        let mut nodes = Vec::new();
        // The leader's view of replication, when another node leads (from its status reply).
        let mut leader_view: Option<(u64, BTreeMap<NodeId, u64>)> = None;
        let mut cluster_time = None;
        let mut time_limit = String::new();
        let leader = self.leader_id();
        for (id, node) in membership.nodes() {
            let role = if leader == Some(*id) {
                "leader"
            } else if voters.contains(id) {
                "follower"
            } else {
                "learner"
            };
            let mut view = NodeView {
                id: *id,
                addr: node.addr.clone(),
                role: role.to_owned(),
                reachable: false,
                term: 0,
                last_log_index: 0,
                applied_index: 0,
                matched_index: matched.get(id).and_then(|l| l.map(|l| l.index)),
                lag: self.lag(*id),
                clock_offset_ms: None,
                clock_skew_ms: None,
            };
            if let Ok(mut client) = self.peers.client(*id, &node.addr) {
                let mut request = tonic::Request::new(Empty {});
                request.set_timeout(Duration::from_millis(500));
                let before = self.time.wall();
                if let Ok(reply) = client.node_status(request).await {
                    let after = self.time.wall();
                    let r = reply.into_inner();
                    if r.wall_ms > 0 {
                        view.clock_offset_ms = Some(r.wall_ms - before / 2 - after / 2);
                    }
                    if leader == Some(*id) {
                        cluster_time = Some(r.cluster_time_ms);
                        time_limit.clone_from(&r.time_limit);
                    }
                    view.reachable = true;
                    view.term = r.term;
                    view.last_log_index = r.last_log_index;
                    view.applied_index = r.applied_index;
                    if leader == Some(*id) && *id != self.id {
                        leader_view = Some((r.last_log_index, r.matched.into_iter().collect()));
                    }
                }
            }
            nodes.push(view);
        }
        if let Some((last, matched)) = leader_view {
            for view in &mut nodes {
                if leader == Some(view.id) {
                    view.lag = Some(0);
                } else {
                    view.matched_index = matched.get(&view.id).copied();
                    view.lag = Some(last.saturating_sub(view.matched_index.unwrap_or(0)));
                }
            }
        }
        let max_skew = self.time.max_skew();
        let mut offsets: Vec<i64> = nodes.iter().filter_map(|n| n.clock_offset_ms).collect();
        offsets.sort_unstable();
        let median = offsets.get(offsets.len().saturating_sub(1) / 2).copied();
        let mut skewed = !time_limit.is_empty();
        for view in &mut nodes {
            view.clock_skew_ms = view.clock_offset_ms.zip(median).map(|(o, m)| o - m);
            skewed |= view.clock_skew_ms.is_some_and(|s| s.abs() > max_skew);
        }
        ClusterView {
            cluster_time_ms: cluster_time,
            clock_skew: skewed,
            time_limit,
            max_clock_skew_ms: max_skew,
            leader,
            term: m.current_term,
            voters,
            learners,
            joint: membership.get_joint_config().len() > 1,
            nodes,
            answered_by: self.id,
        }
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> NodeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => NodeError::NoLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            NodeError::Membership(e.to_string())
        }
        RaftError::Fatal(e) => NodeError::Stopped(e.to_string()),
    }
}
