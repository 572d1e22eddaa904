//! The hooks deployment controllers call: Argo Rollouts' `web` metric provider reads a verdict
//! (`GET /v1/gates/{gate}/verdict`), Flagger posts its webhooks (`/v1/flagger/...`). Both are
//! answered from this node's applied state (a LOCAL read, `stale` when the node knows no
//! leader or lags), so an election does not abort a rollout.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::call::{Door, Segment};
use super::error::HttpError;
use super::routes::params;
use super::Edge;
use crate::engine::signal::format_time;
use crate::proto::v1 as pb;
use crate::proto::v1::gates_server::Gates;

pub fn routes() -> Router<Edge> {
    Router::new()
        .route("/v1/gates/:gate/verdict", get(verdict))
        .route("/v1/flagger/:hook", post(flagger))
}

/// What a controller needs to know about one cohort of a gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub gate: String,
    pub cohort: String,
    /// expand | hold | slow | rollback | kill | manual_review
    pub decision: &'static str,
    /// Go on: the cohort is climbing or complete.
    pub promote: bool,
    /// Stop the rollout: rolled back or killed.
    pub abort: bool,
    /// The cohort's status as rampart names it.
    pub status: String,
    pub exposure: f64,
    pub stage: u32,
    pub kill_switch: bool,
    /// The gate's version.
    pub version: u64,
    /// When the newest decision on the cohort (or the whole gate) was made.
    pub decided_at: Option<String>,
    /// That decision's reason.
    pub summary: String,
    /// The node answering knows no leader or lags: the verdict may be old.
    pub stale: bool,
}

/// The decision word for a cohort's status and the gate's kill switch.
fn decision_of(status: &str, kill_switch: bool) -> &'static str {
    if kill_switch {
        return "kill";
    }
    match status {
        "rolled_back" => "rollback",
        "held" | "awaiting_approval" => "hold",
        "slowed" => "slow",
        "manual_review" => "manual_review",
        _ => "expand",
    }
}

impl Edge {
    /// The verdict on `cohort` of `gate` (the only cohort when `cohort` is empty).
    async fn verdict_of(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        gate: String,
        cohort: &str,
    ) -> Result<Verdict, HttpError> {
        let message = pb::GetGateRequest {
            gate: gate.clone(),
            consistency: pb::Consistency::Local as i32,
        };
        let request = self.request(headers, peer, message)?;
        let state = Gates::get_gate(&self.api, request).await?.into_inner();
        if state.deleted {
            return Err(HttpError::not_found(format!("gate {gate} was deleted")));
        }
        let found = match cohort {
            "" if state.cohorts.len() == 1 => state.cohorts.first(),
            "" => {
                let names: Vec<&str> = state.cohorts.iter().map(|c| c.cohort.as_str()).collect();
                return Err(HttpError::invalid(
                    "cohort",
                    format!("gate {gate} has cohorts {names:?}; name one"),
                ));
            }
            name => state.cohorts.iter().find(|c| c.cohort == name),
        };
        let Some(c) = found else {
            return Err(HttpError::not_found(format!(
                "gate {gate} has no cohort {cohort}"
            )));
        };
        let decision = decision_of(&c.status, state.kill_switch);
        let (decided_at, summary) = self.last_decision(&state.gate, &c.cohort);
        Ok(Verdict {
            gate: state.gate.clone(),
            cohort: c.cohort.clone(),
            decision,
            promote: decision == "expand",
            abort: matches!(decision, "rollback" | "kill"),
            status: c.status.clone(),
            exposure: c.exposure,
            stage: c.stage,
            kill_switch: state.kill_switch,
            version: state.version,
            decided_at,
            summary,
            stale: self.node.ready().is_err(),
        })
    }

    /// When the newest decision that touched `cohort` (or the whole gate) was made, and why.
    fn last_decision(&self, gate: &str, cohort: &str) -> (Option<String>, String) {
        let applied = self.node.state.read();
        let Some(g) = crate::ids::GateKey::try_from(gate)
            .ok()
            .and_then(|k| applied.state.gates.get(&k))
        else {
            return (None, String::new());
        };
        g.decisions
            .iter()
            .rev()
            .find(|d| {
                d.cohort.as_ref().is_none_or(|c| c.as_str() == cohort)
                    || d.changes.iter().any(|ch| ch.cohort.as_str() == cohort)
            })
            .map_or((None, String::new()), |d| {
                (Some(format_time(d.at)), d.reason.clone())
            })
    }
}

async fn verdict(
    door: Door,
    Segment(gate): Segment,
    RawQuery(q): RawQuery,
) -> Result<Json<Verdict>, HttpError> {
    let p = params(q.as_deref(), &["cohort"])?;
    let cohort = p.get("cohort").map_or("", String::as_str);
    Ok(Json(
        door.edge
            .verdict_of(&door.headers, door.peer, gate, cohort)
            .await?,
    ))
}

/// The Flagger hooks rampart answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    ConfirmRollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    Rollback,
}

