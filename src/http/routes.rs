//! The JSON API under `/v1/`: each route one `rampart.v1` call (see `docs/openapi.yaml`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::call::{consistency, Door, Segment};
use super::error::HttpError;
use super::Edge;
use crate::api::convert::signal_to_proto;
use crate::api::view;
use crate::engine::{SignalError, SignalLine};
use crate::proto::v1 as pb;
use crate::proto::v1::admin_server::Admin;
use crate::proto::v1::contracts_server::Contracts;
use crate::proto::v1::gates_server::Gates;
use crate::proto::v1::overrides_server::Overrides;
use crate::proto::v1::signals_server::Signals;

/// Every `/v1/` route. (Listed again in `docs/openapi.yaml`; a test checks both agree.)
pub fn routes() -> Router<Edge> {
    Router::new()
        .route("/v1/cluster", get(cluster))
        .route("/v1/gates", get(list_gates))
        .route("/v1/gates/:gate", get(get_gate))
        .route("/v1/gates/:gate/decisions", get(list_decisions))
        .route("/v1/gates/:gate/windows", get(list_windows))
        .route("/v1/gates/:gate/evaluate", get(evaluate))
        .route("/v1/gates/:gate/overrides", post(override_gate))
        .route("/v1/contracts", get(list_contracts))
        .route(
            "/v1/contracts/:gate",
            get(get_contract).put(put_contract).delete(delete_contract),
        )
        .route("/v1/signals", post(ingest))
        .route("/v1/backtest", post(backtest))
}

type Answer = Result<Json<Value>, HttpError>;

/// The query's parameters; one not in `allowed`, or given twice, names itself.
pub fn params(raw: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>, HttpError> {
    let mut out = HashMap::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&key.as_ref()) {
            return Err(HttpError::invalid(
                key.as_ref(),
                format!("unknown query parameter; this route takes {allowed:?}"),
            ));
        }
        if out.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(HttpError::invalid(key.as_ref(), "given twice"));
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, HttpError> {
    params
        .get(key)
        .map(|v| {
            v.parse().map_err(|_| {
                HttpError::invalid(key, format!("`{v}` is not a non-negative integer"))
            })
        })
        .transpose()
}

fn read_consistency(raw: Option<&str>) -> Result<i32, HttpError> {
    let p = params(raw, &["consistency"])?;
    consistency(p.get("consistency").map(String::as_str))
}

async fn cluster(door: Door, RawQuery(q): RawQuery) -> Answer {
    params(q.as_deref(), &[])?;
    let request = door.request(pb::StatusRequest {})?;
    let reply = Admin::status(&door.edge.api, request).await?.into_inner();
    Ok(Json(view::cluster(&reply)))
}

async fn list_gates(door: Door, RawQuery(q): RawQuery) -> Answer {
    let consistency = read_consistency(q.as_deref())?;
    let request = door.request(pb::ListGatesRequest { consistency })?;
    let reply = Gates::list_gates(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(
        json!({"gates": reply.gates.iter().map(view::gate).collect::<Vec<_>>()}),
    ))
}

async fn get_gate(door: Door, Segment(gate): Segment, RawQuery(q): RawQuery) -> Answer {
    let consistency = read_consistency(q.as_deref())?;
    let request = door.request(pb::GetGateRequest { gate, consistency })?;
    let reply = Gates::get_gate(&door.edge.api, request).await?.into_inner();
    Ok(Json(view::gate(&reply)))
}

async fn list_decisions(door: Door, Segment(gate): Segment, RawQuery(q): RawQuery) -> Answer {
    let p = params(q.as_deref(), &["after_version", "limit", "consistency"])?;
    let message = pb::ListDecisionsRequest {
        gate,
        after_version: number(&p, "after_version")?.unwrap_or(0),
        // Any limit above the most a page holds (1000) is that most.
        limit: number::<u64>(&p, "limit")?.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        consistency: consistency(p.get("consistency").map(String::as_str))?,
    };
    let request = door.request(message)?;
    let reply = Gates::list_decisions(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(
        json!({"decisions": reply.decisions.iter().map(view::decision).collect::<Vec<_>>()}),
    ))
}

async fn list_windows(door: Door, Segment(gate): Segment, RawQuery(q): RawQuery) -> Answer {
    let p = params(q.as_deref(), &["cohort", "metric", "since", "consistency"])?;
    let since = p
        .get("since")
        .map(|t| {
            crate::engine::signal::parse_time("since", t)
                .map(crate::api::convert::timestamp)
                .map_err(|e| HttpError::invalid("since", e.reason))
        })
        .transpose()?;
    let message = pb::ListWindowsRequest {
        gate,
        cohort: p.get("cohort").cloned().unwrap_or_default(),
        metric: p.get("metric").cloned().unwrap_or_default(),
        since,
        consistency: consistency(p.get("consistency").map(String::as_str))?,
    };
    let request = door.request(message)?;
    let reply = Gates::list_windows(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(view::windows(&reply)))
}

async fn evaluate(door: Door, Segment(gate): Segment, RawQuery(q): RawQuery) -> Answer {
    let p = params(q.as_deref(), &["unit", "cohort", "consistency"])?;
    let message = pb::EvaluateRequest {
        gate,
        unit_id: p.get("unit").cloned().unwrap_or_default(),
        cohort: p.get("cohort").cloned().unwrap_or_default(),
        consistency: consistency(p.get("consistency").map(String::as_str))?,
    };
    let request = door.request(message)?;
    let r = Gates::evaluate(&door.edge.api, request)
        .await
        .map_err(|s| HttpError::from(s).naming("unit_id", "unit"))?
        .into_inner();
    Ok(Json(json!({
        "variant": r.variant, "treatment": r.treatment, "bucket": r.bucket, "exposure": r.exposure,
        "kill_switch": r.kill_switch, "gate_version": r.gate_version, "read": r.read.as_ref().map(view::read),
    })))
}

/// A JSON object body: each known key read once, anything else named.
fn object(body: &[u8], allowed: &[&str]) -> Result<serde_json::Map<String, Value>, HttpError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::invalid("body", format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(HttpError::invalid("body", "must be a JSON object"));
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(HttpError::invalid(
            key.as_str(),
            format!("unknown field; expected one of {allowed:?}"),
        ));
    }
    Ok(map)
}

