//! Membership guardrails, checked by the leader before it changes membership: a learner is
//! promoted only once it answers and has caught up, and no change may leave the voters that
//! answer now short of a quorum. openraft's own check is weaker: it counts a learner as caught
//! up when its log is within 5,000 entries of the leader's, which a learner that never
//! answered (nothing listening at its address) is in any young cluster.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Node, NodeError};
use crate::ids::NodeId;
use crate::proto::internal::Empty;

/// How long a node has to answer its status call to count as reachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The index a quorum of voters holds, as the leader sees it (`None` off the leader).
pub fn quorum_index(m: &crate::consensus::RaftMetrics) -> Option<u64> {
    let replication = m.replication.as_ref()?;
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let mut matched: Vec<u64> = voters
        .iter()
        .map(|v| {
            if *v == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                replication
                    .get(v)
                    .and_then(|l| l.as_ref())
                    .map_or(0, |l| l.index)
            }
        })
        .collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(voters.len() / 2).copied()
}

impl Node {
    /// Whether node `id` at `addr` answers its status call now (this node always does).
    async fn answers(&self, id: NodeId, addr: &str) -> bool {
        if id == self.id {
            return true;
        }
        let Ok(mut client) = self.peers.client(id, addr) else {
            return false;
        };
        let mut request = tonic::Request::new(Empty {});
        request.set_timeout(PROBE_TIMEOUT);
        tokio::time::timeout(PROBE_TIMEOUT, client.node_status(request))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The last index the leader replicated to `id`, as its metrics say.
    fn matched(&self, id: NodeId) -> Option<u64> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.replication
            .as_ref()?
            .get(&id)
            .copied()
            .flatten()
            .map(|l| l.index)
    }

    /// Waits until learner `id` answers and its replicated log reaches the leader's commit
    /// index at the start of the call, less `promote_max_lag`; refuses after
    /// `promote_timeout`. The learner stays a learner either way.
    pub(super) async fn wait_caught_up(&self, id: NodeId, addr: &str) -> Result<(), NodeError> {
        let target = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let applied = m.last_applied.map_or(0, |l| l.index);
            quorum_index(&m).map_or(applied, |q| q.max(applied))
        };
        let floor = target.saturating_sub(self.config.promote_max_lag);
        let timeout = self.config.promote_timeout();
        let deadline = Instant::now() + timeout;
        let mut metrics = self.raft.metrics();
        loop {
            let matched = self.matched(id);
            let caught_up = matched.is_some_and(|m| m >= floor);
            if caught_up && self.answers(id, addr).await {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NodeError::Membership(match matched {
                    Some(m) if !caught_up => format!(
                        "node {id} at {addr} did not catch up within {timeout:?}: it holds the \
                         log up to index {m}, the leader had committed {target} (at most \
                         {} behind allowed); it stays a learner: promote it again later \
                         (`rampart cluster promote {id}`) or remove it",
                        self.config.promote_max_lag
                    ),
                    _ => format!(
                        "node {id} at {addr} did not answer within {timeout:?}; it stays a \
                         learner: start it and promote it (`rampart cluster promote {id}`), \
                         or remove it (`rampart cluster remove {id}`)"
                    ),
                }));
            }
            // Replication progress shows in the metrics; look again at least every 100ms.
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wait, metrics.changed()).await;
        }
    }

    /// Refuses a change after which fewer than a majority of `voters` would answer now.
    pub(super) async fn check_quorum_after(
        &self,
        change: &str,
        voters: &BTreeSet<NodeId>,
    ) -> Result<(), NodeError> {
        let members = self.members();
        let probes = voters.iter().map(|id| {
            let addr = members.get(id).map(|n| n.addr.clone());
            async move {
                let up = match addr {
                    Some(addr) => self.answers(*id, &addr).await,
                    None => false,
                };
                (*id, up)
            }
        });
        let up: Vec<NodeId> = futures::future::join_all(probes)
            .await
            .into_iter()
            .filter_map(|(id, up)| up.then_some(id))
            .collect();
        let quorum = voters.len() / 2 + 1;
        if up.len() < quorum {
            return Err(NodeError::Membership(format!(
                "{change} would leave voters {voters:?}, of which only {up:?} answer; a quorum \
                 needs {quorum}: nothing changed (bring the others back first)"
            )));
        }
        Ok(())
    }

    /// How far behind the leader's last log index each node's replicated log is, as this
    /// node (when it leads) sees it.
    pub(super) fn lag(&self, id: NodeId) -> Option<u64> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(self.id) {
            return None;
        }
        let last = m.last_log_index.unwrap_or(0);
        if id == self.id {
            return Some(0);
        }
        let matched = m.replication.as_ref()?.get(&id).copied().flatten();
        Some(last.saturating_sub(matched.map_or(0, |l| l.index)))
    }
}