impl Hook {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "confirm-rollout" => Hook::ConfirmRollout,
            "confirm-traffic-increase" => Hook::ConfirmTrafficIncrease,
            "confirm-promotion" => Hook::ConfirmPromotion,
            "rollback" => Hook::Rollback,
            _ => return None,
        })
    }

    /// Whether Flagger may go on, and if not why (one line).
    fn answer(self, v: &Verdict) -> Result<String, String> {
        let at = format!(
            "{}/{} is {} at {}% (stage {})",
            v.gate, v.cohort, v.status, v.exposure, v.stage
        );
        let why = if v.summary.is_empty() {
            String::new()
        } else {
            format!(": {}", v.summary)
        };
        match self {
            Hook::Rollback if v.abort => Ok(format!("rampart rolled back: {at}{why}")),
            Hook::Rollback => Err(format!("not rolled back: {at}")),
            _ if v.kill_switch => Err(format!("kill switch on: {at}{why}")),
            Hook::ConfirmRollout if !v.abort && v.decision != "manual_review" => {
                Ok(format!("go: {at}"))
            }
            Hook::ConfirmTrafficIncrease if v.promote => Ok(format!("go: {at}")),
            Hook::ConfirmPromotion if v.status == "complete" => Ok(format!("go: {at}")),
            Hook::ConfirmPromotion if v.promote => {
                Err(format!("wait: {at}; promotion waits for the last stage"))
            }
            _ => Err(format!("wait: {at}{why}")),
        }
    }
}

/// Flagger's webhook payload; the Canary names the gate and cohort in `metadata` (and, where
/// the cluster needs tokens, a reader token as `token`: Flagger sends no headers).
#[derive(Debug, serde::Deserialize)]
struct FlaggerPayload {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    /// Not read, but typed as the document says (a number there is a 400, not ignored).
    #[serde(default, rename = "phase")]
    _phase: String,
    #[serde(default, rename = "checksum")]
    _checksum: String,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

fn one_line(status: StatusCode, text: String) -> Response {
    (status, text.replace('\n', " ") + "\n").into_response()
}

async fn flagger(
    door: Door,
    Segment(hook): Segment,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let Some(hook) = Hook::parse(&hook) else {
        return Err(HttpError::not_found(format!(
            "no Flagger hook {hook}: rampart answers confirm-rollout, confirm-traffic-increase, \
             confirm-promotion and rollback"
        )));
    };
    let body = body?;
    let payload: FlaggerPayload = serde_json::from_slice(&body)
        .map_err(|e| HttpError::invalid("body", format!("not a Flagger payload: {e}")))?;
    let gate = payload.metadata.get("gate").cloned().ok_or_else(|| {
        HttpError::invalid(
            "metadata.gate",
            format!(
                "the Canary {}/{} names no gate in its webhook metadata",
                payload.namespace, payload.name
            ),
        )
    })?;
    let cohort = payload.metadata.get("cohort").cloned().unwrap_or_default();
    let Door {
        edge,
        mut headers,
        peer,
    } = door;
    if let Some(token) = payload.metadata.get("token") {
        if !headers.contains_key(axum::http::header::AUTHORIZATION) {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| HttpError::invalid("metadata.token", "is not a valid token"))?;
            headers.insert(axum::http::header::AUTHORIZATION, value);
        }
    }
    let verdict = edge.verdict_of(&headers, peer, gate, &cohort).await?;
    Ok(match hook.answer(&verdict) {
        Ok(text) => one_line(StatusCode::OK, text),
        Err(text) => one_line(StatusCode::FORBIDDEN, text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: &str, kill_switch: bool) -> Verdict {
        let decision = decision_of(status, kill_switch);
        Verdict {
            gate: "g".into(),
            cohort: "web".into(),
            decision,
            promote: decision == "expand",
            abort: matches!(decision, "rollback" | "kill"),
            status: status.into(),
            exposure: 25.0,
            stage: 2,
            kill_switch,
            version: 7,
            decided_at: None,
            summary: "all healthy".into(),
            stale: false,
        }
    }

    #[test]
    fn statuses_become_decisions() {
        assert_eq!(decision_of("ramping", false), "expand");
        assert_eq!(decision_of("complete", false), "expand");
        assert_eq!(decision_of("slowed", false), "slow");
        assert_eq!(decision_of("held", false), "hold");
        assert_eq!(decision_of("awaiting_approval", false), "hold");
        assert_eq!(decision_of("manual_review", false), "manual_review");
        assert_eq!(decision_of("rolled_back", false), "rollback");
        assert_eq!(decision_of("ramping", true), "kill");
    }

    #[test]
    fn flagger_goes_on_only_when_rampart_would() {
        let ramping = verdict("ramping", false);
        assert!(Hook::ConfirmRollout.answer(&ramping).is_ok());
        assert!(Hook::ConfirmTrafficIncrease.answer(&ramping).is_ok());
        assert!(Hook::ConfirmPromotion.answer(&ramping).is_err());
        assert!(Hook::Rollback.answer(&ramping).is_err());
        let complete = verdict("complete", false);
        assert!(Hook::ConfirmPromotion.answer(&complete).is_ok());
        let slowed = verdict("slowed", false);
        assert!(Hook::ConfirmRollout.answer(&slowed).is_ok());
        let wait = Hook::ConfirmTrafficIncrease.answer(&slowed).unwrap_err();
        assert!(wait.contains("slowed at 25% (stage 2)"), "{wait}");
        let killed = verdict("ramping", true);
        assert!(Hook::ConfirmRollout.answer(&killed).is_err());
        assert!(Hook::Rollback.answer(&killed).is_ok());
        assert!(Hook::Rollback
            .answer(&verdict("rolled_back", false))
            .is_ok());
        assert!(Hook::ConfirmRollout
            .answer(&verdict("manual_review", false))
            .is_err());
    }
}
