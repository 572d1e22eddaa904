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

/// One metric's evidence in a decision: every figure under the name it is stored by
/// (`engine::MetricEvidence`, read back with `convert::evidence_from_proto`), intervals as
/// `[low, high]`, the window as `window_start` and `window_end`.
pub fn evidence(e: &pb::MetricEvidence) -> Value {
    let read = super::convert::evidence_from_proto(e);
    let mut out = match read.as_ref().map(serde_json::to_value) {
        Ok(Ok(Value::Object(out))) => out,
        failed => {
            let why = match failed {
                Err(err) => err.to_string(),
                Ok(Err(err)) => err.to_string(),
                Ok(Ok(_)) => "not an object".to_owned(),
            };
            return json!({"metric": e.metric, "cohort": e.cohort, "zone": e.zone, "summary": e.summary, "unreadable": why});
        }
    };
    out.remove("window");
    out.insert("window_start".into(), json!(time(e.window_start.as_ref())));
    out.insert("window_end".into(), json!(time(e.window_end.as_ref())));
    Value::Object(out)
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
