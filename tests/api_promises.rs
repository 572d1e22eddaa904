//! What `rampart.v1` promises, checked as an independent client would: a duplicate ingest
//! answers the stored answer (the original log index), Watch refuses an unknown gate and a
//! resume point beyond the gate's version as GetGate would, and gRPC health answers for every
//! service the node serves; a put with `if_changed` writes nothing for an equal contract.

mod common;

use std::time::Duration;

use common::{now_ms, rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_watch_and_health_keep_the_proto_promises() {
    let cluster = Cluster::start(3).await;
    ContractsClient::new(cluster.channel(0).await)
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("put contract");

    // `if_changed`: an equal contract (formatting and comments aside) is not written again,
    // through any node; a changed one, or a put without it, is a new contract version.
    let steady = FAST_CONTRACT
        .replace("gate: fast", "gate: steady")
        .replace("window: 1s", "window: 1h");
    let put = |node: usize, yaml: String, if_changed: bool| {
        let cluster = &cluster;
        async move {
            ContractsClient::new(cluster.channel(node).await)
                .put_contract(pb::PutContractRequest { yaml, if_changed })
                .await
                .expect("put steady")
                .into_inner()
        }
    };
    let first = put(0, steady.clone(), true).await;
    assert!(!first.unchanged, "{first:?}");
    let reformatted = format!(
        "# the same, written differently\n{}",
        steady.replace("{ above: 0.05 }", "{above: 5.0e-2}")
    );
    let same = put(1, reformatted, true).await;
    assert!(same.unchanged, "{same:?}");
    assert_eq!(same.contract_version, first.contract_version);
    assert_eq!(same.gate_version, first.gate_version);
    let changed = put(
        2,
        steady.replace("min_samples: 100", "min_samples: 200"),
        true,
    )
    .await;
    assert!(!changed.unchanged, "{changed:?}");
    assert_eq!(changed.contract_version, first.contract_version + 1);
    let forced = put(
        0,
        steady.replace("min_samples: 100", "min_samples: 200"),
        false,
    )
    .await;
    assert!(!forced.unchanged, "{forced:?}");
    assert_eq!(forced.contract_version, changed.contract_version + 1);

    // A retried batch: the stored answer, with the log index that committed it.
    let mut signals = SignalsClient::new(cluster.channel(1).await);
    let batch = || pb::IngestRequest {
        idempotency_key: "retried".into(),
        signals: vec![rate("fast", "error_rate", "mobile", true, now_ms(), 1, 100)],
    };
    let first = signals.ingest(batch()).await.expect("ingest").into_inner();
    assert!(!first.duplicate && first.log_index > 0, "{first:?}");
    let again = signals.ingest(batch()).await.expect("again").into_inner();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.log_index, first.log_index, "the stored answer");
    assert_eq!(again.accepted, first.accepted);

    // Watch: an unknown gate, and a version the gate has not reached, are refused.
    let mut gates = GatesClient::new(cluster.channel(2).await);
    let unknown = gates
        .watch(pb::WatchRequest {
            gates: vec!["nope".into()],
            after_version: Default::default(),
        })
        .await
        .expect_err("unknown gate");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let beyond = gates
        .watch(pb::WatchRequest {
            gates: vec!["fast".into()],
            after_version: [("fast".to_owned(), 1_000_000)].into(),
        })
        .await
        .expect_err("beyond the version");
    assert_eq!(beyond.code(), Code::OutOfRange, "{beyond:?}");
    assert_eq!(
        beyond
            .metadata()
            .get("rampart-field")
            .and_then(|v| v.to_str().ok()),
        Some("after_version[fast]")
    );
    // The gate itself, from version 0, streams as before.
    let mut stream = gates
        .watch(pb::WatchRequest {
            gates: vec!["fast".into()],
            after_version: [("fast".to_owned(), 0)].into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let event = stream.message().await.expect("event").expect("one event");
    assert!(matches!(
        event.event,
        Some(pb::watch_event::Event::Decision(ref d)) if d.version == 1
    ));

    // Health: every service name the node serves, and NOT_FOUND for others.
    let mut health = tonic_health::pb::health_client::HealthClient::new(cluster.channel(0).await);
    for service in rampart::api::HEALTH_SERVICES {
        let health = &health;
        wait_until(Duration::from_secs(20), "SERVING", || async move {
            let reply = health
                .clone()
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("health of {service:?}: {e:?}"))
                .into_inner();
            let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
            (reply.status == serving).then_some(())
        })
        .await;
    }
    let other = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "rampart.v1.Nope".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(other.code(), Code::NotFound);
    cluster.stop().await;
}
