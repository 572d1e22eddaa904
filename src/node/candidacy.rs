//! When this node campaigns for leadership: a pre-vote in front of openraft's elections.
//!
//! openraft 0.9 has no pre-vote: a follower that stops hearing from the leader (because it is
//! cut off, not because the leader died) raises its term on every election timeout, and when
//! it comes back its higher term deposes the healthy leader: the whole cluster stops taking
//! writes for an election. So rampart turns openraft's own election timer off
//! (`enable_elect: false` in `NodeConfig::raft_config`) and this module decides instead:
//!
//! - a voter that has not heard from a leader for the leader lease (openraft's
//!   `election_timeout_max`) plus a random part of the timeout spread asks every other voter
//!   whether it would vote now (`PreVote`), without changing any term;
//! - a voter grants a pre-vote when it is not the leader, has not heard from a leader within
//!   the lease, and the candidate's last log entry is at least as recent as its own: the
//!   same conditions under which openraft would grant the real vote;
//! - only with a quorum of grants (itself included) does the node campaign
//!   (`Raft::trigger().elect()`), in a new term.
//!
//! A node cut off from a quorum therefore never raises the term, and rejoins as a follower
//! of the leader it left. This module owns the timing and the pre-vote; it never touches the
//! log or the vote itself (openraft does, on `elect`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use rand::Rng;

use super::metrics::PreVoteLabels;
use super::Node;
use crate::consensus::LogId;
use crate::ids::NodeId;
use crate::proto::internal::{PreVoteReply, PreVoteRequest};

/// When this node last heard from a leader, and when its campaign timer last started again.
#[derive(Debug)]
pub struct Candidacy {
    base: Instant,
    /// ms since `base`: the last append-entries or snapshot a current leader sent.
    leader_heard: AtomicU64,
    /// ms since `base`: the last reason to wait a whole timeout again (a leader heard, a vote
    /// granted, a campaign started, this node's start, this node leading).
    timer_reset: AtomicU64,
}

impl Default for Candidacy {
    fn default() -> Self {
        Candidacy {
            base: Instant::now(),
            leader_heard: AtomicU64::new(0),
            timer_reset: AtomicU64::new(0),
        }
    }
}

impl Candidacy {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A current leader's append-entries or snapshot was accepted.
    pub fn heard_leader(&self) {
        let now = self.now_ms();
        self.leader_heard.fetch_max(now, Ordering::Relaxed);
        self.timer_reset.fetch_max(now, Ordering::Relaxed);
    }

    /// This node granted a vote, campaigned, or leads: wait a whole timeout before campaigning.
    pub fn reset_timer(&self) {
        self.timer_reset.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether a leader was heard within `lease`.
    pub fn hears_leader(&self, lease: Duration) -> bool {
        self.since_leader() < lease
    }

    /// How long since a leader was last heard (since this node started, if never).
    fn since_leader(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.leader_heard.load(Ordering::Relaxed)),
        )
    }

    fn since_reset(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.timer_reset.load(Ordering::Relaxed)),
        )
    }
}

/// Why a pre-vote is refused, if it is.
pub fn refusal(
    leads: bool,
    since_leader: Duration,
    lease: Duration,
    mine: Option<(u64, u64)>,
    candidate: Option<(u64, u64)>,
) -> Option<String> {
    if leads {
        return Some("this node is the leader".into());
    }
    if since_leader < lease {
        return Some(format!(
            "this node heard from a leader {} ms ago (lease {} ms)",
            since_leader.as_millis(),
            lease.as_millis()
        ));
    }
    if candidate < mine {
        return Some(format!(
            "the candidate's log ends at {candidate:?} (term, index), before this node's {mine:?}"
        ));
    }
    None
}

/// Whether `granted` votes out of `voters` (the candidate's own included) are a quorum.
pub fn is_quorum(granted: usize, voters: usize) -> bool {
    voters > 0 && granted > voters / 2
}

fn term_index(id: Option<LogId>) -> Option<(u64, u64)> {
    id.map(|l| (l.leader_id.term, l.index))
}

impl Node {
    /// The leader lease: a voter that heard from a leader this recently refuses votes.
    pub(super) fn lease(&self) -> Duration {
        Duration::from_millis(self.config.election_timeout_max_ms)
    }

    fn last_log(&self) -> Option<(u64, u64)> {
        match self.log.last_log_id() {
            Ok(id) => term_index(id),
            Err(e) => {
                tracing::warn!(error = %e, "reading the last log id for a pre-vote");
                // Unknown: claim the most recent log, so this node never blocks a campaign
                // over its own read error (the real vote checks the log again).
                Some((u64::MAX, u64::MAX))
            }
        }
    }

    /// Answers another voter's pre-vote.
    pub fn pre_vote(&self, request: &PreVoteRequest) -> PreVoteReply {
        let leads = self.raft.metrics().borrow().state == ServerState::Leader;
        let candidate = (request.last_log_term > 0 || request.last_log_index > 0)
            .then_some((request.last_log_term, request.last_log_index));
        let why = refusal(
            leads,
            self.candidacy.since_leader(),
            self.lease(),
            self.last_log(),
            candidate,
        );
        tracing::debug!(candidate = request.candidate_id, term = request.term, refused = ?why, "pre-vote");
        PreVoteReply {
            granted: why.is_none(),
            reason: why.unwrap_or_default(),
        }
    }

