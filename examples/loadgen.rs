//! Load generator for the benchmarks in `docs/bench.md` (driven by `bench/run.sh`).
//!
//! ```text
//! loadgen ingest   ENDPOINTS CONCURRENCY SECONDS SIGNALS_PER_BATCH
//! loadgen http     HTTP_ENDPOINTS CONCURRENCY SECONDS SIGNALS_PER_BATCH
//! loadgen etcd     ENDPOINTS CONCURRENCY SECONDS
//! loadgen evaluate ENDPOINTS CONCURRENCY SECONDS
//! loadgen ofrep    HTTP_ENDPOINTS CONCURRENCY SECONDS
//! loadgen flagd    FLAGD_ENDPOINTS CONCURRENCY SECONDS
//! loadgen echo     ENDPOINTS CONCURRENCY SECONDS
//! loadgen echo-serve ADDR
//! loadgen decision ENDPOINTS TRIALS
//! loadgen acks     ENDPOINTS CONCURRENCY SECONDS
//! ```
//! `evaluate`: `rampart.v1.Gates/Evaluate` of the gate `bench` for a new unit each call.
//! `ofrep`: the same question as OFREP, `POST /ofrep/v1/evaluate/flags/bench` over HTTP/1.1
//! (a kept-alive connection per worker). `flagd`: the same question as flagd's
//! `flagd.evaluation.v1.Service/ResolveBoolean` on the nodes' flagd listeners. `echo`: `grpc.health.v1.Health/Check` against
//! `echo-serve`, a tonic server with nothing but the health service: the floor a unary call
//! over loopback costs, for the hot-path figures.
//! `decision`: per trial, a fresh gate with 1s windows; a watch on the last endpoint; one
//! breaching batch through the first; the time from its acknowledgement to the rollback
//! decision arriving on the watch, and from the window's close (end + grace) to it.
//! `acks`: one signal per request like `ingest`, but a worker whose call fails moves on to the
//! next endpoint (after 5 ms) as a client failing over would; prints every millisecond
//! (epoch) in which a write was acknowledged, for `bench/failover.sh` to time kills against.
//! `http`: the same batches as `ingest` (the same signals, one batch per request, one request
//! in flight per worker) as JSON lines POSTed to `/v1/signals` of the nodes' HTTP listeners
//! (HTTP/1.1, a kept-alive connection per worker); a batch counts once answered 200 with every
//! signal accepted.
//! ENDPOINTS is a comma-separated list; workers spread over it round-robin. Prints one JSON
//! line: operations per second and latency percentiles in microseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::proto::flagd::v1 as flagd;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic::transport::Channel;

/// etcd's `KV.Put` request and response: only the fields this benchmark sets.
#[derive(Clone, PartialEq, prost::Message)]
struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PutResponse {}

async fn etcd_put(channel: Channel, key: Vec<u8>, value: Vec<u8>) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Put");
    let codec: tonic::codec::ProstCodec<PutRequest, PutResponse> =
        tonic::codec::ProstCodec::default();
    grpc.unary(tonic::Request::new(PutRequest { key, value }), path, codec)
        .await
        .map(|_| ())
}

/// `signal(at, i)` as a JSON-lines line, as `POST /v1/signals` reads it.
fn signal_line(at: &str, i: u64) -> String {
    serde_json::json!({"gate": "bench", "metric": "error_rate",
        "arm": if i % 2 == 0 { "treatment" } else { "control" },
        "at": at, "events": 1, "trials": 100})
    .to_string()
}

/// One batch through `POST /v1/signals`: answered 200 with all `expected` signals accepted.
async fn http_ingest(
    client: &reqwest::Client,
    url: &str,
    key: String,
    body: String,
    expected: u64,
) -> bool {
    let Ok(response) = client
        .post(url)
        .header("idempotency-key", key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
    else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    response
        .json::<serde_json::Value>()
        .await
        .is_ok_and(|v| v["accepted"].as_u64() == Some(expected))
}

/// One OFREP evaluation: answered 200 with a boolean value.
async fn ofrep_evaluate(client: &reqwest::Client, url: &str, body: String) -> bool {
    let Ok(response) = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    else {
        return false;
    };
    response.status().is_success()
        && response
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|v| v["value"].is_boolean())
}

