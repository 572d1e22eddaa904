//! OFREP, the OpenFeature Remote Evaluation Protocol, on the HTTP listener: any OpenFeature
//! SDK's OFREP provider evaluates rampart gates unmodified.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one gate for the body's `context`;
//! - `POST /ofrep/v1/evaluate/flags`: every live gate, with an `ETag` (`If-None-Match` → 304),
//!   so polling SDKs refetch only when an answer changed;
//! - `GET /ofrep/v1/configuration`: what rampart supports (boolean flags, polling).
//!
//! A flag is a gate; `context.targetingKey` is the unit, `context.cohort` the cohort (a gate
//! with one cohort needs none). The value is a boolean, whether the unit is in the treatment;
//! `variant` is the contract's variant name, `metadata` the bucket, exposure, gate version and
//! kill switch. Each flag is one `rampart.v1.Gates/Evaluate` call (so the sticky bucketing,
//! roles and consistency are Evaluate's); reasons: `SPLIT`, `DISABLED` while the kill switch is
//! on (the fallback variant), `DEFAULT` without a targeting key (the fallback variant, no
//! bucket). Bearer tokens or `X-API-Key` carry the reader's token.
//!
//! Errors take OFREP's shapes: `{key, errorCode, errorDetails}` with 400 `PARSE_ERROR` /
//! `INVALID_CONTEXT` and 404 `FLAG_NOT_FOUND`; 401, 403 and 429 (`Retry-After`) as the rest of
//! the edge answers them; 503 `{errorDetails}` with `Retry-After` when the node cannot answer.
//!
//! This module never touches storage and never decides anything.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tonic::Code;

use super::call::{Door, Segment};
use super::error::HttpError;
use super::Edge;
use crate::proto::v1 as pb;
use crate::proto::v1::gates_server::Gates;

/// The context attribute naming the cohort.
pub const COHORT_ATTRIBUTE: &str = "cohort";

/// The shortest polling interval the configuration tells SDKs to use.
const MIN_POLLING_MS: u64 = 1000;

pub fn routes() -> Router<Edge> {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/:key", post(evaluate_flag))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_flags))
        .route("/ofrep/v1/configuration", get(configuration))
}

/// Why one flag could not be evaluated, in OFREP's terms.
#[derive(Debug)]
enum Failure {
    /// The body is not a JSON object with an object `context` (400 `PARSE_ERROR`).
    Parse(String),
    /// The context cannot be evaluated: a bad targeting key or cohort (400 `INVALID_CONTEXT`).
    Context(String),
    /// No live gate has this key (404 `FLAG_NOT_FOUND`).
    NotFound(String),
    /// The caller or the node: 401, 403, 429, 503, 500, as the edge answers them.
    Edge(HttpError),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::Parse(_) => "PARSE_ERROR",
            Failure::Context(_) => "INVALID_CONTEXT",
            Failure::NotFound(_) => "FLAG_NOT_FOUND",
            Failure::Edge(_) => "GENERAL",
        }
    }

    fn details(&self) -> &str {
        match self {
            Failure::Parse(d) | Failure::Context(d) | Failure::NotFound(d) => d,
            Failure::Edge(e) => &e.message,
        }
    }

    /// The answer for a single-flag request.
    fn response(self, key: &str) -> Response {
        let status = match &self {
            Failure::Parse(_) | Failure::Context(_) => StatusCode::BAD_REQUEST,
            Failure::NotFound(_) => StatusCode::NOT_FOUND,
            Failure::Edge(e) => return edge_response(e.clone()),
        };
        let body = json!({"key": key, "errorCode": self.code(), "errorDetails": self.details()});
        (status, Json(body)).into_response()
    }

    /// The gRPC status of one gate's Evaluate, in OFREP's terms.
    fn of(status: tonic::Status, gate_exists: bool) -> Failure {
        let field = status
            .metadata()
            .get(crate::api::error::FIELD_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = status.message().to_owned();
        match (status.code(), field.as_deref()) {
            (Code::InvalidArgument, Some("gate")) => Failure::NotFound(message),
            (Code::InvalidArgument, Some("unit_id")) => Failure::Context(format!(
                "targetingKey{}",
                message.strip_prefix("unit_id").unwrap_or(&message)
            )),
            (Code::InvalidArgument, _) => Failure::Context(message),
            // Evaluate's NOT_FOUND is the gate's, or the cohort's when the gate exists.
            (Code::NotFound, _) if gate_exists => Failure::Context(message),
            (Code::NotFound, _) => Failure::NotFound(message),
            _ => Failure::Edge(HttpError::from(status)),
        }
    }
}

