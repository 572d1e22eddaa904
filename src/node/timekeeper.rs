//! The node's clock and the readings of its peers' clocks; the time a leader may propose.
//!
//! The leader reads every voter's wall clock over rampart's peer service (`Clock` RPC, every
//! `POLL`) and keeps each reading with the monotonic instant it was taken at, so a reading
//! ages by monotonic time and a jump of the leader's own wall clock does not move it. The
//! voter compares the leader's time in the request with its own clock and warns when they
//! are far apart. The rule itself is `super::clock::allowed` (pure). This module never
//! proposes anything and never touches the replicated state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::{self, Allowed, Inputs, Limit};
use crate::ids::{Millis, NodeId};

/// How often the leader reads its voters' clocks.
pub const POLL: Duration = Duration::from_millis(500);
/// A reading older than this no longer counts (its voter is presumed down).
pub const READING_TTL: Duration = Duration::from_secs(10);
/// A reading whose round trip took longer than this is discarded (too imprecise).
pub const MAX_RTT: Duration = Duration::from_secs(1);
/// A leader without a majority of readings for this long warns (the first poll after an
/// election takes one round trip).
const NO_QUORUM_GRACE: Duration = Duration::from_secs(2);
/// How often a single voter's pace anchor follows its clock while the clock agrees with it
/// (so a slowly drifting wall clock is not mistaken for a jump).
const REBASE: Duration = Duration::from_secs(60);
/// Warnings about the same clock condition repeat at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Where a node reads wall-clock time. `SystemClock` in production; tests give a node a
/// skewed clock.
pub trait WallClock: Send + Sync + 'static {
    /// Epoch milliseconds.
    fn now_ms(&self) -> Millis;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> Millis {
        super::wall_clock_ms()
    }
}

/// The system clock shifted by a fixed offset (tests: a node whose clock runs fast or slow).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub Millis);

impl WallClock for OffsetClock {
    fn now_ms(&self) -> Millis {
        super::wall_clock_ms() + self.0
    }
}

/// A voter's wall clock as read at a monotonic instant.
#[derive(Debug, Clone, Copy)]
struct Reading {
    taken: Instant,
    /// None: the voter answered but is too old to report its clock (counted as agreeing with
    /// the leader, so a rolling upgrade does not stop time).
    wall: Option<Millis>,
}

#[derive(Debug, Default)]
struct Inner {
    readings: BTreeMap<NodeId, Reading>,
    /// A cluster time and the monotonic instant it was had: the single-voter pace bound grows
    /// from it by `SINGLE_VOTER_CATCH_UP` × the monotonic time since. Set at the first call
    /// with an applied cluster time; moved when signals lift time beyond it, or (at most every
    /// `REBASE`) to the wall clock while that is within the skew of it.
    pace_from: Option<(Instant, Millis)>,
    last_limit: Option<Limit>,
    last_median: Option<Millis>,
    /// This leader's wall clock when it last computed `last_median`.
    last_own: Option<Millis>,
    /// As a follower: the leader's proposed time minus this node's clock, at the last read.
    leader_offset: Option<(Instant, NodeId, Millis)>,
    warned_at: Option<Instant>,
    leader_warned_at: Option<Instant>,
    /// Since when a majority of readings is missing (a new leader has none for one poll).
    no_quorum_since: Option<Instant>,
}

/// What a node last saw of the clocks (`TimeKeeper::report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReport {
    /// As leader: why the time it proposes is bounded (None: it has not led since it last
    /// stopped leading).
    pub limit: Option<Limit>,
    /// As leader: the voters' median clock when it last proposed.
    pub quorum_median: Option<Millis>,
    /// As leader: its own clock minus the voters' median.
    pub own_minus_median: Option<Millis>,
    /// As follower: the leader, and its proposed time minus this node's clock, from a read
    /// of the last `READING_TTL`.
    pub leader_minus_own: Option<(NodeId, Millis)>,
}

/// A node's clock and what it knows of its peers' clocks.
pub struct TimeKeeper {
    clock: Arc<dyn WallClock>,
    max_skew: Millis,
    inner: Mutex<Inner>,
    /// The newest signal time this node received to propose (a single voter's evidence).
    evidence: AtomicI64,
}

impl std::fmt::Debug for TimeKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeKeeper")
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