fn text_field(map: &serde_json::Map<String, Value>, key: &str) -> Result<String, HttpError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(HttpError::invalid(key, "must be a string")),
    }
}

async fn override_gate(
    door: Door,
    Segment(gate): Segment,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    let map = object(&body, &["kind", "cohort", "exposure", "actor", "reason"])?;
    let kind = match text_field(&map, "kind")?.as_str() {
        "hold" => pb::OverrideKind::Hold,
        "resume" => pb::OverrideKind::Resume,
        "approve" => pb::OverrideKind::Approve,
        "rollback" => pb::OverrideKind::Rollback,
        "kill" => pb::OverrideKind::Kill,
        "set_exposure" => pb::OverrideKind::SetExposure,
        "" => {
            return Err(HttpError::invalid(
                "kind",
                "is required: hold, resume, approve, rollback, kill or set_exposure",
            ))
        }
        other => {
            return Err(HttpError::invalid(
                "kind",
                format!(
                    "`{other}`: expected hold, resume, approve, rollback, kill or set_exposure"
                ),
            ))
        }
    };
    let exposure = match map.get("exposure") {
        None | Some(Value::Null) => 0.0,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| HttpError::invalid("exposure", "must be a number (percent)"))?,
    };
    let message = pb::OverrideRequest {
        gate,
        cohort: text_field(&map, "cohort")?,
        kind: kind as i32,
        exposure,
        actor: text_field(&map, "actor")?,
        reason: text_field(&map, "reason")?,
    };
    let request = door.request(message)?;
    let reply = Overrides::r#override(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(view::decision(&reply)))
}

async fn list_contracts(door: Door, RawQuery(q): RawQuery) -> Answer {
    let consistency = read_consistency(q.as_deref())?;
    let request = door.request(pb::ListContractsRequest { consistency })?;
    let reply = Contracts::list_contracts(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(
        json!({"contracts": reply.contracts.iter().map(view::contract).collect::<Vec<_>>()}),
    ))
}

async fn get_contract(door: Door, Segment(gate): Segment, RawQuery(q): RawQuery) -> Answer {
    let consistency = read_consistency(q.as_deref())?;
    let request = door.request(pb::GetContractRequest { gate, consistency })?;
    let reply = Contracts::get_contract(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(view::contract(&reply)))
}

/// Whether the request says its body is JSON (`Content-Type: application/json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}

