//! The client-streaming ingest: many batches on one stream, each counted once, one summary.

mod common;

use common::{rate, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_batches_is_counted_once_per_key() {
    let cluster = Cluster::start(1).await;
    let channel = cluster.channel(0).await;
    ContractsClient::new(channel.clone())
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");
    let now = common::wait_until(
        std::time::Duration::from_secs(5),
        "the first window",
        || async {
            let first = cluster.nodes[0]
                .node
                .state
                .read()
                .state
                .gates
                .values()
                .next()?
                .first_window;
            let now = common::now_ms();
            (now >= first).then_some(now)
        },
    )
    .await;
    let batch = |key: &str, n: usize| pb::IngestRequest {
        idempotency_key: key.into(),
        signals: vec![rate("fast", "error_rate", "mobile", true, now, 1, 100); n],
    };
    let mut bad = batch("b3", 2);
    bad.signals[1].metric = "nope".into();
    // b1 appears twice: the second is a retry and counts nothing more.
    let batches = vec![batch("b1", 3), batch("b2", 2), batch("b1", 3), bad];
    let summary = SignalsClient::new(channel.clone())
        .ingest_stream(tokio_stream::iter(batches))
        .await
        .expect("stream")
        .into_inner();
    assert_eq!(
        (
            summary.batches,
            summary.accepted,
            summary.rejected,
            summary.duplicates
        ),
        (4, 9, 1, 1)
    );
    assert!(summary.results[2].duplicate);
    assert_eq!(summary.results[3].rejected[0].field, "signals[1].metric");
    let gate = GatesClient::new(channel)
        .get_gate(pb::GetGateRequest {
            gate: "fast".into(),
            consistency: 0,
        })
        .await
        .expect("gate")
        .into_inner();
    assert_eq!(
        gate.signals_accepted, 6,
        "3 + 2 + 1: the retried batch once"
    );
    cluster.stop().await;
}
