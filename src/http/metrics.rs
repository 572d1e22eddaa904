//! `/metrics` (OpenMetrics text, which Prometheus reads), `/healthz` and `/readyz`.
//!
//! The scrape encodes the node's registry (counters and histograms, `crate::node::metrics`)
//! and then what describes state, read now: Raft (leader, term, indexes, replication lag as
//! the leader sees it) and the gates this node has applied (exposure per cohort, status, kill
//! switch, decisions by action, signals accepted).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::call::Door;
use super::error::HttpError;
use super::Edge;
use crate::node::clock::Limit;
use crate::node::Node;

pub fn routes() -> Router<Edge> {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// OpenMetrics' content type (Prometheus negotiates it).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn scrape(door: Door) -> Result<Response, HttpError> {
    door.probe_allowed()?;
    let mut text = String::new();
    let encoded = prometheus_client::encoding::text::encode_registry(
        &mut text,
        door.edge.node.metrics.registry(),
    )
    .and_then(|()| {
        prometheus_client::encoding::text::encode_registry(
            &mut text,
            &state_registry(&door.edge.node),
        )
    })
    .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut text));
    if let Err(e) = encoded {
        return Err(HttpError::from(tonic::Status::internal(format!(
            "encoding metrics: {e}"
        ))));
    }
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response())
}

