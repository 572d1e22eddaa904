//! Steps drills share: finding the leader and a follower, waiting for a node to serve,
//! membership calls retried across the nodes, adding a node and replacing one.

use std::time::Duration;

use anyhow::Context;
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::gates_client::GatesClient;

use super::client::Pool;
use super::cluster::Cluster;
use super::observers::find_leader;
use super::plan::{retry, GATE};

pub(super) async fn leader(pool: &Pool) -> anyhow::Result<u64> {
    retry("finding the leader", Duration::from_secs(20), || async {
        find_leader(pool).await.map(|l| l.0).context("no leader")
    })
    .await
}

pub(super) fn follower(cluster: &dyn Cluster, leader: u64) -> u64 {
    cluster
        .members()
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap_or(leader)
}

/// Waits until `id` answers a linearizable read (it has rejoined and a leader is known).
pub(super) async fn wait_serving(pool: &Pool, id: u64) -> anyhow::Result<()> {
    retry("node back", Duration::from_secs(30), || {
        let channel = pool.channel(id);
        async move {
            let request = pb::GetGateRequest {
                gate: GATE.into(),
                consistency: pb::Consistency::Linearizable as i32,
            };
            Ok(GatesClient::new(channel).get_gate(request).await?)
        }
    })
    .await
    .map(|_| ())
}

pub(super) async fn admin(
    pool: &Pool,
    what: &str,
    f: impl Fn(
        AdminClient<super::client::Conn>,
    ) -> futures::future::BoxFuture<
        'static,
        Result<tonic::Response<pb::ClusterStatus>, tonic::Status>,
    >,
) -> anyhow::Result<()> {
    let ids = pool.ids();
    let mut i = 0usize;
    retry(what, Duration::from_secs(30), || {
        i += 1;
        let client = AdminClient::new(pool.channel(ids[i % ids.len()]));
        let call = f(client);
        async move { Ok(call.await.map(|_| ())?) }
    })
    .await
}

/// Starts a brand-new node (the next id above every member and `above`) and adds it as a
/// learner; returns its id.
pub(super) async fn add_learner(
    cluster: &mut dyn Cluster,
    pool: &Pool,
    above: u64,
) -> anyhow::Result<u64> {
    let new = cluster
        .members()
        .keys()
        .max()
        .copied()
        .unwrap_or(0)
        .max(above)
        + 1;
    cluster.start(new)?;
    let addr = cluster
        .members()
        .get(&new)
        .cloned()
        .context("new member address")?;
    admin(pool, "add learner", move |mut c| {
        let member = pb::Member {
            id: new,
            addr: addr.clone(),
        };
        Box::pin(async move {
            c.add_learner(pb::AddLearnerRequest {
                member: Some(member),
            })
            .await
        })
    })
    .await?;
    Ok(new)
}

/// Replaces node `old` as `docs/durability.md` says: removed, its data wiped, and a new node
/// (a new id) added as a learner and promoted once caught up.
pub(super) async fn replace(
    cluster: &mut dyn Cluster,
    pool: &Pool,
    old: u64,
) -> anyhow::Result<()> {
    admin(pool, "remove", move |mut c| {
        Box::pin(async move { c.remove(pb::RemoveRequest { id: old }).await })
    })
    .await?;
    cluster.wipe(old)?;
    // Never `old` again: a new id, as a wiped node must come back.
    let new = add_learner(cluster, pool, old).await?;
    admin(pool, "promote", move |mut c| {
        Box::pin(async move { c.promote(pb::PromoteRequest { id: new }).await })
    })
    .await
}