fn signal(at: i64, i: u64) -> pb::Signal {
    pb::Signal {
        gate: "bench".into(),
        metric: "error_rate".into(),
        cohort: String::new(),
        arm: if i % 2 == 0 {
            pb::Arm::Treatment as i32
        } else {
            pb::Arm::Control as i32
        },
        at: Some(rampart::api::convert::timestamp(at)),
        measurement: Some(pb::signal::Measurement::Rate(pb::Rate {
            events: 1,
            trials: 100,
        })),
    }
}

const DECISION_CONTRACT: &str = "gate: GATE
variants: { treatment: new, fallback: old }
ladder: [10, 100]
stage_min_duration: 1h
window: 1s
grace: 100ms
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 50
    kill: { above: 0.05 }
";

/// Breaching signal to decision seen by a watcher, `trials` times.
async fn decision_latency(endpoints: &[String], trials: usize) -> anyhow::Result<()> {
    use rampart::proto::v1::contracts_client::ContractsClient;
    use tokio_stream::StreamExt;
    let writer = rampart::consensus::network::endpoint(&endpoints[0], None)?
        .connect()
        .await?;
    let watcher =
        rampart::consensus::network::endpoint(endpoints.last().map_or("", String::as_str), None)?
            .connect()
            .await?;
    let mut from_ack = Vec::new();
    let mut from_close = Vec::new();
    let run = std::process::id();
    for trial in 0..trials {
        let gate = format!("latency-{run}-{trial}");
        let yaml = DECISION_CONTRACT.replace("GATE", &gate);
        ContractsClient::new(writer.clone())
            .put_contract(pb::PutContractRequest {
                yaml,
                ..Default::default()
            })
            .await?;
        let mut watch = GatesClient::new(watcher.clone())
            .watch(pb::WatchRequest {
                gates: vec![gate.clone()],
                after_version: Default::default(),
            })
            .await?
            .into_inner();
        // Wait for the gate's first full window, then half a window more.
        let start = (rampart::node::wall_clock_ms() / 1000 + 1) * 1000;
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(start + 500 - rampart::node::wall_clock_ms()).unwrap_or(0) + 1000,
        ))
        .await;
        let at = rampart::node::wall_clock_ms();
        let mut bad = signal(at, 0);
        bad.gate.clone_from(&gate);
        bad.measurement = Some(pb::signal::Measurement::Rate(pb::Rate {
            events: 50,
            trials: 100,
        }));
        let mut control = signal(at, 1);
        control.gate.clone_from(&gate);
        let request = pb::IngestRequest {
            idempotency_key: format!("{gate}-bad"),
            signals: vec![bad, control],
        };
        SignalsClient::new(writer.clone()).ingest(request).await?;
        let acked = Instant::now();
        let acked_ms = rampart::node::wall_clock_ms();
        loop {
            let Some(event) = tokio::time::timeout(Duration::from_secs(10), watch.next()).await?
            else {
                anyhow::bail!("watch ended");
            };
            if let Some(pb::watch_event::Event::Decision(d)) = event?.event {
                if d.action == "rollback" {
                    let seen_ms = rampart::node::wall_clock_ms();
                    let close = d
                        .window_end
                        .as_ref()
                        .map_or(0, rampart::api::convert::millis)
                        + 100;
                    from_ack.push(u64::try_from(acked.elapsed().as_micros()).unwrap_or(0));
                    from_close
                        .push(u64::try_from((seen_ms - close.max(acked_ms)) * 1000).unwrap_or(0));
                    break;
                }
            }
        }
    }
    from_ack.sort_unstable();
    from_close.sort_unstable();
    let mid = |v: &[u64]| v[v.len() / 2];
    println!(
        "{}",
        serde_json::json!({"mode": "decision", "trials": trials,
            "ack_to_decision_p50_us": mid(&from_ack), "ack_to_decision_max_us": from_ack.last(),
            "window_close_to_decision_p50_us": mid(&from_close), "window_close_to_decision_max_us": from_close.last()})
    );
    Ok(())
}

