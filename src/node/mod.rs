//! A rampart node: Raft, its storage and the leader's evaluator, and the two operations every
//! API call reduces to — a replicated write and a linearizable read barrier — each of which
//! works on any node (followers forward to the leader).
//!
//! The node owns the async runtime's side of consensus. It never interprets commands (that is
//! `crate::state`) and never speaks the public protobuf API (that is `crate::api`).

pub mod admin;
pub mod candidacy;
pub mod clock;
pub mod config;
mod early_kill;
pub mod error;
pub mod evaluator;
mod group_commit;
mod guard;
pub use guard::quorum_index;
pub mod metrics;
pub mod peer_service;
pub mod timekeeper;
mod watchdog;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use config::NodeConfig;
pub use error::NodeError;

use crate::auth::{Access, Authenticate};
use crate::consensus::network::{Network, Peers};
use crate::consensus::Raft;
use crate::ids::{Millis, NodeId};
use crate::proto::internal::{Blob, Empty};
use crate::state::{Command, Response};
use crate::store::codec::{decode, encode_wire};
use crate::store::{LogStore, StateHandle, MAX_ENTRY_BYTES};
use crate::tls::Tls;

/// Most log entries a node's apply may trail its log by and still be ready.
pub const READY_LAG: u64 = 64;

/// A committed write: what the state machine answered and the log index it went in at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub response: Response,
    pub log_index: u64,
}

/// What a forwarded write returns to the follower that forwarded it.
pub type ForwardResult = Result<Written, NodeError>;

/// A running node.
pub struct Node {
    pub id: NodeId,
    pub config: NodeConfig,
    pub raft: Raft,
    pub state: Arc<StateHandle>,
    pub peers: Arc<Peers>,
    /// Who may call this node (checked at the API edges).
    pub access: Access,
    /// Authentication and the per-caller rate limit, shared by the gRPC and HTTP edges so a
    /// caller has one budget whichever door it uses.
    pub authenticate: Authenticate,
    /// This node's TLS material, when it serves mutual TLS.
    pub tls: Option<Tls>,
    /// This node's clock, its peers' clock readings and the bound on proposed time.
    pub time: timekeeper::TimeKeeper,
    /// A second handle on the Raft log, read by the read barrier (see `log_floor`).
    log: LogStore,
    last_stamp: AtomicI64,
    shutdown: watch::Sender<bool>,
    /// Set once when the Raft core stopped on an error (see `watchdog`).
    fatal: watch::Receiver<Option<String>>,
    ingest_queue: tokio::sync::mpsc::Sender<group_commit::Pending>,
    /// What this node counts and times (served at `/metrics`).
    pub metrics: metrics::NodeMetrics,
    /// When it last heard from a leader; whether it may campaign (see `candidacy`).
    pub candidacy: candidacy::Candidacy,
}

