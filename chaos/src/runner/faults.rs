//! Fault injection: each drill's fault (or a seeded random schedule of them) against a
//! [`Cluster`], finding the leader through the cluster's own status call.

use std::time::Duration;

use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rand::Rng;

use super::client::Pool;
use super::cluster::Cluster;
use super::observers::find_leader;
use super::ops::{add_learner, admin, follower, leader, replace, wait_serving};
use super::plan::{retry, Drill, Settings, GATE};
use super::storage;
use super::workload::{override_once, read_once, Ctx};
use crate::history::Consistency;

/// The client id of the reads and overrides a fault makes itself.
const READ_CLIENT: u32 = 8;

/// Waits until the cluster status reports a skewed clock (libfaketime took effect).
async fn skew_reported(pool: &Pool) -> anyhow::Result<()> {
    let ids = pool.ids();
    let mut i = 0usize;
    retry(
        "the cluster to report the skewed clock",
        Duration::from_secs(15),
        || {
            i += 1;
            let mut client = AdminClient::new(pool.channel(ids[i % ids.len()]));
            async move {
                let status = client.status(pb::StatusRequest {}).await?.into_inner();
                if !status.clock_skew {
                    anyhow::bail!("no skew reported yet");
                }
                Ok(())
            }
        },
    )
    .await
}