/// The contract's YAML from a YAML or JSON body, its `gate` the path's (filled in when the
/// body leaves it out; a different one is refused).
fn contract_yaml(gate: &str, headers: &HeaderMap, body: &[u8]) -> Result<String, HttpError> {
    let json = is_json(headers);
    let mut document: serde_yaml::Value = if json {
        serde_json::from_slice(body)
            .map_err(|e| HttpError::invalid("body", format!("not JSON: {e}")))?
    } else {
        let text =
            std::str::from_utf8(body).map_err(|_| HttpError::invalid("body", "is not UTF-8"))?;
        serde_yaml::from_str(text)
            .map_err(|e| HttpError::invalid("body", format!("not YAML: {e}")))?
    };
    let serde_yaml::Value::Mapping(map) = &mut document else {
        return Err(HttpError::invalid("body", "must be a contract (a mapping)"));
    };
    let filled = match map.get("gate") {
        None => {
            map.insert("gate".into(), gate.into());
            true
        }
        Some(serde_yaml::Value::String(g)) if g == gate => false,
        Some(other) => {
            let named = serde_yaml::to_string(other).unwrap_or_default();
            return Err(HttpError::invalid(
                "gate",
                format!("the body names gate {}, the path {gate}", named.trim()),
            ));
        }
    };
    if json || filled {
        serde_yaml::to_string(&document).map_err(|e| HttpError::invalid("body", e.to_string()))
    } else {
        // Kept as written, comments and all.
        Ok(String::from_utf8_lossy(body).into_owned())
    }
}

async fn put_contract(
    door: Door,
    Segment(gate): Segment,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let p = params(q.as_deref(), &["if_changed"])?;
    let if_changed = match p.get("if_changed").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(HttpError::invalid(
                "if_changed",
                format!("`{other}` is neither true nor false"),
            ))
        }
    };
    let body = body?;
    let yaml = contract_yaml(&gate, &door.headers, &body)?;
    let request = door.request(pb::PutContractRequest { yaml, if_changed })?;
    let r = Contracts::put_contract(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(json!({
        "gate": r.gate,
        "contract_version": r.contract_version,
        "gate_version": r.gate_version,
        "unchanged": r.unchanged,
    })))
}

async fn delete_contract(door: Door, Segment(gate): Segment) -> Answer {
    let request = door.request(pb::DeleteContractRequest { gate: gate.clone() })?;
    let r = Contracts::delete_contract(&door.edge.api, request)
        .await?
        .into_inner();
    Ok(Json(json!({"gate": gate, "gate_version": r.gate_version})))
}

/// `POST /v1/backtest`: `{"contract": YAML, "signals": JSON lines or an array of signal
/// objects}`; the report as `rampart backtest --json` prints it, with the signals that could
/// not be read under `rejected`.
async fn backtest(door: Door, body: Result<Bytes, BytesRejection>) -> Answer {
    let body = body?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| HttpError::invalid("body", format!("not JSON: {e}")))?;
    let Value::Object(mut body) = value else {
        return Err(HttpError::invalid("body", "expected a JSON object"));
    };
    let yaml = match body.remove("contract") {
        Some(Value::String(yaml)) => yaml,
        Some(_) => {
            return Err(HttpError::invalid(
                "contract",
                "expected the contract's YAML as a string",
            ))
        }
        None => return Err(HttpError::invalid("contract", "missing")),
    };
    let jsonl = match body.remove("signals") {
        Some(Value::String(lines)) => lines,
        Some(Value::Array(signals)) => signals
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) => {
            return Err(HttpError::invalid(
                "signals",
                "expected JSON lines as a string, or an array of signals",
            ))
        }
        None => return Err(HttpError::invalid("signals", "missing")),
    };
    if let Some(other) = body.keys().next() {
        return Err(HttpError::invalid(
            other.as_str(),
            "unknown field; the body takes contract and signals",
        ));
    }
    let request = door.request(pb::BacktestRequest {
        yaml,
        arrivals: Vec::new(),
        jsonl,
    })?;
    let r = Contracts::backtest(&door.edge.api, request)
        .await?
        .into_inner();
    let mut report: Value = serde_json::from_str(&r.report_json)
        .map_err(|e| HttpError::from(tonic::Status::internal(format!("report: {e}"))))?;
    let rejected: Vec<Value> = r
        .rejected
        .iter()
        .map(|x| json!({"line": x.index, "field": x.field, "reason": x.reason}))
        .collect();
    if let Value::Object(report) = &mut report {
        report.insert("rejected".into(), Value::Array(rejected));
    }
    Ok(Json(report))
}

/// The header carrying an ingest's idempotency key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A signal of the body and where the caller put it: a JSON-lines line (from 1) or an array
/// index (from 0).
enum Position {
    Line(usize),
    Index(usize),
}