impl TimeKeeper {
    pub fn new(clock: Arc<dyn WallClock>, max_skew: Millis) -> Self {
        TimeKeeper {
            clock,
            max_skew,
            inner: Mutex::default(),
            evidence: AtomicI64::new(0),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This node's wall clock.
    pub fn wall(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn max_skew(&self) -> Millis {
        self.max_skew
    }

    /// Notes the newest time of a batch of signals this node is about to propose.
    pub fn saw_signals(&self, newest: Millis) {
        self.evidence.fetch_max(newest, Ordering::SeqCst);
    }

    /// Records `id`'s clock, read by a call sent at `sent` and answered at `received`; the
    /// reading is taken to be from the midpoint. `wall` None: the peer cannot report it.
    pub fn record(&self, id: NodeId, sent: Instant, received: Instant, wall: Option<Millis>) {
        let rtt = received.saturating_duration_since(sent);
        if rtt > MAX_RTT {
            return;
        }
        let taken = sent + rtt / 2;
        self.inner().readings.insert(id, Reading { taken, wall });
    }

    /// Forgets every reading (this node stopped leading: they would be stale when it leads
    /// again).
    pub fn forget(&self) {
        let mut inner = self.inner();
        inner.readings.clear();
        inner.last_limit = None;
        inner.last_median = None;
        inner.last_own = None;
    }

    /// The time this node may propose now if it leads `voters`, never below `floor`.
    /// `cluster_time` is the applied state's: a single voter paces its advance from it.
    pub fn allowed(
        &self,
        me: NodeId,
        voters: &[NodeId],
        floor: Millis,
        cluster_time: Millis,
    ) -> Allowed {
        let own = self.wall();
        let now = Instant::now();
        let mut inner = self.inner();
        let peers: Vec<Millis> = voters
            .iter()
            .filter(|id| **id != me)
            .filter_map(|id| inner.readings.get(id))
            .filter(|r| now.saturating_duration_since(r.taken) <= READING_TTL)
            .map(|r| match r.wall {
                Some(wall) => wall.saturating_add(elapsed_ms(r.taken, now)),
                None => own,
            })
            .collect();
        if inner.pace_from.is_none() && cluster_time > 0 {
            inner.pace_from = Some((now, cluster_time));
        }
        let pace = inner.pace_from.map(|(at, time)| {
            time.saturating_add(clock::SINGLE_VOTER_CATCH_UP * elapsed_ms(at, now))
        });
        let allowed = clock::allowed(&Inputs {
            own,
            peers: &peers,
            voters: voters.len().max(1),
            max_skew: self.max_skew,
            floor,
            pace,
            evidence: self.evidence.load(Ordering::SeqCst),
        });
        if let (Some((since, _)), Some(pace)) = (inner.pace_from, pace) {
            let lifted = allowed.at > pace.saturating_add(self.max_skew);
            let agreeing =
                allowed.limit == Limit::None && now.saturating_duration_since(since) >= REBASE;
            if lifted || agreeing {
                inner.pace_from = Some((now, allowed.at));
            }
        }
        inner.last_median = allowed.median;
        inner.last_own = Some(own);
        self.warn_if_limited(&mut inner, own, &allowed, now);
        allowed
    }

    fn warn_if_limited(&self, inner: &mut Inner, own: Millis, allowed: &Allowed, now: Instant) {
        if allowed.limit == Limit::NoQuorum {
            let since = *inner.no_quorum_since.get_or_insert(now);
            if now.saturating_duration_since(since) < NO_QUORUM_GRACE {
                return;
            }
        } else {
            inner.no_quorum_since = None;
        }
        let changed = inner.last_limit != Some(allowed.limit);
        inner.last_limit = Some(allowed.limit);
        if allowed.limit == Limit::None {
            if changed && inner.warned_at.is_some() {
                tracing::info!("clock skew cleared: this leader's clock is within max_clock_skew_ms of the voters' median");
                inner.warned_at = None;
            }
            return;
        }
        let due = inner
            .warned_at
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        if !(changed || due) {
            return;
        }
        inner.warned_at = Some(now);
        let why = match allowed.limit {
            Limit::LeaderAhead => "this leader's clock is ahead of the voters' median by more than max_clock_skew_ms; cluster time follows the median, not this clock",
            Limit::LeaderBehind => "this leader's clock is behind the voters' median by more than max_clock_skew_ms; cluster time follows the median, not this clock",
            Limit::NoQuorum => "no clock readings from a majority of the voters: cluster time holds",
            Limit::Pace => "this single voter's clock is ahead of real time since its last cluster time and of every signal received (a jump, or a restart after a downtime): cluster time advances at real pace until signals confirm the clock",
            Limit::None => "",
        };
        tracing::warn!(
            own_clock_ms = own,
            quorum_median_ms = ?allowed.median,
            proposed_ms = allowed.at,
            behind_own_ms = own - allowed.at,
            max_clock_skew_ms = self.max_skew,
            "clock skew: {why}"
        );
    }

    /// What this node last saw of the clocks, for status and metrics.
    pub fn report(&self) -> ClockReport {
        let inner = self.inner();
        let fresh = |at: Instant| Instant::now().saturating_duration_since(at) <= READING_TTL;
        ClockReport {
            limit: inner.last_limit,
            quorum_median: inner.last_median,
            own_minus_median: inner.last_own.zip(inner.last_median).map(|(o, m)| o - m),
            leader_minus_own: inner
                .leader_offset
                .filter(|(at, ..)| fresh(*at))
                .map(|(_, leader, off)| (leader, off)),
        }
    }

    /// A follower's side of a clock read: warns when the leader's time is more than the skew
    /// away from this node's clock. Returns this node's clock.
    pub fn observe_leader(&self, leader: NodeId, leader_time: Millis) -> Millis {
        let own = self.wall();
        let off = leader_time - own;
        // 0: a leader that has not proposed any time yet.
        if leader_time <= 0 {
            return own;
        }
        let now = Instant::now();
        let mut inner = self.inner();
        inner.leader_offset = Some((now, leader, off));
        if off.abs() > self.max_skew {
            let due = inner
                .leader_warned_at
                .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
            if due {
                inner.leader_warned_at = Some(now);
                tracing::warn!(
                    leader,
                    leader_time_ms = leader_time,
                    own_clock_ms = own,
                    leader_minus_own_ms = off,
                    max_clock_skew_ms = self.max_skew,
                    "clock skew: the leader's cluster time is far from this node's clock (one of the two clocks is off)"
                );
            }
        }
        own
    }
}

fn elapsed_ms(from: Instant, to: Instant) -> Millis {
    i64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(i64::MAX)
}

/// The leader's loop: reads each voter's clock every `POLL` while this node leads.
pub async fn run(node: Arc<super::Node>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut led = false;
    let mut metrics = node.raft.metrics();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if node.is_leader() {
            led = true;
            let members = node.members();
            let voters = node.voters();
            let proposing = node.bounded_now();
            let reads = voters
                .iter()
                .filter(|id| **id != node.id)
                .filter_map(|id| Some((*id, members.get(id)?.addr.clone())))
                .map(|(id, addr)| read_clock(&node, id, addr, proposing));
            futures::future::join_all(reads).await;
        } else if led {
            node.time.forget();
            led = false;
        }
        // Poll again after `POLL`, or at once when this node becomes leader.
        let became_leader = async {
            if led {
                std::future::pending::<()>().await;
            }
            loop {
                if metrics.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if metrics.borrow().current_leader == Some(node.id) {
                    return;
                }
            }
        };
        tokio::select! {
            _ = shutdown.changed() => {}
            () = tokio::time::sleep(POLL) => {}
            () = became_leader => {}
        }
    }
}

async fn read_clock(node: &super::Node, id: NodeId, addr: String, proposing: Millis) {
    let Ok(mut client) = node.peers.client(id, &addr) else {
        return;
    };
    let mut request = tonic::Request::new(crate::proto::internal::ClockRequest {
        leader_id: node.id,
        leader_time_ms: proposing,
    });
    request.set_timeout(MAX_RTT);
    let sent = Instant::now();
    match client.clock(request).await {
        Ok(reply) => {
            let wall = reply.into_inner().wall_ms;
            node.time
                .record(id, sent, Instant::now(), (wall > 0).then_some(wall));
        }
        // A voter older than the Clock RPC: it replicates, so count it as agreeing.
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            node.time.record(id, sent, Instant::now(), None);
        }
        Err(status) => tracing::debug!(peer = id, error = %status.message(), "clock read"),
    }
}
