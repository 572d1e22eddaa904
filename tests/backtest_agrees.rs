//! The backtest and the live cluster agree on the same trace: signals pushed to a 3-node
//! cluster window by window, then the same lines (with the time each reached the cluster as
//! `received`) replayed by `engine::backtest`, give the same verdict for every cohort and
//! window.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{rate, wait_until, Cluster};
use rampart::engine::backtest::{backtest_arrivals, parse_arrivals};
use rampart::engine::signal::{format_time, SignalLine};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;

const WINDOW_MS: i64 = 2_000;
const WINDOWS: i64 = 8;

const CONTRACT: &str = r#"
gate: agree
variants: { treatment: new, fallback: old }
ladder: [10, 25, 50, 100]
stage_min_duration: 2s
window: 2s
grace: 500ms
cohorts: [mobile, desktop]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    min_samples: 200
    stop: { relative: 50% }
    kill: { above: 0.08 }
"#;

fn line(cohort: &str, treatment: bool, at: i64, received: i64, events: u64) -> SignalLine {
    SignalLine {
        gate: "agree".into(),
        metric: "error_rate".into(),
        cohort: Some(cohort.into()),
        arm: if treatment { "treatment" } else { "control" }.into(),
        at: format_time(at),
        received: Some(format_time(received)),
        events: Some(events),
        trials: Some(1000),
        ..SignalLine::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backtest_decides_what_the_cluster_decided() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    ContractsClient::new(cluster.channel(follower).await)
        .put_contract(pb::PutContractRequest {
            yaml: CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("put");
    let mut signals = SignalsClient::new(cluster.channel(follower).await);

    // Early in the gate's first counted window.
    let first = wait_until(Duration::from_secs(20), "a counted window", || {
        let mut signals = signals.clone();
        async move {
            let now = common::now_ms();
            let start = now - now.rem_euclid(WINDOW_MS);
            if now - start > 300 {
                return None;
            }
            let probe = pb::IngestRequest {
                idempotency_key: format!("probe-{now}"),
                signals: vec![rate("agree", "error_rate", "desktop", false, now, 0, 1)],
            };
            let r = signals.ingest(probe).await.ok()?.into_inner();
            (r.accepted == 1).then_some((start, now))
        }
    })
    .await;
    let (first_window, probe_at) = first;
    let mut lines = vec![line("desktop", false, probe_at, probe_at, 0)];
    lines[0].trials = Some(1);

    // One batch per window and cohort arm; mobile's treatment breaks from window 4 on.
    for k in 0..WINDOWS {
        let target = first_window + k * WINDOW_MS + 600;
        let wait = target - common::now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let at = common::now_ms();
        let mut batch = Vec::new();
        for cohort in ["mobile", "desktop"] {
            let bad = cohort == "mobile" && k >= 4;
            batch.push((cohort, true, if bad { 150 } else { 20 }));
            batch.push((cohort, false, 20));
        }
        let request = pb::IngestRequest {
            idempotency_key: format!("w{k}"),
            signals: batch
                .iter()
                .map(|(c, t, e)| rate("agree", "error_rate", c, *t, at, *e, 1000))
                .collect(),
        };
        let r = signals.ingest(request).await.expect("ingest").into_inner();
        let received = common::now_ms();
        assert_eq!(r.accepted, 4, "window {k}: {r:?}");
        for (c, t, e) in batch {
            lines.push(line(c, t, at, received, e));
        }
    }
    let last_window = first_window + (WINDOWS - 1) * WINDOW_MS;

    // The cluster's decisions for those windows, once the last one is judged for both.
    let gates = GatesClient::new(cluster.channel(follower).await);
    let live: BTreeMap<(String, i64), String> = wait_until(
        Duration::from_secs(20),
        "every window judged for both cohorts",
        || {
            let mut gates = gates.clone();
            async move {
                let list = gates
                    .list_decisions(pb::ListDecisionsRequest {
                        gate: "agree".into(),
                        consistency: pb::Consistency::Linearizable as i32,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                let mut out = BTreeMap::new();
                for d in list.decisions {
                    let Some(start) = d.window_start.as_ref().map(rampart::api::convert::millis)
                    else {
                        continue;
                    };
                    if (first_window..=last_window).contains(&start) {
                        out.insert((d.cohort.clone(), start), d.action.clone());
                    }
                }
                (out.len() == 2 * WINDOWS as usize).then_some(out)
            }
        },
    )
    .await;

    let text: Vec<String> = lines
        .iter()
        .map(|l| serde_json::to_string(l).expect("line"))
        .collect();
    let (arrivals, errors) = parse_arrivals(&text.join("\n"));
    assert!(errors.is_empty(), "{errors:?}");
    let contract = rampart::engine::Contract::from_yaml(CONTRACT).expect("contract");
    let report = backtest_arrivals(&contract, &arrivals);
    assert_eq!(report.skipped.total(), 0, "{:?}", report.skipped);
    let replayed: BTreeMap<(String, i64), String> = report
        .decisions
        .iter()
        .filter(|d| (first_window..=last_window).contains(&d.window.start))
        .map(|d| {
            (
                (d.cohort.to_string(), d.window.start),
                d.verdict.as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(replayed, live, "backtest (left) vs cluster (right)");
    // The trace is not trivial: mobile was rolled back, desktop climbed.
    assert!(live.values().any(|a| a == "rollback"), "{live:?}");
    assert!(live.values().any(|a| a == "expand"), "{live:?}");
    cluster.stop().await;
}
