//! An in-process 3-node cluster, end to end over gRPC: a contract, signals, expansion up the
//! ladder, a breaching batch, a rollback identical on every node, and a watch stream that
//! moves to another node and resumes without gap or duplicate.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tokio_stream::StreamExt;

/// Sends one batch per 100ms with both arms at `error%` (treatment) and 1% (control).
fn produce(
    endpoint: String,
    breaching: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut client = SignalsClient::new(common::channel(&endpoint).await);
        let mut sent = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let at = common::now_ms();
            let bad = breaching.load(Ordering::SeqCst);
            let signals = vec![
                rate(
                    "fast",
                    "error_rate",
                    "mobile",
                    true,
                    at,
                    if bad { 40 } else { 2 },
                    200,
                ),
                rate("fast", "error_rate", "mobile", false, at, 2, 200),
            ];
            let request = pb::IngestRequest {
                idempotency_key: format!("p-{sent}"),
                signals,
            };
            if client.ingest(request).await.is_ok() {
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    })
}

async fn gate_state(cluster: &Cluster, i: usize) -> pb::GateState {
    let mut gates = GatesClient::new(cluster.channel(i).await);
    let request = pb::GetGateRequest {
        gate: "fast".into(),
        consistency: pb::Consistency::Linearizable as i32,
    };
    gates
        .get_gate(request)
        .await
        .expect("get gate")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_signals_expansion_rollback_and_watch_resume() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let other = (0..3)
        .find(|i| *i != follower && cluster.nodes[*i].node.id != leader)
        .expect("another follower");

    tracing::info!("--- the contract, through a follower (forwarded to the leader)");
    let mut contracts = ContractsClient::new(cluster.channel(follower).await);
    let put = contracts
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("put");
    assert_eq!(put.into_inner().contract_version, 1);

    tracing::info!("--- a watch on a follower, from the gate's beginning");
    let mut watch = GatesClient::new(cluster.channel(follower).await)
        .watch(pb::WatchRequest {
            gates: vec!["fast".into()],
            after_version: [("fast".to_owned(), 0)].into(),
        })
        .await
        .expect("watch")
        .into_inner();

    tracing::info!("--- healthy signals: the gate climbs the ladder to 100%");
    let breaching = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = produce(cluster.endpoint(other), breaching.clone(), stop.clone());
    let mut seen = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "exposure 100% in mobile",
        || async {
            let g = gate_state(&cluster, follower).await;
            (g.cohorts[0].exposure == 100.0).then_some(())
        },
    )
    .await;
    let expansions: Vec<(f64, f64)> = {
        // The node whose linearizable read saw 100% has applied every expansion.
        let applied = cluster.nodes[follower].node.state.read();
        let gate = applied.state.gates.values().next().expect("gate");
        gate.decisions
            .iter()
            .filter(|d| d.action.label() == "expand")
            .map(|d| (d.changes[0].from_exposure, d.changes[0].to_exposure))
            .collect()
    };
    assert_eq!(
        expansions,
        vec![(10.0, 50.0), (50.0, 100.0)],
        "one stage at a time"
    );

    tracing::info!("--- the first part of the watch, then it is dropped");
    while seen.last().is_none_or(|v| *v < 3) {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok");
        if let Some(pb::watch_event::Event::Decision(d)) = event.event {
            seen.push(d.version);
        }
    }
    drop(watch);

    tracing::info!("--- a breaching batch: rollback and kill switch");
    breaching.store(true, Ordering::SeqCst);
    let rolled = wait_until(
        Duration::from_secs(30),
        "rollback with the kill switch on",
        || async {
            let g = gate_state(&cluster, other).await;
            (g.kill_switch && g.cohorts[0].exposure == 0.0).then_some(g)
        },
    )
    .await;
    assert_eq!(rolled.cohorts[0].status, "rolled_back");
    stop.store(true, Ordering::SeqCst);
    assert!(producer.await.expect("producer") > 0);

    tracing::info!("--- every node holds the same decision log");
    cluster.wait_converged().await;
    let logs: Vec<Vec<rampart::state::Decision>> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.node
                .state
                .read()
                .state
                .gates
                .values()
                .next()
                .expect("gate")
                .decisions
                .clone()
        })
        .collect();
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "decision logs differ between nodes"
    );
    let rollback = logs[0]
        .iter()
        .find(|d| d.action.label() == "rollback")
        .expect("a rollback decision");
    assert!(rollback.kill_switch && !rollback.evidence.is_empty());

    tracing::info!("--- the rollback's evidence over gRPC carries every engine figure");
    let listed = GatesClient::new(cluster.channel(other).await)
        .list_decisions(pb::ListDecisionsRequest {
            gate: "fast".into(),
            ..Default::default()
        })
        .await
        .expect("list decisions")
        .into_inner();
    let served = listed
        .decisions
        .iter()
        .find(|d| d.version == rollback.version)
        .expect("the rollback over gRPC");
    let (engine, wire) = (&rollback.evidence[0], &served.evidence[0]);
    assert!(
        engine.figures.ceiling_e_value.is_some(),
        "a sequential ceiling kill has an e-value"
    );
    assert_eq!(wire.ceiling_p_value, engine.figures.ceiling_p_value);
    assert_eq!(wire.ceiling_e_value, engine.figures.ceiling_e_value);
    assert_eq!(
        wire.ceiling_span_windows,
        engine.figures.ceiling_span_windows
    );
    assert_eq!(wire.ceiling_alpha, engine.figures.ceiling_alpha);
    assert_eq!(wire.srm_p_value, engine.figures.srm_p_value);
    assert_eq!(wire.alpha, engine.figures.alpha);
    assert_eq!(
        wire.low_confidence_share,
        engine.figures.low_confidence_share
    );
    assert_eq!(
        wire.treatment_interval.as_ref().map(|i| (i.low, i.high)),
        engine.figures.treatment_interval
    );

    tracing::info!("--- everyone gets the fallback, on any node");
    let mut gates = GatesClient::new(cluster.channel(other).await);
    for unit in ["u1", "u2", "u3", "u4"] {
        let r = gates
            .evaluate(pb::EvaluateRequest {
                gate: "fast".into(),
                unit_id: unit.into(),
                cohort: String::new(),
                consistency: 0,
            })
            .await
            .expect("evaluate")
            .into_inner();
        assert_eq!((r.variant.as_str(), r.treatment), ("old", false));
    }

    tracing::info!("--- the watch resumes on another node from the last version seen");
    let last = *seen.last().expect("seen");
    let final_version = logs[0].last().expect("decisions").version;
    let mut resumed = GatesClient::new(cluster.channel(other).await)
        .watch(pb::WatchRequest {
            gates: vec!["fast".into()],
            after_version: [("fast".to_owned(), last)].into(),
        })
        .await
        .expect("watch")
        .into_inner();
    while seen.last().is_none_or(|v| *v < final_version) {
        let event = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok");
        match event.event {
            Some(pb::watch_event::Event::Decision(d)) => seen.push(d.version),
            other => panic!("a resumed watch sends decisions only, got {other:?}"),
        }
    }
    let expected: Vec<u64> = (1..=*seen.last().expect("seen")).collect();
    assert_eq!(
        seen, expected,
        "every version exactly once, in order, across the reconnect"
    );
    cluster.stop().await;
}
