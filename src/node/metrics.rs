//! What a node counts and times for its operators, in Prometheus' data model.
//!
//! Counters and histograms live here and are updated where things happen: the API edges
//! (requests, ingest), the evaluator (rounds, windows judged, close → decision latency), the
//! write path (proposals pending and failed) and the store (fsync and snapshot timings, which
//! the store keeps and this registry only shows). What describes state — leader, term, log
//! indexes, exposure, kill switches, decisions — is read at scrape time by the HTTP edge
//! (`crate::http::metrics`), so it is never stale and is the same on every node that applied
//! the same log. Names follow etcd's where the concept is the same, under `rampart_`.
//!
//! This module never does IO and never encodes: it owns the registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::signal::Refusal;

/// Labels of a gRPC call, as etcd's go-grpc-prometheus names them.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

/// Labels of a gRPC call's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethod {
    pub grpc_service: String,
    pub grpc_method: String,
}

/// Labels of an HTTP request: the route's pattern (never the raw path), method and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub code: String,
}

/// Labels of an HTTP request's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRoute {
    pub route: String,
    pub method: String,
}

/// Why a signal was refused: the field it was refused on, without positions
/// (`signals[3].at` counts as `at`), and the refusal's name (`unknown_gate`, `unknown_metric`,
/// `unknown_cohort`, `wrong_kind`, `future`, `before_gate`, `closed_window`, or `invalid`: it
/// could not be read or checked on its own), so the label set stays small.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub field: String,
    pub reason: &'static str,
}

/// What became of an ingest batch: `new` or `duplicate` (its idempotency key was seen).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchLabels {
    pub outcome: &'static str,
}

/// What became of one webhook delivery attempt: `delivered`, `retried` (the receiver failed
/// or could not be reached; tried again later) or `refused` (a 4xx the receiver will not
/// change its mind on; not tried again).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    pub outcome: &'static str,
}

/// How a pre-vote round this node ran ended: `won` (a quorum granted it; the node
/// campaigned) or `lost` (it did not campaign; see `node::candidacy`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PreVoteLabels {
    pub outcome: &'static str,
}

/// A node's counters, gauges and histograms, registered once at start.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    pub leader_changes: Counter,
    pub pre_votes: Family<PreVoteLabels, Counter>,
    pub proposals_failed: Counter,
    pub proposals_pending: Gauge,
    pub signals_accepted: Counter,
    pub signals_rejected: Family<RejectLabels, Counter>,
    pub ingest_batches: Family<BatchLabels, Counter>,
    pub grpc_handled: Family<GrpcLabels, Counter>,
    pub grpc_seconds: Family<GrpcMethod, Histogram>,
    pub http_handled: Family<HttpLabels, Counter>,
    pub http_seconds: Family<HttpRoute, Histogram>,
    pub evaluation_round_seconds: Histogram,
    pub decision_latency_seconds: Histogram,
    pub windows_judged: Counter,
    pub watch_streams: Gauge,
    pub notifications: Family<NotifyLabels, Counter>,
}

/// Latency buckets from 0.5 ms to ~16 s (etcd's request histograms span about the same).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

fn latency_family<L: Clone + std::hash::Hash + Eq>() -> Family<L, Histogram> {
    Family::new_with_constructor(|| Histogram::new(latency_buckets()))
}

impl NodeMetrics {
    /// Registers everything; `fsync` and `snapshot` are the store's own timings.
    pub fn new(fsync: Histogram, snapshot: crate::store::SnapshotMetrics) -> Self {
        let metrics = NodeMetrics {
            registry: Registry::default(),
            leader_changes: Counter::default(),
            pre_votes: Family::default(),
            proposals_failed: Counter::default(),
            proposals_pending: Gauge::default(),
            signals_accepted: Counter::default(),
            signals_rejected: Family::default(),
            ingest_batches: Family::default(),
            grpc_handled: Family::default(),
            grpc_seconds: latency_family(),
            http_handled: Family::default(),
            http_seconds: latency_family(),
            evaluation_round_seconds: Histogram::new(latency_buckets()),
            decision_latency_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            windows_judged: Counter::default(),
            watch_streams: Gauge::default(),
            notifications: Family::default(),
        };
        let mut registry = Registry::default();
        let r = &mut registry;
        r.register(
            "rampart_server_leader_changes_seen",
            "Leader changes this node has seen",
            metrics.leader_changes.clone(),
        );
        r.register(
            "rampart_server_pre_votes",
            "Pre-vote rounds this node ran, by outcome (won: it campaigned; lost: it did not)",
            metrics.pre_votes.clone(),
        );
        r.register(
            "rampart_server_proposals_failed",
            "Writes this node proposed or forwarded that failed",
            metrics.proposals_failed.clone(),
        );
        r.register(
            "rampart_server_proposals_pending",
            "Writes this node is waiting on (proposed or forwarded, not yet answered)",
            metrics.proposals_pending.clone(),
        );
        r.register(
            "rampart_disk_wal_fsync_duration_seconds",
            "Durations of the Raft log's flush + fdatasync",
            fsync,
        );
        r.register(
            "rampart_snapshot_duration_seconds",
            "Durations of building and saving a snapshot",
            snapshot.seconds,
        );
        r.register(
            "rampart_snapshot_size_bytes",
            "Size of this node's newest snapshot",
            snapshot.bytes,
        );
        r.register(
            "rampart_signals_accepted",
            "Signals this node's API accepted (committed by a quorum)",
            metrics.signals_accepted.clone(),
        );
        r.register(
            "rampart_signals_rejected",
            "Signals this node's API refused, by the field refused and why",
            metrics.signals_rejected.clone(),
        );
        r.register(
            "rampart_ingest_batches",
            "Ingest batches this node's API answered, new or duplicate",
            metrics.ingest_batches.clone(),
        );
        r.register(
            "rampart_grpc_server_handled",
            "gRPC calls answered, by service, method and status code",
            metrics.grpc_handled.clone(),
        );
        r.register(
            "rampart_grpc_server_handling_seconds",
            "gRPC call latency until the response (streams: until the stream opened)",
            metrics.grpc_seconds.clone(),
        );
        r.register(
            "rampart_http_requests",
            "HTTP requests answered, by route, method and status",
            metrics.http_handled.clone(),
        );
        r.register(
            "rampart_http_request_duration_seconds",
            "HTTP request latency until the response head",
            metrics.http_seconds.clone(),
        );
        r.register(
            "rampart_evaluation_round_duration_seconds",
            "Durations of the leader's evaluation rounds that judged at least one window",
            metrics.evaluation_round_seconds.clone(),
        );
        r.register(
            "rampart_decision_latency_seconds",
            "From a window's close (end + grace) to its decision's commit, on the leader",
            metrics.decision_latency_seconds.clone(),
        );
        r.register(
            "rampart_windows_judged",
            "Windows this node judged as leader",
            metrics.windows_judged.clone(),
        );
        r.register(
            "rampart_watch_streams",
            "Watch streams open on this node",
            metrics.watch_streams.clone(),
        );
        r.register(
            "rampart_notifications",
            "Webhook delivery attempts this node made as leader, by outcome",
            metrics.notifications.clone(),
        );
        NodeMetrics {
            registry,
            ..metrics
        }
    }

