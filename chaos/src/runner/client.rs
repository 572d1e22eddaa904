//! The drills' side of the wire: one lazily connected channel per node, the recorder that
//! turns every call into an [`Op`], and conversions from `rampart.v1` to the history's types.
//!
//! Outcome rules (what the checker relies on): OK is `Ok`; an error that says the request was
//! refused as such (invalid argument, not found, failed precondition) is `Failed`; anything
//! else on a write — timeout, broken connection, unavailable, unknown — is `Unknown`, since a
//! forwarded write may have been committed before the answer was lost. Failed reads are
//! recorded as `Failed` whatever the reason: a read changes nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rampart::api::convert::millis;
use rampart::auth::Bearer;
use rampart::proto::v1 as pb;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::secure::ClientSecurity;

use crate::history::{
    ChangeRec, CohortView, DecisionRecord, EvidenceRec, GateView, Micros, Op, Outcome,
};

/// How long one call may take before the client gives up (its outcome is then unknown).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Wall clock in microseconds.
pub fn now_us() -> Micros {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// Wall clock in milliseconds.
pub fn now_ms() -> i64 {
    now_us() / 1000
}

/// A channel to one node that shows the drill's token (if any) on every call.
pub type Conn = InterceptedService<Channel, Bearer>;

/// One channel per node, reused by every client (tonic multiplexes calls over it).
#[derive(Clone)]
pub struct Pool {
    channels: BTreeMap<u64, Conn>,
}

impl Pool {
    /// Channels to `endpoints` (id → URL), over mutual TLS with a token when `security` is
    /// given; nothing connects until the first call.
    pub fn new(
        endpoints: &BTreeMap<u64, String>,
        security: Option<&ClientSecurity>,
    ) -> anyhow::Result<Self> {
        let mut channels = BTreeMap::new();
        for (id, url) in endpoints {
            let endpoint = match security {
                Some(s) => rampart::consensus::network::endpoint(url, Some(&s.tls))?,
                None => Endpoint::from_shared(url.clone())?,
            };
            let channel = endpoint
                .connect_timeout(Duration::from_millis(500))
                .timeout(CALL_TIMEOUT)
                .connect_lazy();
            let bearer = security.map(|s| s.bearer.clone()).unwrap_or_default();
            channels.insert(*id, InterceptedService::new(channel, bearer));
        }
        Ok(Self { channels })
    }

    pub fn ids(&self) -> Vec<u64> {
        self.channels.keys().copied().collect()
    }

    /// The channel of node `id`, or of any node when `id` is unknown.
    pub fn channel(&self, id: u64) -> Conn {
        match self.channels.get(&id) {
            Some(c) => c.clone(),
            None => self.channels.values().next().cloned().unwrap_or_else(|| {
                let channel = Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
                InterceptedService::new(channel, Bearer::default())
            }),
        }
    }

    /// The node after `id` in id order (wrapping), for clients that move on after an error.
    pub fn next_after(&self, id: u64) -> u64 {
        self.channels
            .range(id + 1..)
            .next()
            .or_else(|| self.channels.iter().next())
            .map_or(id, |(k, _)| *k)
    }
}

/// The history being recorded.
#[derive(Default)]
pub struct Recorder {
    next: AtomicU64,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn push(&self, op: Op) {
        // A std mutex: nothing awaits while holding it.
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(op);
    }

    pub fn take(&self) -> Vec<Op> {
        let mut ops = std::mem::take(
            &mut *self
                .ops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        ops.sort_by_key(|o| o.id);
        ops
    }
}

/// The outcome of a failed write.
pub fn write_outcome(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

pub fn gate_view(g: &pb::GateState) -> GateView {
    GateView {
        version: g.version,
        kill_switch: g.kill_switch,
        cohorts: g
            .cohorts
            .iter()
            .map(|c| {
                (
                    c.cohort.clone(),
                    CohortView {
                        exposure: c.exposure,
                        status: c.status.clone(),
                    },
                )
            })
            .collect(),
    }
}

pub fn decision_record(d: &pb::Decision) -> DecisionRecord {
    DecisionRecord {
        gate: d.gate.clone(),
        version: d.version,
        cohort: d.cohort.clone(),
        action: d.action.clone(),
        window_start: d.window_start.as_ref().map(millis),
        window_end: d.window_end.as_ref().map(millis),
        kill_switch_before: d.kill_switch_before,
        kill_switch: d.kill_switch,
        decided_by: d.decided_by.clone(),
        at_ms: d.at.as_ref().map_or(0, millis),
        reason: d.reason.clone(),
        changes: d
            .changes
            .iter()
            .map(|c| ChangeRec {
                cohort: c.cohort.clone(),
                from_exposure: c.from_exposure,
                to_exposure: c.to_exposure,
                from_status: c.from_status.clone(),
                to_status: c.to_status.clone(),
            })
            .collect(),
        evidence: d
            .evidence
            .iter()
            .map(|e| EvidenceRec {
                metric: e.metric.clone(),
                cohort: e.cohort.clone(),
                window_start: e.window_start.as_ref().map_or(0, millis),
                // The judged window's own samples (samples_* span the sequential test).
                samples_treatment: e.window_samples_treatment,
                samples_control: e.window_samples_control,
            })
            .collect(),
    }
}