/// Injects one drill's fault; returns how many faults it made.
pub(super) async fn inject(
    drill: Drill,
    cluster: &mut dyn Cluster,
    ctx: &Ctx,
    settings: &Settings,
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<u32> {
    let pool = &ctx.pool;
    let hold = settings.fault;
    match drill {
        Drill::KillLeader | Drill::GameDayKillLeader => {
            let l = leader(pool).await?;
            cluster.kill(l)?;
            tokio::time::sleep(hold).await;
            cluster.start(l)?;
            Ok(1)
        }
        Drill::KillFollower => {
            let f = follower(cluster, leader(pool).await?);
            cluster.kill(f)?;
            tokio::time::sleep(hold).await;
            cluster.start(f)?;
            Ok(1)
        }
        Drill::PauseLeader => {
            let l = leader(pool).await?;
            cluster.pause(l)?;
            // Longer than the election timeout (at most 1 s by default).
            tokio::time::sleep(hold.max(Duration::from_millis(2500))).await;
            cluster.resume(l)?;
            Ok(1)
        }
        Drill::PartitionLeader | Drill::PartitionMinority => {
            let l = leader(pool).await?;
            let cut = if drill == Drill::PartitionLeader {
                l
            } else {
                follower(cluster, l)
            };
            let rest: Vec<u64> = cluster
                .members()
                .keys()
                .copied()
                .filter(|id| *id != cut)
                .collect();
            let before = find_leader(pool).await;
            cluster.partition(&[cut], &rest)?;
            tokio::time::sleep(hold).await;
            cluster.heal()?;
            if drill == Drill::PartitionMinority {
                // The pre-vote's promise (docs/design.md, Elections): the cut-off follower
                // never raised the term, so it rejoins under the leader it left.
                wait_serving(pool, cut).await?;
                let after = find_leader(pool).await;
                if after != before {
                    anyhow::bail!(
                        "node {cut}, cut off from the quorum, deposed the leader when the                          partition healed: (leader, term) {before:?} before, {after:?} after"
                    );
                }
            }
            Ok(1)
        }
        Drill::RollingRestart | Drill::RollingUpgrade => {
            let ids: Vec<u64> = cluster.members().keys().copied().collect();
            for id in &ids {
                cluster.kill(*id)?;
                if drill == Drill::RollingUpgrade {
                    cluster.upgrade(*id)?;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                cluster.start(*id)?;
                wait_serving(pool, *id).await?;
            }
            Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
        }
        Drill::KillAll => {
            let ids: Vec<u64> = cluster.members().keys().copied().collect();
            for id in &ids {
                cluster.kill(*id)?;
            }
            // Restarted at once, as supervisors do: sled's background flush (every 500 ms)
            // gets no chance to persist what the last fsync did not.
            for id in &ids {
                cluster.start(*id)?;
            }
            Ok(1)
        }
        Drill::KillAllRead => {
            // An acknowledged override on the leader, every node killed before sled's
            // background flush, restarted at once, then linearizable reads as fast as the
            // nodes answer, the old leader first and then each node in turn (a follower's read
            // asks the leader for its read index in the first milliseconds after its start):
            // each must show the override.
            let l = leader(pool).await?;
            override_once(ctx, READ_CLIENT, l, GATE, "hold", pb::OverrideKind::Hold).await;
            let ids: Vec<u64> = cluster.members().keys().copied().collect();
            for id in &ids {
                cluster.kill(*id)?;
            }
            for id in &ids {
                cluster.start(*id)?;
            }
            let until = tokio::time::Instant::now() + hold;
            let mut order = vec![l];
            order.extend(ids.iter().copied().filter(|id| *id != l));
            let mut answered = 0;
            let mut attempt = 0;
            while answered < 20 && tokio::time::Instant::now() < until {
                let node = order[attempt % order.len()];
                attempt += 1;
                if read_once(ctx, READ_CLIENT, node, GATE, Consistency::Linearizable)
                    .await
                    .is_some()
                {
                    answered += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(1)
        }
        Drill::ReplaceNode => {
            let old = follower(cluster, leader(pool).await?);
            replace(cluster, pool, old).await?;
            Ok(1)
        }
        Drill::DamagedFollower => {
            let f = follower(cluster, leader(pool).await?);
            storage::damaged_follower(cluster, pool, f, rng).await
        }
        Drill::DiskFull => {
            let f = follower(cluster, leader(pool).await?);
            storage::disk_full(cluster, ctx, f).await
        }
        Drill::ReadOnlyDisk => {
            let f = follower(cluster, leader(pool).await?);
            storage::read_only_disk(cluster, pool, f).await
        }
        Drill::PromoteKillLeader => {
            let l = leader(pool).await?;
            let new = add_learner(cluster, pool, 0).await?;
            // The promotion in flight (it waits for the learner to catch up) while the
            // leader dies: retried until a new leader takes it.
            let promoting = {
                let pool = pool.clone();
                tokio::spawn(async move {
                    admin(&pool, "promote", move |mut c| {
                        Box::pin(async move { c.promote(pb::PromoteRequest { id: new }).await })
                    })
                    .await
                })
            };
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
            cluster.kill(l)?;
            tokio::time::sleep(hold).await;
            cluster.start(l)?;
            promoting.await??;
            wait_serving(pool, new).await?;
            Ok(2)
        }
        Drill::GameDay => Ok(0),
        Drill::ClockSkew => {
            // The leader 2 h fast: cluster time must not follow it.
            let l = leader(pool).await?;
            cluster.set_clock(l, "+2h")?;
            // The fault must have happened: the cluster names the skew.
            skew_reported(pool).await?;
            tokio::time::sleep(hold).await;
            // Then the leader 30 min slow and a follower jumping 2 h ahead mid-run: the
            // median is still the third clock, and windows go on being judged.
            let l = leader(pool).await?;
            cluster.set_clock(l, "-30m")?;
            let f = follower(cluster, l);
            cluster.set_clock(f, "+2h")?;
            tokio::time::sleep(hold).await;
            for id in cluster.members().keys().copied().collect::<Vec<_>>() {
                cluster.set_clock(id, "+0")?;
            }
            Ok(3)
        }
        Drill::Random => {
            let choices = [
                Drill::KillLeader,
                Drill::KillFollower,
                Drill::PauseLeader,
                Drill::PartitionLeader,
                Drill::PartitionMinority,
                Drill::KillAll,
                Drill::KillAllRead,
            ];
            let mut faults = 0;
            for _ in 0..settings.random_faults {
                let pick = choices[rng.gen_range(0..choices.len())];
                if pick.partitions() && !cluster.can_partition() {
                    continue;
                }
                faults += Box::pin(inject(pick, cluster, ctx, settings, rng)).await?;
                tokio::time::sleep(Duration::from_millis(rng.gen_range(500..3000))).await;
            }
            Ok(faults)
        }
    }
}