    /// The registry, for the scrape.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one ingest answer's signals, accepted and refused (each by its field and
    /// reason), unless the answer is a duplicate's: a retry's signals were counted when they
    /// were first answered. Both edges count here, gRPC per batch and HTTP for the lines it
    /// could not read.
    pub fn signals_answered<'a>(
        &self,
        duplicate: bool,
        accepted: u64,
        refused: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        if duplicate {
            return;
        }
        self.signals_accepted.inc_by(accepted);
        for (field, reason) in refused {
            self.signal_rejected(field, reason);
        }
    }

    /// Counts a refused signal under the field it was refused on (positions stripped) and
    /// the refusal it was.
    fn signal_rejected(&self, field: &str, reason: &str) {
        let field = field.rsplit('.').next().unwrap_or(field);
        let field = field.split('[').next().unwrap_or(field);
        let reason = Refusal::of(field, reason).map_or("invalid", Refusal::label);
        self.signals_rejected
            .get_or_create(&RejectLabels {
                field: field.to_owned(),
                reason,
            })
            .inc();
    }
}

impl NodeMetrics {
    /// Counts one webhook delivery attempt.
    pub fn notification(&self, outcome: &'static str) {
        self.notifications
            .get_or_create(&NotifyLabels { outcome })
            .inc();
    }
}

/// Something in flight (a proposal, an open stream): counted in its gauge while it lives.
pub struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> NodeMetrics {
        let snapshot = crate::store::SnapshotMetrics {
            seconds: Histogram::new([1.0]),
            bytes: Gauge::default(),
        };
        NodeMetrics::new(Histogram::new([1.0]), snapshot)
    }

    fn rejected(m: &NodeMetrics, field: &str, reason: &'static str) -> u64 {
        m.signals_rejected
            .get_or_create(&RejectLabels {
                field: field.into(),
                reason,
            })
            .get()
    }

    #[test]
    fn rejected_fields_lose_their_positions_and_keep_a_fixed_reason() {
        let m = metrics();
        let closed = Refusal::ClosedWindow.words();
        m.signals_answered(
            false,
            2,
            [
                ("signals[3].at", closed),
                ("at", "is more than 5 minutes ahead of cluster time"),
                ("signals[0].values[2]", "-1 is not a finite number"),
                (
                    "at",
                    "\"soon\" is not an RFC 3339 time: premature end of input",
                ),
                ("gate", "gate g-1 has no contract"),
            ],
        );
        assert_eq!(m.signals_accepted.get(), 2);
        assert_eq!(rejected(&m, "at", "closed_window"), 1);
        assert_eq!(rejected(&m, "at", "future"), 1);
        assert_eq!(rejected(&m, "at", "invalid"), 1);
        assert_eq!(rejected(&m, "values", "invalid"), 1);
        assert_eq!(rejected(&m, "gate", "unknown_gate"), 1);
        // A refusal's words on another field are no refusal.
        m.signals_answered(false, 0, [("metric", "gate g-1 has no contract")]);
        assert_eq!(rejected(&m, "metric", "invalid"), 1);
    }

    #[test]
    fn a_duplicate_answer_counts_nothing() {
        let m = metrics();
        m.signals_answered(true, 5, [("at", Refusal::Future.words())]);
        assert_eq!(m.signals_accepted.get(), 0);
        assert_eq!(rejected(&m, "at", "future"), 0);
    }

    #[test]
    fn pending_counts_while_alive() {
        let g = Gauge::default();
        {
            let _a = InFlight::new(&g);
            let _b = InFlight::new(&g);
            assert_eq!(g.get(), 2);
        }
        assert_eq!(g.get(), 0);
    }
}