/// 401, 403 and 429 in the edge's shape (with `WWW-Authenticate` or `Retry-After`); anything
/// else in OFREP's general error shape, `{errorDetails}`.
fn edge_response(e: HttpError) -> Response {
    match e.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
            e.into_response()
        }
        status => {
            let mut response = (status, Json(json!({"errorDetails": e.message}))).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// What the evaluation context says about the unit and its cohort.
#[derive(Debug, Default)]
struct Context {
    unit: Option<String>,
    cohort: Option<String>,
}

/// The request body, `{"context": {...}}`; an empty body is an empty context.
fn context(body: &[u8]) -> Result<Context, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Context::default());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Failure::Parse(format!("body: {e}")))?;
    let Value::Object(mut body) = value else {
        return Err(Failure::Parse("body: expected a JSON object".into()));
    };
    let context = match body.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(Failure::Parse("context: expected a JSON object".into())),
    };
    let text = |key: &str| match context.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Failure::Context(format!(
            "{key}: expected a string, got {other}"
        ))),
    };
    Ok(Context {
        unit: text("targetingKey")?.filter(|u| !u.is_empty()),
        cohort: text(COHORT_ATTRIBUTE)?,
    })
}

/// The caller's `X-API-Key` as a bearer token, when no `Authorization` header is given.
fn api_key_as_bearer(door: &mut Door) -> Result<(), Failure> {
    if door.headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    if let Some(key) = door.headers.get("x-api-key") {
        let bearer = key
            .to_str()
            .ok()
            .and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok())
            .ok_or_else(|| {
                Failure::Edge(HttpError::unauthenticated(
                    "x-api-key: the header is not ASCII",
                ))
            })?;
        door.headers.insert(header::AUTHORIZATION, bearer);
    }
    Ok(())
}

/// Who is calling, authenticated once (the rate limit counts a bulk request once).
struct Caller {
    metadata: tonic::metadata::MetadataMap,
    extensions: tonic::Extensions,
}

