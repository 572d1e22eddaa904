//! The storage drills (issue 8): a follower restarted on damaged files, a follower whose disk
//! fills up while it runs, and a follower restarted on a disk remounted read-only. What each
//! must show beyond the common invariants (nothing acknowledged lost, no state the log did not
//! produce, one decision per window) is checked here, and a breach fails the drill:
//!
//! - damaged files: the node refuses to start, naming the damaged file, or it starts and
//!   serves (the checkers then compare its state with the others'); a refused node is
//!   replaced as `docs/durability.md` says;
//! - full disk: the node exits (never lives on with a stopped Raft core), naming the cause,
//!   and catches up once the space is back;
//! - read-only disk: the node refuses to start, naming the cause, and starts once the disk is
//!   writable again.

use std::time::{Duration, Instant};

use anyhow::bail;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;

use super::client::now_ms;
use super::client::Pool;
use super::cluster::{Cluster, DiskFault};
use super::ops::{replace, wait_serving};
use super::plan::{COHORTS, GATE};
use super::workload::{self, Ctx};

/// How long a node has to exit once its disk failed it (or to refuse to start).
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// How a started node ended up.
enum Fate {
    /// It exited; its status and the end of its log.
    Exited(String),
    /// It answers linearizable reads.
    Serving,
}

async fn fate(cluster: &mut dyn Cluster, pool: &Pool, id: u64) -> anyhow::Result<Fate> {
    let until = Instant::now() + EXIT_WITHIN;
    loop {
        if let Some(log) = cluster.exited(id)? {
            return Ok(Fate::Exited(log));
        }
        if serves(pool, id).await {
            return Ok(Fate::Serving);
        }
        if Instant::now() >= until {
            bail!("node {id} neither exited nor served within {EXIT_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether node `id` answers a linearizable read now.
async fn serves(pool: &Pool, id: u64) -> bool {
    let mut request = tonic::Request::new(pb::GetGateRequest {
        gate: GATE.into(),
        consistency: pb::Consistency::Linearizable as i32,
    });
    request.set_timeout(Duration::from_secs(1));
    GatesClient::new(pool.channel(id))
        .get_gate(request)
        .await
        .is_ok()
}

/// Waits for node `id` to exit, and requires its log to say `cause`.
async fn must_exit(cluster: &mut dyn Cluster, id: u64, cause: &str) -> anyhow::Result<()> {
    let until = Instant::now() + EXIT_WITHIN;
    loop {
        if let Some(log) = cluster.exited(id)? {
            if !log.contains(cause) {
                bail!("node {id} exited without naming {cause:?}: {log}");
            }
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("node {id} lived on for {EXIT_WITHIN:?} after its disk failed it ({cause})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn damaged_follower(
    cluster: &mut dyn Cluster,
    pool: &Pool,
    id: u64,
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<u32> {
    cluster.kill(id)?;
    let damaged = cluster.damage(id, rng)?;
    cluster.start(id)?;
    let file = damaged.file.display().to_string();
    match fate(cluster, pool, id).await? {
        Fate::Serving => {
            eprintln!("    node {id}: {file} {}: started and served", damaged.what);
            Ok(1)
        }
        Fate::Exited(log) => {
            eprintln!("    node {id}: {file} {}: refused, replaced", damaged.what);
            if !log.contains(&file) {
                bail!(
                    "node {id} refused {file} ({}) without naming it: {log}",
                    damaged.what
                );
            }
            replace(cluster, pool, id).await?;
            Ok(1)
        }
    }
}

/// The client id of the bulk writes that fill a node's last sled segment.
const BULK_CLIENT: u32 = 9;

pub(super) async fn disk_full(
    cluster: &mut dyn Cluster,
    ctx: &Ctx,
    id: u64,
) -> anyhow::Result<u32> {
    let pool = &ctx.pool;
    cluster.kill(id)?;
    cluster.disk(id, DiskFault::Small)?;
    cluster.start(id)?;
    wait_serving(pool, id).await?;
    cluster.disk(id, DiskFault::Fill)?;
    // sled writes into segments it already padded out to their full size, so a full disk
    // shows only when the node needs a new one: healthy, low-error batches of 1,000 signals
    // through another node bring that moment within seconds.
    let other = pool.next_after(id);
    let until = Instant::now() + EXIT_WITHIN;
    let mut seq = 0;
    loop {
        if let Some(log) = cluster.exited(id)? {
            if !log.contains("No space left on device") {
                bail!("node {id} exited on a full disk without saying so: {log}");
            }
            break;
        }
        if Instant::now() >= until {
            bail!("node {id} lived on for {EXIT_WITHIN:?} on a full disk under writes");
        }
        seq += 1;
        let signals: Vec<_> = (0..250)
            .flat_map(|_| workload::batch(GATE, &COHORTS, now_ms(), 100, 0.01))
            .collect();
        let key = format!("{}-bulk-{seq}", ctx.drill);
        let _ = workload::ingest(ctx, BULK_CLIENT, other, &key, &signals).await;
    }
    cluster.disk(id, DiskFault::Free)?;
    cluster.start(id)?;
    come_back(cluster, pool, id, "its disk had space again").await?;
    Ok(1)
}

/// Waits for a restarted node `id` to serve again; a node that exits instead fails the drill
/// with its log (a plain wait would only see connections refused).
async fn come_back(
    cluster: &mut dyn Cluster,
    pool: &Pool,
    id: u64,
    once: &str,
) -> anyhow::Result<()> {
    match fate(cluster, pool, id).await? {
        Fate::Serving => Ok(()),
        Fate::Exited(log) => bail!("node {id} exited instead of serving once {once}: {log}"),
    }
}

pub(super) async fn read_only_disk(
    cluster: &mut dyn Cluster,
    pool: &Pool,
    id: u64,
) -> anyhow::Result<u32> {
    cluster.kill(id)?;
    cluster.disk(id, DiskFault::Small)?;
    cluster.disk(id, DiskFault::ReadOnly)?;
    cluster.start(id)?;
    must_exit(cluster, id, "Read-only file system").await?;
    cluster.disk(id, DiskFault::ReadWrite)?;
    cluster.start(id)?;
    come_back(cluster, pool, id, "its disk was writable again").await?;
    Ok(1)
}
