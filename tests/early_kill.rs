//! A kill rule is checked on every committed batch: a flash regression rolls the cohort back
//! before its window closes, as the window's one decision, seen by a watcher on another node
//! (early kills are on by default). The window keeps taking its on-time signals, which its
//! aggregate (`Gates/ListWindows`) holds beyond the decision's evidence.

mod common;

use std::time::{Duration, Instant};

use common::{rate, wait_until, Cluster};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tokio_stream::StreamExt;

const WINDOW_MS: i64 = 6_000;

const CONTRACT: &str = r#"
gate: flash
variants: { treatment: new, fallback: old }
ladder: [10, 50, 100]
stage_min_duration: 6s
window: 6s
grace: 1s
cohorts: [mobile]
metrics:
  - name: checkout_error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 500
    kill: { above: 0.02 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_breaching_batch_rolls_back_before_its_window_closes() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let mut contracts = ContractsClient::new(cluster.channel(leader as usize - 1).await);
    contracts
        .put_contract(pb::PutContractRequest {
            yaml: CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("put");
    let mut watch = GatesClient::new(cluster.channel(follower).await)
        .watch(pb::WatchRequest {
            gates: vec!["flash".into()],
            after_version: Default::default(),
        })
        .await
        .expect("watch")
        .into_inner();

    // Wait for the start of a window the gate counts (its first full one, or later) with
    // most of it ahead, so the window cannot close during the check.
    let mut signals = SignalsClient::new(cluster.channel(follower).await);
    let window_start = wait_until(
        Duration::from_secs(20),
        "the beginning of a counted window",
        || {
            let mut signals = signals.clone();
            async move {
                let now = common::now_ms();
                let start = now - now.rem_euclid(WINDOW_MS);
                if now - start > 1_000 {
                    return None;
                }
                let probe = pb::IngestRequest {
                    idempotency_key: format!("probe-{now}"),
                    signals: vec![rate(
                        "flash",
                        "checkout_error_rate",
                        "mobile",
                        false,
                        now,
                        0,
                        1,
                    )],
                };
                let accepted = signals.ingest(probe).await.ok()?.into_inner().accepted;
                (accepted == 1).then_some(start)
            }
        },
    )
    .await;

    // Checkout errors at 6% against a 2% ceiling, in one batch.
    let at = common::now_ms();
    let batch = pb::IngestRequest {
        idempotency_key: "flash".into(),
        signals: vec![
            rate(
                "flash",
                "checkout_error_rate",
                "mobile",
                true,
                at,
                120,
                2000,
            ),
            rate("flash", "checkout_error_rate", "mobile", false, at, 8, 2000),
        ],
    };
    let acked = signals.ingest(batch).await.expect("ingest").into_inner();
    assert_eq!(acked.accepted, 2, "{acked:?}");
    let ack = Instant::now();

    let rollback = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = watch.next().await {
            if let Some(pb::watch_event::Event::Decision(d)) = event.expect("watch event").event {
                if d.action == "rollback" {
                    return d;
                }
            }
        }
        panic!("watch ended without a rollback");
    })
    .await
    .expect("a rollback within 10 s");
    let latency = ack.elapsed();
    eprintln!("breaching batch ack -> rollback at a watcher on a follower: {latency:?}");

    // The window's one decision, made before the window closed.
    let start = rollback
        .window_start
        .as_ref()
        .map(rampart::api::convert::millis)
        .expect("window");
    assert_eq!(start, window_start, "{rollback:?}");
    let decided_at = rollback
        .at
        .as_ref()
        .map(rampart::api::convert::millis)
        .expect("at");
    assert!(
        decided_at < window_start + WINDOW_MS,
        "decided at {decided_at}, window closes at {}",
        window_start + WINDOW_MS
    );
    assert!(rollback.kill_switch);
    assert!(
        rollback.reason.contains("before the window closed"),
        "{}",
        rollback.reason
    );

    // Later on-time signals of that window are still taken (nothing is dropped), and the
    // window keeps its one decision.
    let late = pb::IngestRequest {
        idempotency_key: "after".into(),
        signals: vec![rate(
            "flash",
            "checkout_error_rate",
            "mobile",
            true,
            common::now_ms().min(window_start + WINDOW_MS - 1),
            1,
            100,
        )],
    };
    let taken = signals.ingest(late).await.expect("ingest").into_inner();
    assert_eq!(taken.accepted, 1, "{taken:?}");
    let evidence = rollback
        .evidence
        .iter()
        .find(|e| e.metric == "checkout_error_rate")
        .expect("evidence");
    assert_eq!(evidence.window_samples_treatment, 2000, "{evidence:?}");
    let windows = GatesClient::new(cluster.channel(follower).await)
        .list_windows(pb::ListWindowsRequest {
            gate: "flash".into(),
            cohort: "mobile".into(),
            since: rollback.window_start,
            ..pb::ListWindowsRequest::default()
        })
        .await
        .expect("list windows")
        .into_inner();
    let window = windows
        .windows
        .iter()
        .find(|w| w.window_start == rollback.window_start)
        .expect("the decided window");
    assert_eq!(window.samples_treatment, 2100, "{window:?}");
    assert!(window.judged, "{window:?}");
    cluster.stop().await;
}