impl Caller {
    fn of(door: &mut Door) -> Result<Caller, Failure> {
        api_key_as_bearer(door)?;
        let (metadata, extensions, ()) = door.request(()).map_err(Failure::Edge)?.into_parts();
        Ok(Caller {
            metadata,
            extensions,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        tonic::Request::from_parts(self.metadata.clone(), self.extensions.clone(), message)
    }
}

/// One gate for one context: OFREP's success object, or why not.
async fn evaluate(edge: &Edge, caller: &Caller, key: &str, cx: &Context) -> Result<Value, Failure> {
    let gate_exists = || {
        crate::ids::GateKey::try_from(key).ok().and_then(|k| {
            let applied = edge.node.state.read();
            applied
                .state
                .live_gate(&k)
                .map(|g| g.contract.variants.fallback.clone())
        })
    };
    let Some(unit) = &cx.unit else {
        // No unit, no sticky bucket: the fallback, as the SDK's own default would be.
        let Some(fallback) = gate_exists() else {
            return Err(Failure::NotFound(format!("gate {key} has no contract")));
        };
        // Authorised as any evaluation is (a reader may evaluate).
        crate::auth::authorize(
            &caller.request(()),
            crate::auth::Role::Reader,
            "evaluating a gate",
        )
        .map_err(|s| Failure::of(s, true))?;
        return Ok(json!({
            "key": key, "value": false, "reason": "DEFAULT", "variant": fallback,
            "metadata": {"targeting_key": "missing"},
        }));
    };
    let message = pb::EvaluateRequest {
        gate: key.to_owned(),
        unit_id: unit.clone(),
        cohort: cx.cohort.clone().unwrap_or_default(),
        consistency: pb::Consistency::Local as i32,
    };
    match Gates::evaluate(&edge.api, caller.request(message)).await {
        Ok(r) => {
            let r = r.into_inner();
            let reason = if r.kill_switch { "DISABLED" } else { "SPLIT" };
            Ok(json!({
                "key": key, "value": r.treatment, "reason": reason, "variant": r.variant,
                "metadata": {
                    "bucket": r.bucket, "exposure": r.exposure,
                    "gate_version": r.gate_version, "kill_switch": r.kill_switch,
                },
            }))
        }
        Err(status) => {
            let exists = status.code() == Code::NotFound && gate_exists().is_some();
            Err(Failure::of(status, exists))
        }
    }
}

async fn evaluate_flag(
    mut door: Door,
    Segment(key): Segment,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let body = body.map_err(|e| Failure::Edge(HttpError::from(e)))?;
        let caller = Caller::of(&mut door)?;
        let cx = context(&body)?;
        evaluate(&door.edge, &caller, &key, &cx).await
    };
    match answer.await {
        Ok(value) => Json(value).into_response(),
        Err(failure) => failure.response(&key),
    }
}

async fn evaluate_flags(mut door: Door, body: Result<Bytes, BytesRejection>) -> Response {
    let caller = match Caller::of(&mut door) {
        Ok(c) => c,
        Err(failure) => return bulk_failure(failure),
    };
    let cx = match body
        .map_err(|e| Failure::Edge(HttpError::from(e)))
        .and_then(|b| context(&b))
    {
        Ok(cx) => cx,
        Err(failure) => return bulk_failure(failure),
    };
    let keys: Vec<String> = {
        let applied = door.edge.node.state.read();
        applied
            .state
            .gates
            .values()
            .filter(|g| !g.deleted)
            .map(|g| g.key.to_string())
            .collect()
    };
    let mut flags = Vec::with_capacity(keys.len());
    for key in &keys {
        match evaluate(&door.edge, &caller, key, &cx).await {
            Ok(value) => flags.push(value),
            // The caller or the node cannot be served at all: the whole request fails.
            Err(Failure::Edge(e)) => return edge_response(e),
            Err(failure) => flags.push(json!({
                "key": key, "errorCode": failure.code(), "errorDetails": failure.details(),
            })),
        }
    }
    tagged(&door.headers, &json!({"flags": flags}))
}

/// A bulk request that cannot be evaluated at all: OFREP's `{errorCode, errorDetails}`.
fn bulk_failure(failure: Failure) -> Response {
    match failure {
        Failure::Edge(e) => edge_response(e),
        failure => (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorCode": failure.code(), "errorDetails": failure.details()})),
        )
            .into_response(),
    }
}

async fn configuration(mut door: Door) -> Response {
    if let Err(failure) = Caller::of(&mut door) {
        return bulk_failure(failure);
    }
    let body = json!({
        "name": "rampart",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": MIN_POLLING_MS}},
            "flagEvaluation": {"supportedTypes": ["boolean"]},
        },
    });
    tagged(&door.headers, &body)
}

/// `body` with an `ETag` of its bytes, or 304 when the caller's `If-None-Match` names it.
fn tagged(request: &HeaderMap, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let tag = format!("\"{:08x}-{:x}\"", crc32fast::hash(&bytes), bytes.len());
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*");
    let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response()
}
