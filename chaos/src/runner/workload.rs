//! The drill workload: clients that ingest batches (with idempotency keys, retries and
//! deliberate duplicates), read gates (linearizable and local), evaluate, override, watch, and
//! a monitor that samples who leads. Every call is recorded in the history.
//!
//! Batches are built so the checker can attribute them: rate signals only, one per
//! (cohort, metric, arm), all at the same event time, with a trial count that varies by batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::api::convert::timestamp;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;

use super::client::{decision_record, gate_view, now_ms, now_us, write_outcome, Pool, Recorder};
use crate::history::*;

/// What every client shares.
#[derive(Clone)]
pub struct Ctx {
    pub pool: Pool,
    pub rec: Arc<Recorder>,
    /// Turns true when the clients should finish.
    pub stop: Arc<AtomicBool>,
    pub drill: String,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn record(
        &self,
        id: u64,
        client: u32,
        node: u64,
        start: Micros,
        result: (Outcome, Option<String>, Call),
    ) {
        let (outcome, error, call) = result;
        self.rec.push(Op {
            id,
            client,
            node: Some(node),
            start,
            end: now_us(),
            outcome,
            error,
            call,
        });
    }
}

/// Builds one attributable batch for `gate`: both arms of every cohort, at `at_ms`.
pub fn batch(
    gate: &str,
    cohorts: &[&str],
    at_ms: i64,
    trials: u64,
    error_rate: f64,
) -> Vec<SignalRec> {
    let mut out = Vec::new();
    for cohort in cohorts {
        for arm in ["treatment", "control"] {
            let rate = if arm == "treatment" { error_rate } else { 0.01 };
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let events = ((trials as f64) * rate).round() as u64;
            out.push(SignalRec {
                gate: gate.into(),
                metric: "errors".into(),
                cohort: (*cohort).into(),
                arm: arm.into(),
                at_ms,
                events: events.min(trials),
                trials,
            });
        }
    }
    out
}

pub fn to_proto(s: &SignalRec) -> pb::Signal {
    pb::Signal {
        gate: s.gate.clone(),
        metric: s.metric.clone(),
        cohort: s.cohort.clone(),
        arm: if s.arm == "treatment" {
            pb::Arm::Treatment as i32
        } else {
            pb::Arm::Control as i32
        },
        at: Some(timestamp(s.at_ms)),
        measurement: Some(pb::signal::Measurement::Rate(pb::Rate {
            events: s.events,
            trials: s.trials,
        })),
    }
}

/// Sends one batch under `key` until a node answers (or 20 attempts, or 10 s), recording every
/// attempt. Returns the time of the acknowledgement.
pub async fn ingest(
    ctx: &Ctx,
    client: u32,
    mut node: u64,
    key: &str,
    signals: &[SignalRec],
) -> Option<Micros> {
    let request = pb::IngestRequest {
        idempotency_key: key.to_owned(),
        signals: signals.iter().map(to_proto).collect(),
    };
    let first = Instant::now();
    for _ in 0..20 {
        let id = ctx.rec.next_id();
        let start = now_us();
        let result = SignalsClient::new(ctx.pool.channel(node))
            .ingest(request.clone())
            .await;
        let input = IngestInput {
            key: key.to_owned(),
            signals: signals.to_vec(),
        };
        match result {
            Ok(reply) => {
                let r = reply.into_inner();
                let output = IngestOutput {
                    accepted: r.accepted,
                    rejected: r.rejected.iter().map(|x| x.index).collect(),
                    duplicate: r.duplicate,
                    log_index: r.log_index,
                };
                let end = now_us();
                ctx.record(
                    id,
                    client,
                    node,
                    start,
                    (
                        Outcome::Ok,
                        None,
                        Call::Ingest {
                            input,
                            output: Some(output),
                        },
                    ),
                );
                return Some(end);
            }
            Err(status) => {
                let outcome = write_outcome(&status);
                ctx.record(
                    id,
                    client,
                    node,
                    start,
                    (
                        outcome,
                        Some(status.message().to_owned()),
                        Call::Ingest {
                            input,
                            output: None,
                        },
                    ),
                );
                if outcome == Outcome::Failed || first.elapsed() > Duration::from_secs(10) {
                    return None;
                }
            }
        }
        node = ctx.pool.next_after(node);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Healthy batches every `every` until stopped; every 10th acknowledged batch is sent again.
pub async fn ingester(ctx: Ctx, client: u32, gate: String, cohorts: Vec<String>, every: Duration) {
    let cohorts: Vec<&str> = cohorts.iter().map(String::as_str).collect();
    let mut node = ctx.pool.ids()[usize::try_from(client).unwrap_or(0) % ctx.pool.ids().len()];
    let mut seq = 0u64;
    while !ctx.stopped() {
        seq += 1;
        let key = format!("{}-c{client}-b{seq}", ctx.drill);
        let trials = 100 + (seq * 7 + u64::from(client)) % 97;
        let signals = batch(&gate, &cohorts, now_ms(), trials, 0.01);
        if ingest(&ctx, client, node, &key, &signals).await.is_some() && seq % 10 == 0 {
            node = ctx.pool.next_after(node);
            let _ = ingest(&ctx, client, node, &key, &signals).await;
        }
        tokio::time::sleep(every).await;
    }
}

/// Linearizable reads, local reads and evaluations on rotating nodes.
pub async fn reader(ctx: Ctx, client: u32, gate: String, cohorts: Vec<String>, every: Duration) {
    let mut node = ctx.pool.ids()[0];
    let mut n = 0u64;
    while !ctx.stopped() {
        n += 1;
        node = ctx.pool.next_after(node);
        if n % 3 == 2 {
            let id = ctx.rec.next_id();
            let start = now_us();
            let mut gates = GatesClient::new(ctx.pool.channel(node));
            let cohort = cohorts[usize::try_from(n).unwrap_or(0) % cohorts.len()].clone();
            let input = EvaluateInput {
                gate: gate.clone(),
                unit: format!("u{n}"),
                cohort: cohort.clone(),
            };
            let request = pb::EvaluateRequest {
                gate: gate.clone(),
                unit_id: input.unit.clone(),
                cohort,
                consistency: pb::Consistency::Local as i32,
            };
            let call = match gates.evaluate(request).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let output = EvaluateOutput {
                        gate_version: r.gate_version,
                        kill_switch: r.kill_switch,
                        exposure: r.exposure,
                        treatment: r.treatment,
                    };
                    (
                        Outcome::Ok,
                        None,
                        Call::Evaluate {
                            input,
                            output: Some(output),
                        },
                    )
                }
                Err(s) => (
                    Outcome::Failed,
                    Some(s.message().to_owned()),
                    Call::Evaluate {
                        input,
                        output: None,
                    },
                ),
            };
            ctx.record(id, client, node, start, call);
        } else {
            let consistency = if n % 3 == 0 {
                Consistency::Local
            } else {
                Consistency::Linearizable
            };
            read_once(&ctx, client, node, &gate, consistency).await;
        }
        tokio::time::sleep(every).await;
    }
}

