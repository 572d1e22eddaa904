//! Latency of one durable append to the Raft log (sled flush + fdatasync), for docs/bench.md:
//! `cargo run --release --example append_latency -- [DIR] [COUNT]`.

use std::time::Instant;

use openraft::storage::RaftLogStorageExt;
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload};
use rampart::consensus::TypeConfig;
use rampart::state::{Command, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::TempDir::new_in(args.get(1).map_or(".", String::as_str))?;
    let count: u64 = args.get(2).map_or(Ok(2000), |s| s.parse())?;
    let (mut log, _sm) = rampart::store::open(dir.path())?;
    let mut micros = Vec::new();
    for i in 1..=count {
        let entry: Entry<TypeConfig> = Entry {
            log_id: log_id(1, 1, i),
            payload: EntryPayload::Normal(Request {
                at: 0,
                command: Command::Tick,
            }),
        };
        let started = Instant::now();
        log.blocking_append([entry]).await?;
        micros.push(started.elapsed().as_micros());
    }
    micros.sort_unstable();
    let at = |p: usize| micros[(micros.len() - 1) * p / 100];
    println!(
        "{count} appends: p50 {}us p90 {}us p99 {}us",
        at(50),
        at(90),
        at(99)
    );
    Ok(())
}