/// Wall clock in epoch milliseconds.
pub fn wall_clock_ms() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl Node {
    /// Opens the storage under `config.data`, starts Raft and the evaluator.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Arc<Node>> {
        Self::start_with_clock(config, Arc::new(timekeeper::SystemClock)).await
    }

    /// `start`, reading wall-clock time from `clock` (tests give nodes skewed clocks).
    pub async fn start_with_clock(
        config: NodeConfig,
        clock: Arc<dyn timekeeper::WallClock>,
    ) -> anyhow::Result<Arc<Node>> {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config()?);
        let access = match &config.access {
            Some(path) => Access::load(path)?,
            None => Access::open_to_all(),
        };
        let (log, sm) = crate::store::open(&config.data)?;
        let state = sm.handle();
        let node_metrics = metrics::NodeMetrics::new(log.fsync_seconds(), sm.snapshot_metrics());
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        let peers = Arc::new(Peers::new(&access, tls.as_ref().map(Tls::client))?);
        let network = Network {
            peers: peers.clone(),
        };
        let raft = Raft::new(config.id, raft_config, network, log.clone(), sm).await?;
        let (ingest_queue, ingest_rx) = tokio::sync::mpsc::channel(4096);
        let (fatal_tx, fatal) = watch::channel(None);
        let max_skew = i64::try_from(config.max_clock_skew_ms).unwrap_or(i64::MAX);
        let authenticate = Authenticate::new(access.clone(), config.rate_limit);
        let node = Arc::new(Node {
            id: config.id,
            config,
            raft,
            state,
            peers,
            authenticate,
            access,
            tls,
            time: timekeeper::TimeKeeper::new(clock, max_skew),
            log,
            last_stamp: AtomicI64::new(0),
            shutdown: watch::channel(false).0,
            fatal,
            ingest_queue,
            metrics: node_metrics,
            candidacy: candidacy::Candidacy::default(),
        });
        tokio::spawn(watchdog::run(node.clone(), fatal_tx));
        tokio::spawn(evaluator::run(node.clone(), node.shutdown.subscribe()));
        tokio::spawn(timekeeper::run(node.clone(), node.shutdown.subscribe()));
        tokio::spawn(group_commit::run(node.clone(), ingest_rx));
        tokio::spawn(count_leader_changes(node.clone()));
        tokio::spawn(log_decisions(node.clone()));
        tokio::spawn(candidacy::run(node.clone()));
        Ok(node)
    }

    /// Stops the evaluator and Raft.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }

    /// A receiver that turns true when the node shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Turns `Some(error)` when the Raft core stopped on an error: the node is dead and its
    /// process should exit (`rampart serve` does).
    pub fn fatal_signal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// The proposal time of a new entry: the bounded time (`bounded_now`), never below an
    /// earlier stamp.
    fn stamp(&self) -> Millis {
        let at = self.bounded_now();
        self.last_stamp.fetch_max(at, Ordering::SeqCst).max(at)
    }

    /// The time this node may propose now if it leads: the median of the voters' clocks, or
    /// for a single voter its clock within its pace (see `clock::allowed`). Never below an
    /// earlier stamp or the applied cluster time; does not record a stamp.
    pub fn bounded_now(&self) -> Millis {
        let cluster_time = self.state.read().state.cluster_time;
        let floor = self.last_stamp.load(Ordering::SeqCst).max(cluster_time);
        self.time
            .allowed(self.id, &self.voters(), floor, cluster_time)
            .at
    }

    /// The voters of the current membership (the joint config's union during a change).
    pub fn voters(&self) -> Vec<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// The leader as this node knows it: itself when it leads, or the leader openraft names
    /// if this node heard from it within the leader lease. openraft keeps naming a leader
    /// that went silent until another is elected, and with the pre-vote a node cut off from
    /// a quorum never starts an election (see `candidacy`), so its silence is the test.
    pub fn leader_id(&self) -> Option<NodeId> {
        let leader = self.raft.metrics().borrow().current_leader?;
        (leader == self.id || self.candidacy.hears_leader(self.lease())).then_some(leader)
    }

    /// The leader as this node knows it (`leader_id`): id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let id = self.leader_id()?;
        let metrics = self.raft.metrics().borrow().clone();
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&id)?
            .addr
            .clone();
        Some((id, addr))
    }

    /// Whether this node can serve current reads: its Raft core running, a leader known, and
    /// its apply within [`READY_LAG`] entries of its log; why not otherwise. gRPC health and
    /// the HTTP `/readyz` both answer by this.
    pub fn ready(&self) -> Result<(), String> {
        if let Some(e) = self.fatal.borrow().as_ref() {
            return Err(format!("the raft core stopped: {e}"));
        }
        if self.leader_id().is_none() {
            return Err("no leader known".into());
        }
        let m = self.raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let behind = m.last_log_index.unwrap_or(0).saturating_sub(applied);
        if behind > READY_LAG {
            return Err(format!("applying: {behind} log entries behind"));
        }
        Ok(())
    }

    /// Whether the Raft core stopped on an error (the node is dead).
    pub fn is_fatal(&self) -> bool {
        self.fatal.borrow().is_some()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// Every member's address, voters and learners.
    pub fn members(&self) -> BTreeMap<NodeId, BasicNode> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }

    /// Replicates a command through the leader, wherever it is, and returns its result once
    /// committed by a quorum and applied.
    pub async fn write(&self, command: Command) -> Result<Written, NodeError> {
        if let Command::Ingest { signals, .. } = &command {
            let weight = group_commit::weight(signals);
            if weight > group_commit::GROUP_BYTES {
                return Err(NodeError::TooLarge {
                    field: "signals".into(),
                    reason: format!(
                        "the batch is about {weight} bytes; at most {} (split it)",
                        group_commit::GROUP_BYTES
                    ),
                });
            }
        } else {
            let size = crate::store::codec::encode(&command)
                .map_err(|e| NodeError::Stopped(e.to_string()))?
                .len();
            if size > MAX_ENTRY_BYTES {
                return Err(NodeError::TooLarge {
                    field: "request".into(),
                    reason: format!(
                        "encodes to {size} bytes; one write may be at most {MAX_ENTRY_BYTES}"
                    ),
                });
            }
        }
        let _pending = metrics::InFlight::new(&self.metrics.proposals_pending);
        let written = self.write_through_leader(command).await;
        if written.is_err() {
            self.metrics.proposals_failed.inc();
        }
        written
    }

    async fn write_through_leader(&self, command: Command) -> Result<Written, NodeError> {
        let deadline = Instant::now() + self.config.request_timeout();
        loop {
            let leader = match self.propose(command.clone()).await {
                Ok(written) => return Ok(written),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Forward(leader)) => leader,
            };
            if let Some((id, addr)) = leader {
                match self.forward(id, &addr, &command).await {
                    Ok(written) => return Ok(written),
                    Err(e) if e.retryable() => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(NodeError::NoLeader);
            }
            self.wait_for_leader(Duration::from_millis(200)).await;
        }
    }

    /// Proposes a command if this node leads (ingest batches through group commit);
    /// otherwise says where the leader is.
    async fn propose(&self, command: Command) -> Result<Written, Attempt> {
        let Command::Ingest {
            idempotency_key,
            signals,
        } = command
        else {
            return self.write_here(command).await;
        };
        if let Some(newest) = signals.iter().map(|s| s.at).max() {
            self.time.saw_signals(newest);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let batch = crate::state::IngestBatch {
            idempotency_key,
            signals,
        };
        let stopped = || Attempt::Failed(NodeError::Stopped("group commit stopped".into()));
        self.ingest_queue
            .send(group_commit::Pending { batch, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// A new cluster's first entries: waits (at most the request timeout) until the leader
    /// has a time to stamp them with, i.e. has read a majority of the voters' clocks. Without
    /// this, a contract applied right after `init` would start its gate at cluster time 0
    /// (1970), and the evaluator would judge every empty window since.
    async fn wait_for_cluster_time(&self) -> Result<(), NodeError> {
        let deadline = Instant::now() + self.config.request_timeout();
        while self.bounded_now() <= 0 {
            // Raft's metrics may lag its core by a moment, so "not the leader yet" is no
            // reason to go on; another node known as leader is (the write is forwarded).
            let leader = self.raft.metrics().borrow().current_leader;
            if leader.is_some_and(|l| l != self.id) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(NodeError::NoClusterTime);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Proposes a command as one entry if this node leads; otherwise says where the leader is.
    async fn write_here(&self, command: Command) -> Result<Written, Attempt> {
        if self.state.read().state.cluster_time <= 0 {
            self.wait_for_cluster_time()
                .await
                .map_err(Attempt::Failed)?;
        }
        let request = crate::state::Request {
            at: self.stamp(),
            command,
        };
        match self.raft.client_write(request).await {
            Ok(reply) => Ok(Written {
                response: reply.data,
                log_index: reply.log_id.index,
            }),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(Attempt::Forward(leader_of(&f)))
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(Attempt::Failed(NodeError::Membership(e.to_string())))
            }
            Err(RaftError::Fatal(e)) => Err(Attempt::Failed(NodeError::Stopped(e.to_string()))),
        }
    }

    /// Handles a write a follower forwarded: proposes it only if this node leads.
    pub async fn write_forwarded(&self, command: Command) -> ForwardResult {
        match self.propose(command).await {
            Ok(written) => Ok(written),
            Err(Attempt::Forward(_)) => Err(NodeError::NoLeader),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        addr: &str,
        command: &Command,
    ) -> Result<Written, NodeError> {
        self.call_leader::<_, ForwardResult>(leader, addr, Forwarded::Write, command)
            .await?
    }

    /// Sends a forwarded write or admin call to the leader and decodes its answer.
    async fn call_leader<T: Serialize, R: serde::de::DeserializeOwned>(
        &self,
        leader: NodeId,
        addr: &str,
        rpc: Forwarded,
        payload: &T,
    ) -> Result<R, NodeError> {
        let unreachable = |message: String| NodeError::LeaderUnreachable { leader, message };
        let mut client = self
            .peers
            .client(leader, addr)
            .map_err(|e| unreachable(e.to_string()))?;
        let data = encode_wire(payload).map_err(|e| NodeError::Stopped(e.to_string()))?;
        let mut request = tonic::Request::new(Blob { data });
        request.set_timeout(self.config.request_timeout());
        let reply = match rpc {
            Forwarded::Write => client.forward(request).await,
            Forwarded::Admin => client.forward_admin(request).await,
        };
        match reply {
            Ok(reply) => {
                decode::<R>(&reply.into_inner().data).map_err(|e| NodeError::Unknown(e.to_string()))
            }
            // Nothing reached the leader: safe to retry.
            Err(status) if status.code() == tonic::Code::Unavailable => {
                Err(unreachable(status.message().to_owned()))
            }
            Err(status) => Err(NodeError::Unknown(format!(
                "forwarding to leader {leader}: {}",
                status.message()
            ))),
        }
    }

    /// Waits until a leader is known (`leader_id`) or `timeout` passes.
    async fn wait_for_leader(&self, timeout: Duration) {
        let mut metrics = self.raft.metrics();
        let beat = Duration::from_millis(self.config.heartbeat_ms.max(10));
        let _ = tokio::time::timeout(timeout, async {
            loop {
                // A leader heard again shows in no metric: look at least every heartbeat.
                if let Ok(Err(_)) = tokio::time::timeout(beat, metrics.changed()).await {
                    return;
                }
                if self.leader_id().is_some() {
                    return;
                }
            }
        })
        .await;
        // Even when a leader is known already, give a failing leader a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Returns once this node's applied state reflects every write committed before the call:
    /// a read of the local state afterwards is linearizable. Followers ask the leader for its
    /// read index and wait until they have applied it.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let deadline = Instant::now() + self.config.request_timeout();
        loop {
            let leader = match self.raft.ensure_linearizable().await {
                Ok(_) => return self.wait_applied(self.log_floor()?, deadline).await,
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => leader_of(&f),
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                    return Err(NodeError::Unknown(e.to_string()))
                }
                Err(RaftError::Fatal(e)) => return Err(NodeError::Stopped(e.to_string())),
            };
            if let Some((id, addr)) = leader {
                match self.remote_read_index(id, &addr).await {
                    Ok(index) => return self.wait_applied(index, deadline).await,
                    Err(e) if e.retryable() => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(NodeError::NoLeader);
            }
            self.wait_for_leader(Duration::from_millis(200)).await;
        }
    }

    async fn remote_read_index(&self, leader: NodeId, addr: &str) -> Result<u64, NodeError> {
        let unreachable = |message: String| NodeError::LeaderUnreachable { leader, message };
        let mut client = self
            .peers
            .client(leader, addr)
            .map_err(|e| unreachable(e.to_string()))?;
        let mut request = tonic::Request::new(Empty {});
        request.set_timeout(self.config.request_timeout());
        match client.read_index(request).await {
            Ok(reply) => Ok(reply.into_inner().read_index),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                Err(unreachable(status.message().to_owned()))
            }
            Err(status) => Err(NodeError::Unknown(status.message().to_owned())),
        }
    }

    /// The leader's side of a follower's read: confirm leadership, return the read index.
    pub async fn leader_read_index(&self) -> Result<u64, NodeError> {
        match self.raft.ensure_linearizable().await {
            Ok(read) => Ok(read.map_or(0, |l| l.index).max(self.log_floor()?)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                Err(NodeError::NoLeader)
            }
            Err(RaftError::APIError(e)) => Err(NodeError::Unknown(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(NodeError::Stopped(e.to_string())),
        }
    }

    /// The leader's last log index, read once its leadership is confirmed: every write
    /// acknowledged before the read started is at or below it (a leader's log holds every
    /// committed entry). openraft 0.9's read index alone is not enough after every node
    /// restarts: a leader restored in its old term appends no new blank entry, and its
    /// committed index is restored from a value saved without sync, so it can lag acknowledged
    /// writes (found by the `kill-all-read` chaos drill). The index comes from the log store,
    /// not from Raft's metrics: those start empty and a read arriving in the first
    /// milliseconds after a restart saw 0 there (the same drill, in CI). In steady state
    /// waiting for it only adds the commit of writes already in flight.
    fn log_floor(&self) -> Result<u64, NodeError> {
        self.log
            .last_index()
            .map_err(|e| NodeError::Stopped(format!("reading the raft log: {e}")))
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), NodeError> {
        let mut applied = self.state.applied_index();
        let outcome = tokio::time::timeout_at(deadline.into(), applied.wait_for(|i| *i >= index))
            .await
            .map(|r| r.map(|_| ()));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(NodeError::Stopped("state machine closed".into())),
            Err(_) => Err(NodeError::Timeout(format!(
                "applying up to log index {index}"
            ))),
        }
    }
}

/// Counts every change of the leader this node knows (to another node, not to none), as
/// etcd's `leader_changes_seen_total`; returns when Raft stops.
async fn count_leader_changes(node: Arc<Node>) {
    let mut metrics = node.raft.metrics();
    let mut shutdown = node.shutdown.subscribe();
    let mut known = metrics.borrow().current_leader;
    loop {
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let leader = metrics.borrow().current_leader;
        if leader.is_some() && leader != known {
            node.metrics.leader_changes.inc();
            tracing::info!(leader = ?leader, previous = ?known, "leader changed");
            known = leader;
        }
    }
}

/// Logs every decision this node applies (gate, cohort, action, version, who, reason), so a
/// node's log is an audit trail an operator can grep or ship.
async fn log_decisions(node: Arc<Node>) {
    let mut decisions = node.state.subscribe();
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let decision = tokio::select! {
            d = decisions.recv() => d,
            _ = shutdown.changed() => return,
        };
        match decision {
            Ok(d) => {
                let changes: Vec<String> = d
                    .changes
                    .iter()
                    .filter(|c| c.from_exposure != c.to_exposure)
                    .map(|c| format!("{} {}→{}", c.cohort, c.from_exposure, c.to_exposure))
                    .collect();
                let by = match &d.decided_by {
                    crate::state::DecidedBy::Leader { node, term } => {
                        format!("leader:{node}@{term}")
                    }
                    crate::state::DecidedBy::Operator { actor } => format!("operator:{actor}"),
                };
                let cohort = d
                    .cohort
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let action = d.action.label();
                // A window that changes nothing is the common case: kept out of info.
                if action == "stay" {
                    tracing::debug!(node = node.id, gate = %d.gate, %cohort, version = d.version, "decision: stay");
                    continue;
                }
                tracing::info!(
                    node = node.id,
                    gate = %d.gate,
                    %cohort,
                    %action,
                    version = d.version,
                    exposure = %changes.join(", "),
                    kill_switch = d.kill_switch,
                    %by,
                    reason = %d.reason,
                    "decision"
                );
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "decision log lagged; see `rampart decisions` for the full trail"
                );
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The leader-side RPC that carries a forwarded call.
enum Forwarded {
    Write,
    Admin,
}

#[derive(Debug, Clone)]
enum Attempt {
    /// Not the leader: here is the leader if known.
    Forward(Option<(NodeId, String)>),
    Failed(NodeError),
}

fn leader_of(f: &ForwardToLeader<NodeId, BasicNode>) -> Option<(NodeId, String)> {
    match (f.leader_id, &f.leader_node) {
        (Some(id), Some(node)) => Some((id, node.addr.clone())),
        _ => None,
    }
}
