//! Membership: a new node joins as a learner, catches up by snapshot (the log behind the
//! snapshot is purged), is promoted to voter, and is removed; every call is idempotent. A
//! learner nothing answers for is not promoted (it stays a learner), nor one more than
//! `promote_max_lag` behind the commit index; a change that would leave no reachable quorum
//! is refused, and status shows every node's lag from any node.

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
            ..Default::default()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_does_not_answer_is_not_promoted_and_quorum_is_kept() {
    let cluster = Cluster::start_with(3, |c, _| c.promote_timeout_ms = 1500).await;
    let mut admin = AdminClient::new(cluster.channel(0).await);
    // A free port: the listener that found it is dropped at once, so nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .to_string();

    tracing::info!("--- cluster add 5 <nothing listening>: added as a learner, not promoted");
    admin
        .add_learner(pb::AddLearnerRequest {
            member: Some(pb::Member {
                id: 5,
                addr: addr.clone(),
            }),
        })
        .await
        .expect("a learner may be added");
    let started = std::time::Instant::now();
    let refused = admin
        .promote(pb::PromoteRequest { id: 5 })
        .await
        .expect_err("a node that never answered is not promoted");
    assert!(started.elapsed() >= Duration::from_millis(1500), "waited");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains(&format!("node 5 at {addr} did not answer within"))
            && refused.message().contains("stays a learner"),
        "{refused:?}"
    );
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.voters, vec![1, 2, 3]);
    assert_eq!(status.learners, vec![5]);
    let five = status.nodes.iter().find(|n| n.id == 5).expect("node 5");
    assert!(!five.reachable && five.matched_index.is_none(), "{five:?}");
    admin
        .remove(pb::RemoveRequest { id: 5 })
        .await
        .expect("remove the learner");

    tracing::info!("--- every voter's lag, as the leader sees it, from any node");
    let status = wait_until(Duration::from_secs(10), "lags known and small", || {
        let mut admin = admin.clone();
        async move {
            let s = admin.status(pb::StatusRequest {}).await.ok()?.into_inner();
            s.nodes
                .iter()
                .all(|n| n.lag.is_some_and(|l| l <= 2))
                .then_some(s)
        }
    })
    .await;
    assert_eq!(status.nodes.len(), 3, "{status:?}");

    tracing::info!("--- with one follower down, removing the other would leave no quorum");
    let leader = cluster.wait_for_leader().await;
    let mut nodes = cluster.nodes;
    let down = nodes
        .iter()
        .position(|n| n.node.id != leader)
        .expect("a follower");
    let down = nodes.remove(down);
    let down_id = down.node.id;
    down.stop().await.expect("stop a follower");
    let other = nodes
        .iter()
        .find(|n| n.node.id != leader)
        .expect("the other follower")
        .node
        .id;
    let mut admin = AdminClient::new(common::channel(&nodes[0].endpoint()).await);
    let refused = admin
        .remove(pb::RemoveRequest { id: other })
        .await
        .expect_err("no quorum after the change");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains(&format!("removing node {other}"))
            && refused.message().contains("quorum"),
        "{refused:?}"
    );
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.voters.len(), 3, "nothing changed: {status:?}");
    assert!(status.voters.contains(&down_id));
    for n in nodes {
        n.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_behind_the_commit_index_is_not_promoted() {
    let cluster = Cluster::start_with(3, |c, _| c.promote_timeout_ms = 500).await;
    let mut contracts = ContractsClient::new(cluster.channel(0).await);
    contracts
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let fourth = rampart::server::start(test_config(4, dir.path()))
        .await
        .expect("node 4");
    let mut admin = AdminClient::new(cluster.channel(1).await);
    admin
        .add_learner(pb::AddLearnerRequest {
            member: Some(pb::Member {
                id: 4,
                addr: fourth.addr.to_string(),
            }),
        })
        .await
        .expect("add learner");
    let held = wait_until(Duration::from_secs(20), "node 4 replicated", || async {
        let leader = cluster.wait_for_leader().await;
        let node = &cluster.nodes.iter().find(|n| n.node.id == leader)?.node;
        let m = node.raft.metrics().borrow().clone();
        let matched = m.replication.as_ref()?.get(&4).copied().flatten()?.index;
        (Some(matched) == m.last_log_index).then_some(matched)
    })
    .await;

    tracing::info!(
        "--- node 4 stops; the voters commit 20 more entries (more than the lag allowed)"
    );
    fourth.stop().await.expect("stop 4");
    let mut signals = SignalsClient::new(cluster.channel(0).await);
    for i in 0..20 {
        let request = pb::IngestRequest {
            idempotency_key: format!("behind-{i}"),
            signals: vec![rate(
                "fast",
                "error_rate",
                "mobile",
                false,
                common::now_ms(),
                1,
                100,
            )],
        };
        signals.ingest(request).await.expect("ingest");
    }
    let refused = admin
        .promote(pb::PromoteRequest { id: 4 })
        .await
        .expect_err("a learner 20 entries behind is not promoted");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let message = refused.message();
    assert!(
        message.contains("node 4")
            && message.contains("did not catch up within")
            && message.contains("at most 8 behind allowed")
            && message.contains("stays a learner"),
        "{message}"
    );
    // "... holds the log up to index M, the leader had committed C ...": M is at least what
    // node 4 had when it stopped (ticks may have reached it since), C at least 20 beyond.
    let number_after = |label: &str| -> u64 {
        let rest = &message[message.find(label).expect(label) + label.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("an index")
    };
    let matched = number_after("holds the log up to index ");
    let committed = number_after("the leader had committed ");
    assert!(matched >= held && committed >= held + 20, "{message}");
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.voters, vec![1, 2, 3]);
    assert_eq!(status.learners, vec![4]);
    cluster.stop().await;
}
