//! The named drills: set up a cluster, run the workload, inject one fault (or a seeded random
//! schedule of them in long mode), heal, let every window be judged, collect every node's
//! final state and hand the record to the checker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rand::SeedableRng;

use super::client::{now_ms, Pool, Recorder};
use super::cluster::Cluster;
use super::collect::{collect, settle};
use super::faults::inject;
use super::observers::{self, LeaderSample, Targets};
pub use super::plan::{retry, Drill, Settings, COHORTS, GAMEDAY, GATE};
use super::workload::{self, Ctx};
use crate::history::{Micros, Record};

fn contract(gate: &str, kill_above: f64) -> String {
    format!(
        "gate: {gate}\ndescription: chaos drill gate\nowner: chaos\nvariants: {{ treatment: on, fallback: off }}\n\
ladder: [1, 5, 10, 25, 50, 100]\nstage_min_duration: 2s\nwindow: 2s\ngrace: 500ms\ncohorts: [a, b]\n\
baseline: control\non_unreliable: hold\nmetrics:\n  - name: errors\n    kind: rate\n    better: lower\n    min_samples: 50\n    kill: {{ above: {kill_above} }}\n\
actions: {{ watch: slow, stop: hold, kill: rollback }}\n"
    )
}

/// What one drill produced.
pub struct Outcome {
    pub record: Record,
    pub faults: u32,
    pub leader_samples: Vec<LeaderSample>,
    /// Game days: acknowledgement of the breaching batch.
    pub breach_ack: Option<Micros>,
    pub skipped: Option<String>,
}

/// Initialises the cluster and applies the drill contracts.
async fn bootstrap(cluster: &dyn Cluster, pool: &Pool) -> anyhow::Result<()> {
    let members: Vec<pb::Member> = cluster
        .members()
        .into_iter()
        .map(|(id, addr)| pb::Member { id, addr })
        .collect();
    let first = pool.ids()[0];
    retry("cluster init", Duration::from_secs(30), || {
        let request = pb::InitRequest {
            members: members.clone(),
        };
        let channel = pool.channel(first);
        async move { Ok(AdminClient::new(channel).init(request).await?) }
    })
    .await?;
    for (gate, ceiling) in [(GATE, 0.5), (GAMEDAY, 0.05)] {
        let yaml = contract(gate, ceiling);
        retry("contract", Duration::from_secs(30), || {
            let channel = pool.channel(first);
            let yaml = yaml.clone();
            async move {
                Ok(ContractsClient::new(channel)
                    .put_contract(pb::PutContractRequest {
                        yaml,
                        ..Default::default()
                    })
                    .await?)
            }
        })
        .await?;
    }
    Ok(())
}

