//! Contract webhooks against a local receiver: a delivery is signed (Standard Webhooks),
//! retried while the receiver fails, recorded on every node once taken, and a new leader
//! resumes a delivery the old one could not make, with the same delivery id.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::{now_ms, rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::ids::GateKey;
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::signals_client::SignalsClient;
use rampart::state::{Command, Override, OverrideKind};
use serde_json::Value;

const SECRET: &str = "s3cret";

/// One POST the receiver got, and whether it answered 2xx.
#[derive(Debug, Clone)]
struct Got {
    taken: bool,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Default)]
struct Receiver {
    /// Answer 503 to this many more requests.
    fail_next: u32,
    /// Answer 503 to every request while set.
    down: bool,
    got: Vec<Got>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn hook(State(rx): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut rx = rx.lock().expect("receiver");
    let fail = rx.down || rx.fail_next > 0;
    rx.fail_next = rx.fail_next.saturating_sub(1);
    rx.got.push(Got {
        taken: !fail,
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    if fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Serves the receiver on a free loopback port; its URL.
async fn receiver(shared: Shared) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn fast_retries(config: &mut rampart::node::NodeConfig, _: &std::path::Path) {
    config.notify_retry_ms = 50;
    config.notify_retry_max_ms = 200;
    config.notify_timeout_ms = 2_000;
}

async fn put_contract(cluster: &Cluster, url: &str, on: &str) {
    let yaml =
        format!("{FAST_CONTRACT}notify:\n  - url: {url}\n    secret: {SECRET}\n    on: {on}\n");
    ContractsClient::new(cluster.channel(0).await)
        .put_contract(pb::PutContractRequest {
            yaml,
            ..Default::default()
        })
        .await
        .expect("put contract");
}

/// Checks the Standard Webhooks signature of a delivery with the contract's secret.
fn signed_right(got: &Got) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let Some(tag) = got.signature.strip_prefix("v1,") else {
        return false;
    };
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(tag) else {
        return false;
    };
    let signed = format!("{}.{}.{}", got.id, got.timestamp, got.body);
    ring::hmac::verify(&key, signed.as_bytes(), &tag).is_ok()
}

/// The cursor of `url` on every node, once they all hold `version`.
async fn recorded_everywhere(cluster: &Cluster, url: &str, version: u64) {
    let gate = GateKey::try_from("fast").expect("gate");
    wait_until(
        Duration::from_secs(20),
        "the delivery on every node",
        || async {
            cluster
                .nodes
                .iter()
                .all(|n| n.node.state.read().state.gates[&gate].notified.get(url) == Some(&version))
                .then_some(())
        },
    )
    .await;
}

fn leader_index(cluster: &Cluster, leader: u64) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| n.node.id == leader)
        .expect("leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_is_signed_retried_and_recorded_on_every_node() {
    let shared = Shared::default();
    shared.lock().expect("rx").fail_next = 2;
    let url = receiver(shared.clone()).await;
    let cluster = Cluster::start_with(3, fast_retries).await;
    put_contract(&cluster, &url, "[kill]").await;
    let leader = cluster.wait_for_leader().await;
    let written = cluster.nodes[leader_index(&cluster, leader)]
        .node
        .write(Command::Override(Override {
            gate: GateKey::try_from("fast").expect("gate"),
            cohort: None,
            kind: OverrideKind::Kill,
            actor: "test".into(),
            reason: "drill".into(),
        }))
        .await
        .expect("kill");
    let rampart::state::Response::Overridden(kill) = written.response else {
        panic!("{:?}", written.response);
    };
    let got = wait_until(Duration::from_secs(20), "a delivery taken", || async {
        let rx = shared.lock().expect("rx");
        rx.got.iter().any(|g| g.taken).then(|| rx.got.clone())
    })
    .await;
    // Two refused attempts, then the one taken; the contract decision before was not wanted.
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|g| g.taken).count(), 1);
    let id = format!("fast:{}", kill.version);
    for attempt in &got {
        assert_eq!(attempt.id, id);
        assert!(signed_right(attempt), "bad signature: {attempt:?}");
        let at: i64 = attempt.timestamp.parse().expect("unix seconds");
        assert!((at - now_ms() / 1000).abs() < 60, "timestamp {at}");
    }
    let body: Value = serde_json::from_str(&got[2].body).expect("JSON body");
    assert_eq!(body["delivery"], id.as_str());
    assert_eq!(body["event"], "kill");
    assert_eq!(body["gate"], "fast");
    assert_eq!(body["version"], kill.version);
    assert_eq!(body["kill_switch"], true);
    assert_eq!(body["decided_by"], "operator:test");
    let text = body["text"].as_str().expect("Slack text");
    assert!(
        text.contains("kill switch on") && text.contains(&id),
        "{text}"
    );
    recorded_everywhere(&cluster, &url, kill.version).await;
    // A signature over another body does not verify (the check can fail).
    let mut forged = got[2].clone();
    forged.body = forged.body.replace("kill", "hold");
    assert!(!signed_right(&forged));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_resumes_a_delivery_the_old_one_could_not_make() {
    let shared = Shared::default();
    shared.lock().expect("rx").down = true;
    let url = receiver(shared.clone()).await;
    let mut cluster = Cluster::start_with(3, fast_retries).await;
    put_contract(&cluster, &url, "[rollback]").await;
    // A breaching treatment until the engine rolls the cohort back (kill switch on).
    let gate = GateKey::try_from("fast").expect("gate");
    let signals = SignalsClient::new(cluster.channel(1).await);
    let mut n = 0;
    wait_until(Duration::from_secs(30), "the engine's rollback", || {
        n += 1;
        let batch = pb::IngestRequest {
            idempotency_key: format!("breach-{n}"),
            signals: vec![
                rate("fast", "error_rate", "mobile", true, now_ms(), 60, 200),
                rate("fast", "error_rate", "mobile", false, now_ms(), 1, 200),
            ],
        };
        let mut client = signals.clone();
        let cluster = &cluster;
        let gate = &gate;
        async move {
            client.ingest(batch).await.expect("ingest");
            let s = cluster.nodes[0].node.state.read();
            s.state.gates[gate].kill_switch.then_some(())
        }
    })
    .await;
    drop(signals);
    let rollback = {
        let s = cluster.nodes[0].node.state.read();
        let g = &s.state.gates[&gate];
        g.decisions
            .iter()
            .find(|d| d.kill_switch && !d.kill_switch_before)
            .expect("the rollback")
            .clone()
    };
    let id = format!("fast:{}", rollback.version);
    wait_until(
        Duration::from_secs(20),
        "attempts the receiver refused",
        || async {
            let rx = shared.lock().expect("rx");
            (rx.got.iter().filter(|g| g.id == id).count() >= 2).then_some(())
        },
    )
    .await;
    // The leader dies with the delivery not made; the receiver comes back.
    let leader = cluster.wait_for_leader().await;
    let old = cluster.nodes.remove(leader_index(&cluster, leader));
    old.stop().await.expect("stop the leader");
    shared.lock().expect("rx").down = false;
    let taken = wait_until(
        Duration::from_secs(30),
        "the new leader's delivery",
        || async {
            let rx = shared.lock().expect("rx");
            rx.got.iter().find(|g| g.taken).cloned()
        },
    )
    .await;
    assert_eq!(taken.id, id, "the same delivery id after the leader change");
    assert!(signed_right(&taken));
    let body: Value = serde_json::from_str(&taken.body).expect("JSON body");
    assert_eq!(body["event"], "rollback");
    assert!(
        body["decided_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("leader:")),
        "{body}"
    );
    recorded_everywhere(&cluster, &url, rollback.version).await;
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    cluster.stop().await;
}
