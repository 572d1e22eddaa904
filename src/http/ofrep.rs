//! OFREP, the OpenFeature Remote Evaluation Protocol, on the HTTP listener: any OpenFeature
//! SDK's OFREP provider evaluates rampart gates unmodified.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one gate for the body's `context`;
//! - `POST /ofrep/v1/evaluate/flags`: every live gate, with an `ETag` (`If-None-Match` → 304),
//!   so polling SDKs refetch only when an answer changed;
//! - `GET /ofrep/v1/configuration`: what rampart supports (boolean flags, polling).
//!
//! A flag is a gate; `context.targetingKey` is the unit, the context attribute the contract
//! names (`cohort_attribute`, default `cohort`) the cohort (a gate with one cohort needs none).
//! The value is a boolean, whether the unit is in the treatment; `variant` is the contract's
//! variant name, `metadata` the bucket, cohort, exposure, gate version and kill switch. Each
//! flag is answered from this node's applied state by `flagd::resolve`, as flagd's listener
//! answers (the sticky bucketing of `rampart.v1.Gates/Evaluate`, at its LOCAL consistency);
//! reasons: `SPLIT`, `TARGETING_MATCH` where an operator set the cohort's exposure, `DISABLED`
//! while the kill switch is on (the fallback variant), `DEFAULT` without a targeting key (the
//! fallback variant, no bucket). Bearer tokens or `X-API-Key` carry a reader's token.
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

use super::call::{Door, Segment};
use super::error::HttpError;
use super::Edge;
use crate::engine::contract::DEFAULT_COHORT_ATTRIBUTE;
use crate::flagd::resolve::{self, FlagType, ResolveError};

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
}

impl From<ResolveError> for Failure {
    fn from(e: ResolveError) -> Failure {
        let message = e.to_string();
        match e {
            ResolveError::NotFound(_) => Failure::NotFound(message),
            ResolveError::Context { .. } | ResolveError::TypeMismatch { .. } => {
                Failure::Context(message)
            }
            ResolveError::Unavailable(_) => {
                Failure::Edge(HttpError::from(tonic::Status::unavailable(message)))
            }
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

/// The evaluation context of a request body, `{"context": {...}}`; an empty body is an
/// empty context.
fn context(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
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
    // The attributes every request may carry are checked here, whatever gates exist (a bulk
    // request over no gate still says its context is wrong); a contract's own
    // `cohort_attribute` is checked when that gate is evaluated.
    use resolve::EvaluationContext;
    for attribute in ["targetingKey", DEFAULT_COHORT_ATTRIBUTE] {
        context.text(attribute).map_err(Failure::from)?;
    }
    Ok(context)
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

/// Who is calling: authenticated and authorised as a reader once per request (the rate
/// limit counts a bulk request once).
fn authorise(door: &mut Door) -> Result<(), Failure> {
    api_key_as_bearer(door)?;
    let request = door.request(()).map_err(Failure::Edge)?;
    crate::auth::authorize(&request, crate::auth::Role::Reader, "evaluating a gate")
        .map(|_| ())
        .map_err(|s| Failure::Edge(HttpError::from(s)))
}

/// A protobuf value as JSON (whole numbers as integers, as the rest of the API writes them).
fn json_of(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(*n as i64),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(json_of).collect()),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect(),
        ),
    }
}

/// One gate for one context: OFREP's success object, or why not.
fn evaluate(edge: &Edge, key: &str, cx: &Map<String, Value>) -> Result<Value, Failure> {
    let applied = edge.node.state.read();
    let gate = resolve::live_gate(&applied.state, key)?;
    let r = resolve::resolve(gate, FlagType::Boolean, cx)?;
    let value = matches!(r.value, resolve::Resolved::Bool(true));
    let metadata: Map<String, Value> = r
        .metadata
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), json_of(v)))
        .collect();
    Ok(json!({
        "key": key, "value": value, "reason": r.reason, "variant": r.variant,
        "metadata": metadata,
    }))
}

async fn evaluate_flag(
    mut door: Door,
    Segment(key): Segment,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = (|| {
        let body = body.map_err(|e| Failure::Edge(HttpError::from(e)))?;
        authorise(&mut door)?;
        let cx = context(&body)?;
        evaluate(&door.edge, &key, &cx)
    })();
    match answer {
        Ok(value) => Json(value).into_response(),
        Err(failure) => failure.response(&key),
    }
}

async fn evaluate_flags(mut door: Door, body: Result<Bytes, BytesRejection>) -> Response {
    if let Err(failure) = authorise(&mut door) {
        return bulk_failure(failure);
    }
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
        match evaluate(&door.edge, key, &cx) {
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
    if let Err(failure) = authorise(&mut door) {
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