async fn healthz(door: Door) -> Result<Response, HttpError> {
    door.probe_allowed()?;
    Ok(if door.edge.node.is_fatal() {
        let reason = door.edge.node.ready().err().unwrap_or_default();
        (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    })
}

async fn readyz(door: Door) -> Result<Response, HttpError> {
    door.probe_allowed()?;
    Ok(match door.edge.node.ready() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    })
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabels {
    follower: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaderLabels {
    leader: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    gate: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CohortLabels {
    gate: String,
    cohort: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    gate: String,
    cohort: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    gate: String,
    action: String,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn seconds(registry: &mut Registry, name: &str, help: &str, ms: Option<crate::ids::Millis>) {
    let Some(ms) = ms else { return };
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    #[allow(clippy::cast_precision_loss)] // milliseconds of clock offsets fit an f64 exactly
    g.set(ms as f64 / 1000.0);
    registry.register(name, help, g);
}

/// Cluster time and the clocks behind it (docs/design.md, "Cluster time"): the bound a
/// leader proposes under, how far its clock is from its voters' median, and on a follower
/// how far the leader's time is from its own clock.
fn register_clock(r: &mut Registry, node: &Node) {
    let clock = node.time.report();
    seconds(
        r,
        "rampart_cluster_time_seconds",
        "Cluster time applied on this node, in epoch seconds (compare with time())",
        Some(node.state.read().state.cluster_time),
    );
    seconds(
        r,
        "rampart_clock_offset_from_voters_seconds",
        "Leader only: this node's wall clock minus the median of its voters' clocks",
        clock.own_minus_median,
    );
    let from_leader: Family<LeaderLabels, Gauge<f64, AtomicU64>> = Family::default();
    if let Some((leader, off)) = clock.leader_minus_own {
        #[allow(clippy::cast_precision_loss)] // milliseconds of clock offsets fit an f64 exactly
        from_leader
            .get_or_create(&LeaderLabels {
                leader: leader.to_string(),
            })
            .set(off as f64 / 1000.0);
    }
    r.register(
        "rampart_clock_offset_from_leader_seconds",
        "Follower only: the time the leader proposes minus this node's wall clock, at its last clock read",
        from_leader,
    );
    let Some(current) = clock.limit else { return };
    let limit: Family<LimitLabels, Gauge> = Family::default();
    for each in [
        Limit::None,
        Limit::LeaderAhead,
        Limit::LeaderBehind,
        Limit::NoQuorum,
        Limit::Pace,
    ] {
        let name = match each {
            Limit::None => "none",
            other => other.as_str(),
        };
        limit
            .get_or_create(&LimitLabels {
                limit: name.to_owned(),
            })
            .set(i64::from(each == current));
    }
    r.register(
        "rampart_clock_limit",
        "Leader only: 1 for why the time it proposes is bounded (none: its clock is within max_clock_skew_ms of its voters' median)",
        limit,
    );
}

/// What describes this node's state now, as a registry made for one scrape.
fn state_registry(node: &Node) -> Registry {
    let mut r = Registry::default();
    let m = node.raft.metrics().borrow().clone();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let last = m.last_log_index.unwrap_or(0);
    gauge(
        &mut r,
        "rampart_server_has_leader",
        "Whether this node knows a leader (1) or not (0)",
        i64::from(node.leader_id().is_some()),
    );
    gauge(
        &mut r,
        "rampart_server_is_leader",
        "Whether this node is the leader",
        i64::from(m.current_leader == Some(node.id)),
    );
    gauge(
        &mut r,
        "rampart_server_term",
        "The Raft term this node is in",
        signed(m.current_term),
    );
    gauge(
        &mut r,
        "rampart_server_ready",
        "Whether this node can serve current reads (as /readyz)",
        i64::from(node.ready().is_ok()),
    );
    counter(
        &mut r,
        "rampart_server_proposals_committed",
        "Log entries committed (on the leader: the index a quorum holds; elsewhere: applied)",
        crate::node::quorum_index(&m)
            .unwrap_or(applied)
            .max(applied),
    );
    counter(
        &mut r,
        "rampart_server_proposals_applied",
        "Log entries applied to this node's state",
        applied,
    );
    gauge(
        &mut r,
        "rampart_raft_last_log_index",
        "This node's last log index",
        signed(last),
    );
    gauge(
        &mut r,
        "rampart_raft_applied_index",
        "This node's applied index",
        signed(applied),
    );
    gauge(
        &mut r,
        "rampart_raft_snapshot_index",
        "The log index this node's newest snapshot covers",
        signed(m.snapshot.map_or(0, |l| l.index)),
    );
    let lag: Family<FollowerLabels, Gauge> = Family::default();
    for (id, matched) in m
        .replication
        .iter()
        .flatten()
        .filter(|(id, _)| **id != node.id)
    {
        let matched = matched.as_ref().map_or(0, |l| l.index);
        lag.get_or_create(&FollowerLabels {
            follower: id.to_string(),
        })
        .set(signed(last.saturating_sub(matched)));
    }
    r.register(
        "rampart_raft_replication_lag_entries",
        "Entries each follower is behind the leader's log (leader only)",
        lag,
    );
    register_clock(&mut r, node);
    let exposure: Family<CohortLabels, Gauge<f64, AtomicU64>> = Family::default();
    let status: Family<StatusLabels, Gauge> = Family::default();
    let kill: Family<GateLabels, Gauge> = Family::default();
    let signals: Family<GateLabels, Counter> = Family::default();
    let decisions: Family<ActionLabels, Counter> = Family::default();
    let version: Family<GateLabels, Gauge> = Family::default();
    let state = node.state.read();
    for g in state.state.gates.values().filter(|g| !g.deleted) {
        let gate = g.key.to_string();
        let labels = GateLabels { gate: gate.clone() };
        kill.get_or_create(&labels).set(i64::from(g.kill_switch));
        signals.get_or_create(&labels).inc_by(g.signals_accepted);
        version.get_or_create(&labels).set(signed(g.version));
        for (cohort, c) in &g.cohorts {
            exposure
                .get_or_create(&CohortLabels {
                    gate: gate.clone(),
                    cohort: cohort.to_string(),
                })
                .set(c.exposure);
            status
                .get_or_create(&StatusLabels {
                    gate: gate.clone(),
                    cohort: cohort.to_string(),
                    status: c.status.as_str().to_owned(),
                })
                .set(1);
        }
        let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
        for d in &g.decisions {
            *by_action.entry(d.action.label()).or_default() += 1;
        }
        for (action, n) in by_action {
            decisions
                .get_or_create(&ActionLabels {
                    gate: gate.clone(),
                    action,
                })
                .inc_by(n);
        }
    }
    drop(state);
    r.register(
        "rampart_gate_exposure_percent",
        "Exposure of each cohort of each gate, in percent",
        exposure,
    );
    r.register(
        "rampart_gate_cohort_status",
        "1 for each cohort's current status",
        status,
    );
    r.register(
        "rampart_gate_kill_switch",
        "Whether a gate's kill switch is on",
        kill,
    );
    r.register(
        "rampart_gate_version",
        "A gate's version (moves with every decision)",
        version,
    );
    r.register(
        "rampart_gate_signals_accepted",
        "Signals accepted for a gate since it was created (replicated: the same on every node)",
        signals,
    );
    r.register(
        "rampart_decisions",
        "Decisions in a gate's log, by action (replicated: the same on every node)",
        decisions,
    );
    r
}
