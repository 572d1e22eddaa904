//! What a run is made of: the named drills, the durations of a run, the gates every drill
//! uses, and the retry every step of a drill shares. Nothing here talks to a cluster.

use std::str::FromStr;
use std::time::{Duration, Instant};

/// The fault of a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drill {
    KillLeader,
    KillFollower,
    PauseLeader,
    PartitionLeader,
    PartitionMinority,
    RollingRestart,
    /// Every node started from an older binary (`--upgrade-from`), then replaced one by one
    /// by the binary under test, under load (loopback only; not in the quick set).
    RollingUpgrade,
    KillAll,
    /// An acknowledged write, every node killed and restarted at once, then linearizable reads.
    KillAllRead,
    ReplaceNode,
    /// A breaching batch, no fault.
    GameDay,
    /// A breaching batch, then the leader killed.
    GameDayKillLeader,
    /// The leader's wall clock 2 h fast, then the (next) leader's 30 min slow and a follower's
    /// jumping 2 h ahead, then every clock back (libfaketime: on loopback preloaded into each
    /// process, on docker into each container of an image that has it).
    ClockSkew,
    /// A follower restarted on a damaged file (cut short or a bit flipped, chosen by the
    /// seed): refused naming the file, then replaced, or started serving the log's state
    /// (loopback only).
    DamagedFollower,
    /// A follower's disk (a small tmpfs) filled while it runs: it must exit, then catch up
    /// once the space is back (loopback, root).
    DiskFull,
    /// A follower restarted on its disk remounted read-only: refused, then started once it
    /// is writable (loopback, root).
    ReadOnlyDisk,
    /// A new node's promotion in flight while the leader is killed.
    PromoteKillLeader,
    /// Long mode: a random schedule of the faults above, from a seed.
    Random,
}

impl Drill {
    pub const QUICK: [Drill; 16] = [
        Drill::KillLeader,
        Drill::KillFollower,
        Drill::PauseLeader,
        Drill::PartitionLeader,
        Drill::PartitionMinority,
        Drill::RollingRestart,
        Drill::KillAll,
        Drill::KillAllRead,
        Drill::ReplaceNode,
        Drill::GameDay,
        Drill::GameDayKillLeader,
        Drill::ClockSkew,
        Drill::DamagedFollower,
        Drill::DiskFull,
        Drill::ReadOnlyDisk,
        Drill::PromoteKillLeader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drill::KillLeader => "kill-leader",
            Drill::KillFollower => "kill-follower",
            Drill::PauseLeader => "pause-leader",
            Drill::PartitionLeader => "partition-leader",
            Drill::PartitionMinority => "partition-minority",
            Drill::RollingRestart => "rolling-restart",
            Drill::RollingUpgrade => "rolling-upgrade",
            Drill::KillAll => "kill-all",
            Drill::KillAllRead => "kill-all-read",
            Drill::ReplaceNode => "replace-node",
            Drill::GameDay => "gameday",
            Drill::GameDayKillLeader => "gameday-kill-leader",
            Drill::ClockSkew => "clock-skew",
            Drill::DamagedFollower => "damaged-follower",
            Drill::DiskFull => "disk-full",
            Drill::ReadOnlyDisk => "read-only-disk",
            Drill::PromoteKillLeader => "promote-kill-leader",
            Drill::Random => "random",
        }
    }

    pub fn partitions(self) -> bool {
        matches!(self, Drill::PartitionLeader | Drill::PartitionMinority)
    }

    /// Whether it damages or fills a node's disk.
    pub fn touches_disks(self) -> bool {
        matches!(
            self,
            Drill::DamagedFollower | Drill::DiskFull | Drill::ReadOnlyDisk
        )
    }
}

impl FromStr for Drill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Drill::QUICK
            .iter()
            .chain(&[Drill::Random, Drill::RollingUpgrade])
            .find(|d| d.name() == s)
            .copied()
            .ok_or_else(|| format!("unknown drill {s}"))
    }
}

/// Durations and sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Workload before the first fault.
    pub warmup: Duration,
    /// How long a fault lasts.
    pub fault: Duration,
    /// Workload after healing.
    pub after: Duration,
    /// Faults in a random schedule (long mode).
    pub random_faults: u32,
    pub seed: u64,
}

pub const GATE: &str = "drill";
pub const GAMEDAY: &str = "gameday";
pub const COHORTS: [&str; 2] = ["a", "b"];

pub async fn retry<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= until => return Err(e.context(format!("{what}: gave up"))),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drill_name_parses_back() {
        for drill in Drill::QUICK.iter().chain(&[Drill::Random]) {
            assert_eq!(drill.name().parse::<Drill>(), Ok(*drill));
        }
        assert!("kill-everything".parse::<Drill>().is_err());
    }
}
