//! JSON views of `rampart.v1` messages: the shape the CLI's `--json` prints and the HTTP API
//! answers, so a script sees the same fields through either door. Times are RFC 3339 (UTC,
//! milliseconds); intervals are `[low, high]`; absent optional fields are `null`.
//!
//! Pure conversions: no IO, no node.

use serde_json::{json, Value};

use crate::engine::signal::format_time;
use crate::proto::v1 as pb;

fn time(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.map(|t| format_time(super::convert::millis(t)))
}

fn interval(i: Option<&pb::Interval>) -> Option<[f64; 2]> {
    i.map(|i| [i.low, i.high])
}

/// What a read saw: the answering node, its applied index and the state's age.
pub fn read(r: &pb::ReadInfo) -> Value {
    let consistency = match pb::Consistency::try_from(r.consistency) {
        Ok(pb::Consistency::Local) => "local",
        Ok(pb::Consistency::Linearizable) => "linearizable",
        _ => "unspecified",
    };
    json!({"consistency": consistency, "applied_index": r.applied_index, "age_ms": r.age_ms, "node": r.node_id})
}

/// A gate's window aggregates.
pub fn windows(r: &pb::ListWindowsResponse) -> Value {
    let windows: Vec<Value> = r
        .windows
        .iter()
        .map(|w| {
            json!({
                "cohort": w.cohort, "metric": w.metric,
                "window_start": time(w.window_start.as_ref()), "window_end": time(w.window_end.as_ref()),
                "samples_treatment": w.samples_treatment, "samples_control": w.samples_control,
                "treatment": w.treatment, "control": w.control, "judged": w.judged,
            })
        })
        .collect();
    json!({"windows": windows, "gate_version": r.gate_version, "read": r.read.as_ref().map(read)})
}

/// A cohort's stage, exposure and status.
pub fn cohort(c: &pb::CohortState) -> Value {
    json!({
        "cohort": c.cohort, "exposure": c.exposure, "stage": c.stage, "status": c.status,
        "stage_since": time(c.stage_since.as_ref()), "last_window": time(c.last_window.as_ref()),
    })
}

/// A gate's state.
pub fn gate(g: &pb::GateState) -> Value {
    json!({
        "gate": g.gate, "version": g.version, "contract_version": g.contract_version,
        "kill_switch": g.kill_switch, "treatment": g.treatment, "fallback": g.fallback,
        "deleted": g.deleted, "signals_accepted": g.signals_accepted,
        "cohorts": g.cohorts.iter().map(cohort).collect::<Vec<_>>(),
        "last_decision": g.last_decision.as_ref().map(decision),
        "read": g.read.as_ref().map(read),
    })
}

/// A decision with its evidence.
pub fn decision(d: &pb::Decision) -> Value {
    json!({
        "gate": d.gate, "version": d.version, "cohort": d.cohort, "action": d.action, "reason": d.reason,
        "kill_switch_before": d.kill_switch_before, "kill_switch": d.kill_switch,
        "decided_by": d.decided_by, "contract_version": d.contract_version,
        "at": time(d.at.as_ref()),
        "window_start": time(d.window_start.as_ref()), "window_end": time(d.window_end.as_ref()),
        "changes": d.changes.iter().map(|c| json!({"cohort": c.cohort, "from": c.from_exposure, "to": c.to_exposure, "from_status": c.from_status, "to_status": c.to_status})).collect::<Vec<_>>(),
        "evidence": d.evidence.iter().map(evidence).collect::<Vec<_>>(),
        "topics": d.topics.iter().map(topic).collect::<Vec<_>>(),
    })
}

/// One severe topic's evidence in a decision.
pub fn topic(t: &pb::TopicEvidence) -> Value {
    json!({
        "topic": t.topic, "metric": t.metric, "cohort": t.cohort,
        "window_start": time(t.window_start.as_ref()), "window_end": time(t.window_end.as_ref()),
        "treatment_mentions": t.treatment_mentions, "control_mentions": t.control_mentions,
        "zone": t.zone, "summary": t.summary, "treatment_share": t.treatment_share,
        "control_share": t.control_share, "e_value": t.e_value, "p_value": t.p_value,
        "alpha": t.alpha, "span_windows": t.span_windows, "any_mention": t.any_mention,
    })
}

/// One metric's evidence in a decision.
pub fn evidence(e: &pb::MetricEvidence) -> Value {
    let mut out = json!({"metric": e.metric, "cohort": e.cohort, "treatment": e.treatment, "control": e.control, "baseline": e.baseline, "delta": e.delta, "relative": e.relative, "p_value": e.p_value, "e_value": e.e_value, "samples_treatment": e.samples_treatment, "samples_control": e.samples_control, "zone": e.zone, "streak": e.streak, "unreliable_reason": e.unreliable_reason, "summary": e.summary});
    let rest = json!({"delta_interval": interval(e.delta_interval.as_ref()), "relative_interval": interval(e.relative_interval.as_ref()), "treatment_interval": interval(e.treatment_interval.as_ref()), "ceiling_p_value": e.ceiling_p_value, "ceiling_e_value": e.ceiling_e_value, "ceiling_span_windows": e.ceiling_span_windows, "ceiling_alpha": e.ceiling_alpha, "quantile": e.quantile, "exceedance_interval": interval(e.exceedance_interval.as_ref()), "srm_p_value": e.srm_p_value, "low_confidence_share": e.low_confidence_share, "alpha": e.alpha, "test": e.test, "span_windows": e.span_windows, "baseline_source": e.baseline_source});
    if let (Some(out), Value::Object(rest)) = (out.as_object_mut(), rest) {
        out.extend(rest);
    }
    out
}

/// A contract as stored.
pub fn contract(c: &pb::ContractInfo) -> Value {
    json!({"gate": c.gate, "contract_version": c.contract_version, "owner": c.owner, "description": c.description, "yaml": c.yaml})
}

/// The cluster as the answering node sees it.
pub fn cluster(s: &pb::ClusterStatus) -> Value {
    json!({
        "leader": s.leader_id, "term": s.term, "voters": s.voters, "learners": s.learners, "joint": s.joint,
        "answered_by": s.answered_by,
        "nodes": s.nodes.iter().map(|n| json!({"id": n.id, "addr": n.addr, "role": n.role, "reachable": n.reachable, "term": n.term, "last_log_index": n.last_log_index, "applied_index": n.applied_index, "matched_index": n.matched_index, "lag": n.lag, "clock_offset_ms": n.clock_offset_ms, "clock_skew_ms": n.clock_skew_ms})).collect::<Vec<_>>(),
        "cluster_time_ms": s.cluster_time_ms, "clock_skew": s.clock_skew, "time_limit": s.time_limit, "max_clock_skew_ms": s.max_clock_skew_ms,
    })
}

/// An ingest's answer. `rejected` positions are the caller's (line numbers or array
/// indexes, as the caller numbered its signals).
pub fn ingest(accepted: u64, duplicate: bool, rejected: &[Value]) -> Value {
    json!({"accepted": accepted, "duplicate": duplicate, "rejected": rejected.len(), "rejections": rejected})
}