/// Overrides on `gate`: kill, resume, hold, resume, … each with a unique reason.
pub async fn operator(ctx: Ctx, client: u32, gate: String, every: Duration) {
    let kinds = [
        ("kill", pb::OverrideKind::Kill),
        ("resume", pb::OverrideKind::Resume),
        ("hold", pb::OverrideKind::Hold),
        ("resume", pb::OverrideKind::Resume),
    ];
    let mut node = ctx.pool.ids()[0];
    let mut n = 0usize;
    tokio::time::sleep(every).await;
    while !ctx.stopped() {
        let (name, kind) = kinds[n % kinds.len()];
        n += 1;
        if !override_once(&ctx, client, node, &gate, name, kind).await {
            node = ctx.pool.next_after(node);
        }
        tokio::time::sleep(every).await;
    }
}

/// One recorded `GetGate`; returns the version read.
pub async fn read_once(
    ctx: &Ctx,
    client: u32,
    node: u64,
    gate: &str,
    consistency: Consistency,
) -> Option<u64> {
    let id = ctx.rec.next_id();
    let start = now_us();
    let wire = match consistency {
        Consistency::Local => pb::Consistency::Local,
        Consistency::Linearizable => pb::Consistency::Linearizable,
    };
    let input = ReadInput {
        gate: gate.to_owned(),
        consistency,
    };
    let request = pb::GetGateRequest {
        gate: gate.to_owned(),
        consistency: wire as i32,
    };
    let (version, call) = match GatesClient::new(ctx.pool.channel(node))
        .get_gate(request)
        .await
    {
        Ok(r) => {
            let view = gate_view(&r.into_inner());
            let version = view.version;
            let call = Call::Read {
                input,
                output: Some(view),
            };
            (Some(version), (Outcome::Ok, None, call))
        }
        Err(s) => {
            let call = Call::Read {
                input,
                output: None,
            };
            (None, (Outcome::Failed, Some(s.message().to_owned()), call))
        }
    };
    ctx.record(id, client, node, start, call);
    version
}

/// One recorded override with a unique reason; returns whether it was acknowledged.
pub async fn override_once(
    ctx: &Ctx,
    client: u32,
    node: u64,
    gate: &str,
    name: &str,
    kind: pb::OverrideKind,
) -> bool {
    let id = ctx.rec.next_id();
    let input = OverrideInput {
        gate: gate.to_owned(),
        cohort: None,
        kind: name.into(),
        actor: "chaos".into(),
        reason: format!("drill op {id}"),
    };
    let request = pb::OverrideRequest {
        gate: gate.to_owned(),
        cohort: String::new(),
        kind: kind as i32,
        exposure: 0.0,
        actor: input.actor.clone(),
        reason: input.reason.clone(),
    };
    let start = now_us();
    let result = OverridesClient::new(ctx.pool.channel(node))
        .r#override(request)
        .await;
    let ok = result.is_ok();
    let call = match result {
        Ok(d) => {
            let output = Some(decision_record(&d.into_inner()));
            (Outcome::Ok, None, Call::Override { input, output })
        }
        Err(s) => (
            write_outcome(&s),
            Some(s.message().to_owned()),
            Call::Override {
                input,
                output: None,
            },
        ),
    };
    ctx.record(id, client, node, start, call);
    ok
}
