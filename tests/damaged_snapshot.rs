//! A follower whose `snapshot.bin` is damaged (a flipped bit) does not come back serving a
//! different gate than the leader's: it refuses to start, naming the file and the way out, and
//! the documented replacement (remove, wipe, add) brings it back with the leader's state — the
//! kill switch on.

mod common;

use std::time::Duration;

use common::{rate, test_config, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;

fn kill_switch(node: &rampart::node::Node) -> Option<(bool, u64)> {
    let applied = node.state.read();
    let gate = applied
        .state
        .live_gate(&rampart::ids::GateKey::try_from("fast").ok()?)?;
    Some((gate.kill_switch, gate.version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_snapshot_is_refused_and_the_replaced_node_has_the_kill_switch_on() {
    let mut cluster = Cluster::start_with(3, |c, _| c.snapshot_every = 20).await;
    ContractsClient::new(cluster.channel(0).await)
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");
    let kill = OverridesClient::new(cluster.channel(0).await)
        .r#override(pb::OverrideRequest {
            gate: "fast".into(),
            kind: pb::OverrideKind::Kill as i32,
            actor: "sre".into(),
            reason: "damaged snapshot test".into(),
            ..Default::default()
        })
        .await
        .expect("kill")
        .into_inner();
    let mut signals = SignalsClient::new(cluster.channel(0).await);
    for i in 0..40 {
        let at = common::now_ms();
        signals
            .ingest(pb::IngestRequest {
                idempotency_key: format!("snap-{i}"),
                signals: vec![rate("fast", "error_rate", "mobile", false, at, 1, 100)],
            })
            .await
            .expect("ingest");
    }
    let leader = cluster.wait_for_leader().await;
    let f = cluster.follower(leader);
    let follower = cluster.nodes[f].node.clone();
    let kill_index = follower.state.read().last_applied.map_or(0, |l| l.index);
    wait_until(
        Duration::from_secs(20),
        "a follower snapshot holding the kill switch",
        || async {
            let m = follower.raft.metrics().borrow().clone();
            m.snapshot
                .is_some_and(|s| s.index >= kill_index)
                .then_some(())
        },
    )
    .await;
    assert_eq!(kill_switch(&follower).map(|k| k.0), Some(true));
    let (id, config) = (follower.id, follower.config.clone());
    drop(follower);

    tracing::info!("--- stop the follower, flip a bit in the middle of its snapshot");
    cluster.nodes.remove(f).stop().await.expect("stop follower");
    let snapshot = config.data.join("snapshot.bin");
    let mut bytes = std::fs::read(&snapshot).expect("snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&snapshot, bytes).expect("write");
    let refused = match rampart::server::start(config.clone()).await {
        Ok(_) => panic!("a node with a damaged snapshot over a purged log started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        refused.contains(&snapshot.display().to_string())
            && refused.contains("checksum mismatch")
            && refused.contains("rampart cluster remove"),
        "{refused}"
    );

    tracing::info!("--- replace it: remove, wipe, start empty, add");
    let mut admin = AdminClient::new(cluster.channel(0).await);
    admin
        .remove(pb::RemoveRequest { id })
        .await
        .expect("remove");
    std::fs::remove_dir_all(&config.data).expect("wipe");
    let mut fresh = test_config(id, cluster.dir.path());
    fresh.listen = config.listen;
    fresh.data.clone_from(&config.data);
    let replaced = rampart::server::start(fresh).await.expect("start empty");
    let node = replaced.node.clone();
    cluster.nodes.push(replaced);
    admin
        .add_learner(pb::AddLearnerRequest {
            member: Some(pb::Member {
                id,
                addr: config.listen.to_string(),
            }),
        })
        .await
        .expect("add learner");
    let status = admin
        .promote(pb::PromoteRequest { id })
        .await
        .expect("promote")
        .into_inner();
    assert_eq!(status.voters.len(), 3, "{status:?}");
    wait_until(
        Duration::from_secs(20),
        "the replaced node shows the kill switch on",
        || async {
            let (on, version) = kill_switch(&node)?;
            (on && version >= kill.version).then_some(())
        },
    )
    .await;
    cluster.stop().await;
}
