//! Access control on a 3-node cluster with an access file: each role can do what it may and
//! nothing above it, unknown or missing tokens are refused, nodes replicate and forward with
//! the cluster token, and an override records the token it was made with.

mod common;

use common::{rate, Cluster, FAST_CONTRACT};
use rampart::auth::Bearer;
use rampart::proto::internal::raft_internal_client::RaftInternalClient;
use rampart::proto::internal::Empty;
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

const CLUSTER_TOKEN: &str = "cluster-0123456789abcdef0123456789abcdef";
const READER: &str = "reader-0123456789abcdef0123456789abcdef";
const INGESTER: &str = "ingester-0123456789abcdef0123456789abcdef";
const OPERATOR: &str = "operator-0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef0123456789abcdef";

fn access_file() -> String {
    let mut text = format!("cluster_token = \"{CLUSTER_TOKEN}\"\n");
    for (name, role, token) in [
        ("dashboard", "reader", READER),
        ("pipeline", "ingester", INGESTER),
        ("deployer", "operator", OPERATOR),
        ("sre", "admin", ADMIN),
    ] {
        text.push_str(&format!(
            "[[tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken = \"{token}\"\n"
        ));
    }
    text
}

/// Writes the access file into the cluster's directory and points the node at it.
fn with_access(config: &mut rampart::node::NodeConfig, dir: &std::path::Path) {
    let path = dir.join("access.toml");
    std::fs::write(&path, access_file()).expect("write access file");
    config.access = Some(path);
}

type Conn = InterceptedService<Channel, Bearer>;

fn with(channel: &Channel, token: Option<&str>) -> Conn {
    InterceptedService::new(channel.clone(), Bearer::new(token).expect("token"))
}

fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, mentions: &str) {
    let status = result.expect_err("should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(mentions),
        "{:?} should mention {mentions:?}",
        status.message()
    );
}

fn get(gate: &str) -> pb::GetGateRequest {
    pb::GetGateRequest {
        gate: gate.into(),
        consistency: pb::Consistency::Linearizable as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_what_it_may_and_nothing_more() {
    let cluster = Cluster::start_with(3, with_access).await;
    // The cluster elected a leader, so votes and heartbeats carry the cluster token. Talk to
    // a follower so that every write is forwarded to the leader, with the cluster token too.
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let channel = cluster.channel(follower).await;

    // No token, an unknown token, the cluster token: not a client.
    for token in [
        None,
        Some("nobody-0123456789abcdef0123456789abcdef"),
        Some(CLUSTER_TOKEN),
    ] {
        let mut gates = GatesClient::new(with(&channel, token));
        refused(
            gates.list_gates(pb::ListGatesRequest::default()).await,
            Code::Unauthenticated,
            "authorization",
        );
    }

    // A reader reads but changes nothing.
    let mut reader = ContractsClient::new(with(&channel, Some(READER)));
    reader
        .list_contracts(pb::ListContractsRequest::default())
        .await
        .expect("a reader lists contracts");
    refused(
        reader
            .put_contract(pb::PutContractRequest {
                yaml: FAST_CONTRACT.into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "needs operator",
    );

    // An operator applies the contract (forwarded by the follower).
    ContractsClient::new(with(&channel, Some(OPERATOR)))
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("an operator applies a contract");

    // An ingester pushes signals; a reader may not.
    let now = common::wait_until(
        std::time::Duration::from_secs(5),
        "the gate's first window",
        || async {
            let applied = cluster.nodes[follower].node.state.read();
            let first = applied.state.gates.values().next()?.first_window;
            let now = common::now_ms();
            (now >= first).then_some(now)
        },
    )
    .await;
    let batch = |key: &str| pb::IngestRequest {
        idempotency_key: key.into(),
        signals: vec![rate("fast", "error_rate", "mobile", true, now, 1, 100)],
    };
    refused(
        SignalsClient::new(with(&channel, Some(READER)))
            .ingest(batch("r1"))
            .await,
        Code::PermissionDenied,
        "needs ingester",
    );
    let ingested = SignalsClient::new(with(&channel, Some(INGESTER)))
        .ingest(batch("i1"))
        .await
        .expect("an ingester pushes signals")
        .into_inner();
    assert_eq!(ingested.accepted, 1, "{ingested:?}");

    // Overrides need an operator, and record the token next to the actor.
    let hold = pb::OverrideRequest {
        gate: "fast".into(),
        kind: pb::OverrideKind::Hold as i32,
        actor: "alice".into(),
        reason: "checking a dashboard".into(),
        ..Default::default()
    };
    refused(
        OverridesClient::new(with(&channel, Some(INGESTER)))
            .r#override(hold.clone())
            .await,
        Code::PermissionDenied,
        "needs operator",
    );
    let decision = OverridesClient::new(with(&channel, Some(OPERATOR)))
        .r#override(hold)
        .await
        .expect("an operator holds the gate")
        .into_inner();
    assert_eq!(decision.decided_by, "operator:alice (token deployer)");
    let state = GatesClient::new(with(&channel, Some(READER)))
        .get_gate(get("fast"))
        .await
        .expect("a reader reads the gate")
        .into_inner();
    assert_eq!(state.version, decision.version);

    // Membership needs an admin; status only a reader.
    let add = pb::AddLearnerRequest {
        member: Some(pb::Member {
            id: 9,
            addr: "127.0.0.1:1".into(),
        }),
    };
    refused(
        AdminClient::new(with(&channel, Some(OPERATOR)))
            .add_learner(add)
            .await,
        Code::PermissionDenied,
        "needs admin",
    );
    let status = AdminClient::new(with(&channel, Some(READER)))
        .status(pb::StatusRequest::default())
        .await
        .expect("a reader reads cluster status")
        .into_inner();
    assert_eq!(status.leader_id, Some(leader));

    // The node-to-node service takes the cluster token and nothing else.
    for token in [None, Some(ADMIN)] {
        refused(
            RaftInternalClient::new(with(&channel, token))
                .read_index(Empty {})
                .await,
            Code::Unauthenticated,
            "cluster token",
        );
    }
    RaftInternalClient::new(with(&channel, Some(CLUSTER_TOKEN)))
        .node_status(Empty {})
        .await
        .expect("a node reaches another with the cluster token");

    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_limit_is_told_to_slow_down() {
    let cluster = Cluster::start_with(1, |config, dir| {
        with_access(config, dir);
        config.rate_limit = Some(rampart::auth::RateLimit {
            per_second: 1,
            burst: 2,
        });
    })
    .await;
    let channel = cluster.channel(0).await;
    let list = pb::ListGatesRequest {
        consistency: pb::Consistency::Local as i32,
    };
    // 20 calls at once need 18 s at 1/s beyond the burst of 2: some must be refused.
    let mut reader = GatesClient::new(with(&channel, Some(READER)));
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        outcomes.push(reader.list_gates(list).await.map(|_| ()));
    }
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    let refused = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .collect::<Vec<_>>();
    assert!(!refused.is_empty(), "no call was limited");
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("token:dashboard"), "{status:?}");
    }
    // Another caller has its own allowance.
    GatesClient::new(with(&channel, Some(OPERATOR)))
        .list_gates(list)
        .await
        .expect("another token is not limited by the first");
    cluster.stop().await;
}