impl Position {
    fn json(&self, field: &str, reason: &str) -> Value {
        match self {
            Position::Line(n) => json!({"line": n, "field": field, "reason": reason}),
            Position::Index(n) => json!({"index": n, "field": field, "reason": reason}),
        }
    }
}

/// A body's signals with their positions, and the rejections of those that cannot be read.
type Parsed = (Vec<(Position, pb::Signal)>, Vec<Value>);

/// The body's signals: a JSON array (always, when `json`: the body says it is JSON), or JSON
/// lines; each that cannot be read is a rejection.
fn signals_of(body: &[u8], json: bool) -> Result<Parsed, HttpError> {
    let text = std::str::from_utf8(body).map_err(|_| HttpError::invalid("body", "is not UTF-8"))?;
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    // A line that is not JSON is the `line`'s fault; a bad value, its field's.
    let mut take = |position: Position, line: Result<SignalLine, SignalError>| {
        let parsed = line
            .map_err(|e| (e.field, e.reason))
            .and_then(|l| l.into_signal().map_err(|e| (e.field, e.reason)));
        match parsed {
            Ok(s) => good.push((position, signal_to_proto(&s))),
            Err((field, reason)) => rejected.push(position.json(&field, &reason)),
        }
    };
    if json || text.trim_start().starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(text).map_err(|e| {
            HttpError::invalid(
                "body",
                format!(
                    "not a JSON array of signals ({e}); send JSON lines as application/x-ndjson"
                ),
            )
        })?;
        for (i, item) in items.into_iter().enumerate() {
            take(Position::Index(i), SignalLine::read_value(item));
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // Straight into a signal line: no `Value` in between (the hot path of JSON ingest).
            take(Position::Line(i + 1), SignalLine::read(line));
        }
    }
    Ok((good, rejected))
}

/// `POST /v1/signals`: the body's signals, in batches of at most the node's
/// `max_batch_signals`, batch `n` under the key `<Idempotency-Key>/<n>`, so a retry of the
/// same body with the same key counts nothing twice.
async fn ingest(door: Door, body: Result<Bytes, BytesRejection>) -> Answer {
    let body = body?;
    let key = door
        .headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::trim))
        .transpose()
        .map_err(|_| HttpError::invalid("Idempotency-Key", "must be ASCII"))?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            HttpError::invalid(
                "Idempotency-Key",
                "the header is required (a retry with the same key counts once)",
            )
        })?
        .to_owned();
    let (good, mut rejected) = signals_of(&body, is_json(&door.headers))?;
    // The lines refused here, before any batch; the batches count their own.
    let unread = rejected.len();
    if good.is_empty() && rejected.is_empty() {
        return Err(HttpError::invalid("body", "holds no signals"));
    }
    let mut accepted = 0u64;
    let mut duplicate = !good.is_empty();
    // The signals move into the batches; the positions stay to name the refused ones.
    let (positions, signals): (Vec<Position>, Vec<pb::Signal>) = good.into_iter().unzip();
    let mut signals = signals.into_iter();
    for (n, chunk) in positions
        .chunks(door.edge.node.config.max_batch_signals)
        .enumerate()
    {
        let message = pb::IngestRequest {
            idempotency_key: format!("{key}/{n}"),
            signals: signals.by_ref().take(chunk.len()).collect(),
        };
        let request = door.request(message)?;
        let reply = Signals::ingest(&door.edge.api, request).await?.into_inner();
        accepted += u64::from(reply.accepted);
        duplicate &= reply.duplicate;
        for r in reply.rejected {
            if let Some(position) = usize::try_from(r.index).ok().and_then(|i| chunk.get(i)) {
                let field = r.field.split_once('.').map_or(r.field.as_str(), |(_, f)| f);
                rejected.push(position.json(field, &r.reason));
            }
        }
    }
    // Counted once the batches are answered, and not again for a retry they all knew: as
    // the gRPC edge counts a batch.
    door.edge.node.metrics.signals_answered(
        duplicate,
        0,
        rejected[..unread].iter().map(|r| {
            (
                r["field"].as_str().unwrap_or("signal"),
                r["reason"].as_str().unwrap_or_default(),
            )
        }),
    );
    rejected.sort_by_key(|r| r["line"].as_u64().or_else(|| r["index"].as_u64()));
    Ok(Json(view::ingest(accepted, duplicate, &rejected)))
}