/// Runs one drill against `cluster` (fresh and started) and returns its record.
pub async fn run(
    drill: Drill,
    cluster: &mut dyn Cluster,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    if drill.partitions() && !cluster.can_partition() {
        return Ok(Outcome {
            record: Record::default(),
            faults: 0,
            leader_samples: Vec::new(),
            breach_ack: None,
            skipped: Some("partitions need root on loopback".into()),
        });
    }
    if drill == Drill::ClockSkew && !cluster.can_skew_clocks() {
        return Ok(Outcome {
            record: Record::default(),
            faults: 0,
            leader_samples: Vec::new(),
            breach_ack: None,
            skipped: Some(
                "clock skew needs libfaketime: package faketime on loopback, an image built with RAMPART_IMAGE_FAKETIME=1 on docker"
                    .into(),
            ),
        });
    }
    if drill.touches_disks() && !cluster.can_touch_disks() {
        return Ok(Outcome {
            record: Record::default(),
            faults: 0,
            leader_samples: Vec::new(),
            breach_ack: None,
            skipped: Some("disk faults need a loopback cluster run as root (mount)".into()),
        });
    }
    let security = cluster.client_security()?;
    let pool = Pool::new(&cluster.endpoints(), security.as_ref())?;
    bootstrap(cluster, &pool).await?;
    let ctx = Ctx {
        pool: pool.clone(),
        rec: Arc::new(Recorder::default()),
        stop: Arc::new(AtomicBool::new(false)),
        drill: drill.name().to_owned(),
    };
    let cohorts: Vec<String> = COHORTS.iter().map(|c| (*c).to_owned()).collect();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let targets: Targets = Arc::new(Mutex::new(None));
    let give_up = Arc::new(AtomicBool::new(false));
    let every = Duration::from_millis(60);
    let mut tasks = vec![
        tokio::spawn(workload::ingester(
            ctx.clone(),
            1,
            GATE.into(),
            cohorts.clone(),
            every,
        )),
        tokio::spawn(workload::ingester(
            ctx.clone(),
            2,
            GAMEDAY.into(),
            cohorts.clone(),
            every,
        )),
        tokio::spawn(workload::reader(
            ctx.clone(),
            3,
            GATE.into(),
            cohorts.clone(),
            Duration::from_millis(30),
        )),
        tokio::spawn(workload::reader(
            ctx.clone(),
            4,
            GATE.into(),
            cohorts.clone(),
            Duration::from_millis(30),
        )),
        tokio::spawn(workload::operator(
            ctx.clone(),
            5,
            GATE.into(),
            Duration::from_millis(1500),
        )),
    ];
    let watch = tokio::spawn(observers::watcher(
        ctx.clone(),
        6,
        vec![GATE.into(), GAMEDAY.into()],
        targets.clone(),
        give_up.clone(),
    ));
    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = tokio::spawn(observers::monitor(
        pool.clone(),
        monitor_stop.clone(),
        samples.clone(),
    ));
    tokio::time::sleep(settings.warmup).await;
    let mut breach_ack = None;
    if matches!(drill, Drill::GameDay | Drill::GameDayKillLeader) {
        let signals = workload::batch(GAMEDAY, &COHORTS, now_ms(), 5000, 0.6);
        breach_ack = workload::ingest(
            &ctx,
            7,
            pool.ids()[0],
            &format!("{}-breach", ctx.drill),
            &signals,
        )
        .await;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(settings.seed);
    let faults = inject(drill, cluster, &ctx, settings, &mut rng).await;
    if faults.is_err() {
        let _ = cluster.heal();
    }
    tokio::time::sleep(settings.after).await;
    ctx.stop.store(true, Ordering::SeqCst);
    let last_signal = now_ms();
    for t in tasks.drain(..) {
        let _ = t.await;
    }
    let faults = faults?;
    let endpoints = cluster.endpoints();
    let final_pool = Pool::new(&endpoints, security.as_ref())?;
    settle(&final_pool, last_signal).await;
    // The watcher must reach what the nodes hold when collected (decisions made later are
    // beyond the record and not owed).
    let nodes = collect(&final_pool).await;
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for (gate, g) in nodes.iter().flat_map(|n| n.gates.iter()) {
        let v = versions.entry(gate.clone()).or_default();
        *v = (*v).max(g.view.version);
    }
    *targets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(versions);
    if tokio::time::timeout(Duration::from_secs(20), async {
        while !watch.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_err()
    {
        give_up.store(true, Ordering::SeqCst);
    }
    let _ = watch.await;
    monitor_stop.store(true, Ordering::SeqCst);
    let _ = monitor.await;
    let leader_samples = samples
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Outcome {
        record: Record {
            ops: ctx.rec.take(),
            nodes,
        },
        faults,
        leader_samples,
        breach_ack,
        skipped: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drill_contracts_are_valid() {
        for (gate, ceiling) in [(GATE, 0.5), (GAMEDAY, 0.05)] {
            let contract = rampart::engine::Contract::from_yaml(&contract(gate, ceiling));
            assert!(contract.is_ok(), "{gate}: {contract:?}");
        }
    }
}
