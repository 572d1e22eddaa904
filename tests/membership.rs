//! Membership: a new node joins as a learner, catches up by snapshot (the log behind the
//! snapshot is purged), is promoted to voter, and is removed; every call is idempotent.

mod common;

use std::time::Duration;

use common::{rate, test_config, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::signals_client::SignalsClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_node_joins_by_snapshot_is_promoted_and_removed() {
    let cluster = Cluster::start(3).await;
    let mut contracts = ContractsClient::new(cluster.channel(0).await);
    contracts
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
        })
        .await
        .expect("contract");

    tracing::info!("--- enough entries for several snapshots and a purged log");
    let mut signals = SignalsClient::new(cluster.channel(1).await);
    for i in 0..700 {
        let at = common::now_ms();
        let request = pb::IngestRequest {
            idempotency_key: format!("k{i}"),
            signals: vec![rate("fast", "error_rate", "mobile", false, at, 1, 100)],
        };
        signals.ingest(request).await.expect("ingest");
    }
    let purged = wait_until(
        Duration::from_secs(20),
        "a snapshot and a purged log on the leader",
        || async {
            let leader = cluster.wait_for_leader().await;
            let node = &cluster.nodes.iter().find(|n| n.node.id == leader)?.node;
            let m = node.raft.metrics().borrow().clone();
            let purged = m.purged.map(|l| l.index)?;
            (m.snapshot.is_some() && purged > 0).then_some(purged)
        },
    )
    .await;

    tracing::info!("--- node 4 joins as a learner, twice (idempotent)");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let fourth = rampart::server::start(test_config(4, dir.path()))
        .await
        .expect("node 4");
    let mut admin = AdminClient::new(cluster.channel(2).await);
    let member = pb::Member {
        id: 4,
        addr: fourth.addr.to_string(),
    };
    for _ in 0..2 {
        let status = admin
            .add_learner(pb::AddLearnerRequest {
                member: Some(member.clone()),
            })
            .await
            .expect("add learner")
            .into_inner();
        assert_eq!(status.learners, vec![4]);
    }
    // Entries up to `purged` exist nowhere but in snapshots: node 4 can only have them that way.
    wait_until(
        Duration::from_secs(20),
        "node 4 installed a snapshot past the purged log",
        || async {
            let m = fourth.node.raft.metrics().borrow().clone();
            m.snapshot.is_some_and(|s| s.index >= purged).then_some(())
        },
    )
    .await;

    tracing::info!("--- promoted to voter, twice (idempotent)");
    for _ in 0..2 {
        let status = admin
            .promote(pb::PromoteRequest { id: 4 })
            .await
            .expect("promote")
            .into_inner();
        assert_eq!(status.voters, vec![1, 2, 3, 4]);
        assert!(!status.joint);
    }
    let expected = cluster.nodes[0]
        .node
        .state
        .read()
        .state
        .gates
        .values()
        .next()
        .expect("gate")
        .signals_accepted;
    wait_until(
        Duration::from_secs(20),
        "node 4 holds the same state",
        || async {
            let applied = fourth.node.state.read();
            let gate = applied.state.gates.values().next()?;
            (gate.signals_accepted == expected).then_some(())
        },
    )
    .await;
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.nodes.len(), 4);
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.reachable && n.applied_index > 0),
        "{status:?}"
    );

    tracing::info!("--- removed, twice (idempotent)");
    for _ in 0..2 {
        let status = admin
            .remove(pb::RemoveRequest { id: 4 })
            .await
            .expect("remove")
            .into_inner();
        assert_eq!(status.voters, vec![1, 2, 3]);
        assert!(status.learners.is_empty());
    }
    let refused = admin
        .promote(pb::PromoteRequest { id: 9 })
        .await
        .expect_err("not a member");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("learner"), "{refused:?}");
    fourth.stop().await.expect("stop 4");
    cluster.stop().await;
}