/// Writes one signal per request from `concurrency` workers for `seconds`, each moving to the
/// next endpoint when a call fails; prints the epoch milliseconds in which writes were acked.
async fn acks(endpoints: &[String], concurrency: usize, seconds: u64) -> anyhow::Result<()> {
    let mut channels = Vec::new();
    for e in endpoints {
        // Lazily: a node that is down when this starts is tried again on every call.
        channels.push(rampart::consensus::network::endpoint(e, None)?.connect_lazy());
    }
    let channels = Arc::new(channels);
    let run = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let channels = channels.clone();
        workers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut at_node = w % channels.len();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let request = pb::IngestRequest {
                    idempotency_key: format!("{run}-a{w}-{n}"),
                    signals: vec![signal(rampart::node::wall_clock_ms(), n)],
                };
                let mut call = tonic::Request::new(request);
                call.set_timeout(Duration::from_secs(1));
                match SignalsClient::new(channels[at_node].clone())
                    .ingest(call)
                    .await
                {
                    Ok(_) => acked.push(rampart::node::wall_clock_ms()),
                    Err(_) => {
                        at_node = (at_node + 1) % channels.len();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            acked
        }));
    }
    let mut all = std::collections::BTreeSet::new();
    for w in workers {
        all.extend(w.await?);
    }
    println!(
        "{}",
        serde_json::json!({"mode": "acks", "concurrency": concurrency, "acked_ms": all})
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("echo-serve") {
        let addr: std::net::SocketAddr = args
            .get(2)
            .ok_or_else(|| anyhow::anyhow!("usage: loadgen echo-serve ADDR"))?
            .parse()?;
        let (_, health) = tonic_health::server::health_reporter();
        tonic::transport::Server::builder()
            .add_service(health)
            .serve(addr)
            .await?;
        return Ok(());
    }
    if args.get(1).map(String::as_str) == Some("decision") {
        let endpoints: Vec<String> = args
            .get(2)
            .map(|e| e.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let trials: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
        anyhow::ensure!(
            !endpoints.is_empty() && trials > 0,
            "usage: loadgen decision ENDPOINTS TRIALS"
        );
        return decision_latency(&endpoints, trials).await;
    }
    if args.get(1).map(String::as_str) == Some("acks") {
        anyhow::ensure!(
            args.len() == 5,
            "usage: loadgen acks ENDPOINTS CONCURRENCY SECONDS"
        );
        let endpoints: Vec<String> = args[2].split(',').map(str::to_owned).collect();
        return acks(&endpoints, args[3].parse()?, args[4].parse()?).await;
    }
    anyhow::ensure!(
        args.len() >= 5,
        "usage: loadgen ingest|http|etcd|evaluate|ofrep|flagd|echo ENDPOINTS CONCURRENCY SECONDS [SIGNALS]"
    );
    let mode = args[1].clone();
    let endpoints: Vec<String> = args[2].split(',').map(str::to_owned).collect();
    let concurrency: usize = args[3].parse()?;
    let seconds: u64 = args[4].parse()?;
    let per_batch: u64 = args.get(5).map_or(Ok(1), |s| s.parse())?;
    let mut channels = Vec::new();
    let over_http = matches!(mode.as_str(), "http" | "ofrep");
    if !over_http {
        for e in &endpoints {
            channels.push(
                rampart::consensus::network::endpoint(e, None)?
                    .connect()
                    .await?,
            );
        }
    }
    let http_urls: Vec<String> = endpoints
        .iter()
        .map(|e| {
            let base = if e.contains("://") {
                e.clone()
            } else {
                format!("http://{e}")
            };
            let path = if mode == "ofrep" {
                "/ofrep/v1/evaluate/flags/bench"
            } else {
                "/v1/signals"
            };
            format!("{}{path}", base.trim_end_matches('/'))
        })
        .collect();
    // Keys unique to this run: a rerun against the same cluster is not a retry.
    let run = std::process::id();
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let channel = channels.get(w % channels.len().max(1)).cloned();
        let url = http_urls[w % http_urls.len()].clone();
        // A client (so a connection) per worker, as a gRPC worker has its request in flight.
        let client = reqwest::Client::builder().http1_only().build()?;
        let mode = mode.clone();
        let errors = errors.clone();
        workers.push(tokio::spawn(async move {
            let channel = || channel.clone().expect("a gRPC channel");
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let started = Instant::now();
                let ok = match mode.as_str() {
                    "ingest" => {
                        let at = rampart::node::wall_clock_ms();
                        let signals = (0..per_batch).map(|i| signal(at, i)).collect();
                        let request = pb::IngestRequest {
                            idempotency_key: format!("{run}-w{w}-{n}"),
                            signals,
                        };
                        SignalsClient::new(channel()).ingest(request).await.is_ok()
                    }
                    "http" => {
                        let at =
                            rampart::engine::signal::format_time(rampart::node::wall_clock_ms());
                        let body = (0..per_batch)
                            .map(|i| signal_line(&at, i))
                            .collect::<Vec<_>>()
                            .join("\n");
                        http_ingest(&client, &url, format!("{run}-w{w}-{n}"), body, per_batch).await
                    }
                    "etcd" => {
                        let key = format!("bench/w{w}/{n}").into_bytes();
                        etcd_put(channel(), key, vec![b'x'; 100]).await.is_ok()
                    }
                    "evaluate" => {
                        let request = pb::EvaluateRequest {
                            gate: "bench".into(),
                            unit_id: format!("user-{w}-{n}"),
                            cohort: String::new(),
                            consistency: 0,
                        };
                        GatesClient::new(channel()).evaluate(request).await.is_ok()
                    }
                    "ofrep" => {
                        let body = format!(r#"{{"context":{{"targetingKey":"user-{w}-{n}"}}}}"#);
                        ofrep_evaluate(&client, &url, body).await
                    }
                    "flagd" => {
                        let unit = prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue(format!(
                                "user-{w}-{n}"
                            ))),
                        };
                        let request = flagd::ResolveBooleanRequest {
                            flag_key: "bench".into(),
                            context: Some(prost_types::Struct {
                                fields: [("targetingKey".to_owned(), unit)].into_iter().collect(),
                            }),
                        };
                        flagd::service_client::ServiceClient::new(channel())
                            .resolve_boolean(request)
                            .await
                            .is_ok()
                    }
                    "echo" => {
                        let request = tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        };
                        tonic_health::pb::health_client::HealthClient::new(channel())
                            .check(request)
                            .await
                            .is_ok()
                    }
                    other => panic!("unknown mode {other}"),
                };
                if ok {
                    latencies
                        .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    all.sort_unstable();
    let pct = |p: f64| -> u64 {
        if all.is_empty() {
            return 0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((all.len() - 1) as f64 * p).round() as usize;
        all[i]
    };
    #[allow(clippy::cast_precision_loss)]
    let ops = all.len() as f64 / elapsed;
    println!(
        "{}",
        serde_json::json!({
            "mode": mode, "concurrency": concurrency, "signals_per_batch": per_batch, "seconds": seconds,
            "ops": all.len(), "errors": errors.load(Ordering::Relaxed), "ops_per_sec": ops.round(),
            "p50_us": pct(0.5), "p99_us": pct(0.99), "max_us": pct(1.0),
        })
    );
    Ok(())
}