    /// Asks voter `id` at `addr` for a pre-vote: granted or not. A node older than the
    /// pre-vote (UNIMPLEMENTED) counts as granting: it votes by openraft's own rules.
    async fn ask_pre_vote(&self, id: NodeId, addr: &str, request: PreVoteRequest) -> bool {
        let Ok(mut client) = self.peers.client(id, addr) else {
            return false;
        };
        let timeout = Duration::from_millis(self.config.heartbeat_ms.max(20) * 2);
        let mut call = tonic::Request::new(request);
        call.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.pre_vote(call)).await {
            Ok(Ok(reply)) => reply.into_inner().granted,
            Ok(Err(status)) => status.code() == tonic::Code::Unimplemented,
            Err(_) => false,
        }
    }

    /// Runs one pre-vote round; true when a quorum of voters would vote for this node.
    async fn pre_vote_round(&self) -> bool {
        let (term, voters) = {
            let m = self.raft.metrics().borrow().clone();
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            (m.current_term + 1, voters)
        };
        if !voters.contains(&self.id) {
            return false;
        }
        let (last_log_term, last_log_index) = self.last_log().unwrap_or((0, 0));
        let members = self.members();
        let asks = voters.iter().filter(|v| **v != self.id).map(|v| {
            let addr = members.get(v).map(|n| n.addr.clone());
            let request = PreVoteRequest {
                candidate_id: self.id,
                term,
                last_log_term,
                last_log_index,
            };
            async move {
                match addr {
                    Some(addr) => self.ask_pre_vote(*v, &addr, request).await,
                    None => false,
                }
            }
        });
        let granted = 1 + futures::future::join_all(asks)
            .await
            .into_iter()
            .filter(|g| *g)
            .count();
        let won = is_quorum(granted, voters.len());
        self.metrics
            .pre_votes
            .get_or_create(&PreVoteLabels {
                outcome: if won { "won" } else { "lost" },
            })
            .inc();
        tracing::debug!(term, granted, voters = voters.len(), won, "pre-vote round");
        won
    }
}

/// Runs until shutdown: campaigns when the leader has been silent for the lease plus a random
/// part of the spread and a quorum grants the pre-vote.
pub(super) async fn run(node: Arc<Node>) {
    let mut shutdown = node.shutdown_signal();
    let lease = node.lease();
    let spread = Duration::from_millis(
        node.config
            .election_timeout_max_ms
            .saturating_sub(node.config.election_timeout_min_ms)
            .max(1),
    );
    let mut wait = lease + random_part(spread);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (leads, voter) = {
            let m = node.raft.metrics().borrow().clone();
            (
                m.state == ServerState::Leader,
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == node.id),
            )
        };
        if leads || !voter {
            node.candidacy.reset_timer();
        }
        let silent = node.candidacy.since_reset();
        if silent < wait {
            tokio::select! {
                _ = tokio::time::sleep(wait - silent) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if node.pre_vote_round().await {
            tracing::info!(
                node = node.id,
                silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                "no leader heard: a quorum granted the pre-vote, campaigning"
            );
            if let Err(e) = node.raft.trigger().elect().await {
                tracing::warn!(error = %e, "campaigning");
            }
            // A lost or split campaign is tried again after a shorter wait: the voters' lease
            // has run out already.
            node.candidacy.reset_timer();
            wait = Duration::from_millis(node.config.election_timeout_min_ms) + random_part(spread);
        } else {
            node.candidacy.reset_timer();
            wait = lease + random_part(spread);
        }
    }
}

fn random_part(spread: Duration) -> Duration {
    let ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(250);

    #[test]
    fn a_leader_or_a_follower_hearing_one_refuses() {
        let long = Duration::from_secs(5);
        assert!(refusal(true, long, LEASE, None, None).is_some());
        let heard = refusal(false, Duration::from_millis(100), LEASE, None, None).expect("refused");
        assert!(heard.contains("100 ms ago"), "{heard}");
        assert_eq!(refusal(false, LEASE, LEASE, None, None), None);
    }

    #[test]
    fn a_candidate_with_an_older_log_is_refused() {
        let long = Duration::from_secs(5);
        let mine = Some((3, 40));
        assert!(refusal(false, long, LEASE, mine, Some((3, 39))).is_some());
        assert!(refusal(false, long, LEASE, mine, Some((2, 90))).is_some());
        assert!(refusal(false, long, LEASE, mine, None).is_some());
        assert_eq!(refusal(false, long, LEASE, mine, Some((3, 40))), None);
        assert_eq!(refusal(false, long, LEASE, mine, Some((4, 1))), None);
        assert_eq!(refusal(false, long, LEASE, None, None), None);
    }

    #[test]
    fn a_quorum_is_more_than_half_of_the_voters() {
        assert!(is_quorum(1, 1));
        assert!(!is_quorum(1, 3));
        assert!(is_quorum(2, 3));
        assert!(!is_quorum(2, 4));
        assert!(is_quorum(3, 5));
        assert!(!is_quorum(0, 0));
    }

    #[test]
    fn hearing_a_leader_restarts_the_timer() {
        let c = Candidacy {
            base: Instant::now() - Duration::from_secs(10),
            ..Candidacy::default()
        };
        let long = Duration::from_secs(9);
        assert!(c.since_reset() >= long && c.since_leader() >= long);
        c.reset_timer();
        assert!(c.since_reset() < long, "a reset restarts the timer");
        assert!(c.since_leader() >= long, "but is no word from a leader");
        c.leader_heard.store(0, Ordering::Relaxed);
        c.timer_reset.store(0, Ordering::Relaxed);
        c.heard_leader();
        assert!(c.since_reset() < long && c.since_leader() < long);
    }
}
