//! Crash-style storage test: a child process appends to the Raft log and reports every append
//! the store acknowledged as durable; it is killed with SIGKILL mid-stream; the log reopened
//! from disk holds every acknowledged entry, with no hole.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, RaftLogReader, Vote};
use rampart::consensus::TypeConfig;
use rampart::state::{Command as SmCommand, Request};

const CHILD_ENV: &str = "RAMPART_CRASH_CHILD_DIR";

/// The child: appends batches forever, printing the last index of each acknowledged batch.
#[tokio::test]
async fn crash_child_appender() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut log, _sm) = rampart::store::open(std::path::Path::new(&dir)).expect("open");
    log.save_vote(&Vote::new(1, 1)).await.expect("vote");
    println!("vote 1");
    let mut stdout = std::io::stdout();
    let mut next = 1u64;
    loop {
        let batch: Vec<Entry<TypeConfig>> = (next..next + 8)
            .map(|i| Entry {
                log_id: log_id(1, 1, i),
                payload: EntryPayload::Normal(Request {
                    at: 0,
                    command: SmCommand::Tick,
                }),
            })
            .collect();
        log.blocking_append(batch).await.expect("append");
        next += 8;
        writeln!(stdout, "acked {}", next - 1).expect("stdout");
        stdout.flush().expect("flush");
    }
}

#[tokio::test]
async fn acknowledged_appends_survive_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child_appender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut acked = 0u64;
    let mut vote_acked = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked < 400 {
        assert!(
            std::time::Instant::now() < deadline,
            "child too slow: {acked} acked"
        );
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child output");
        // libtest may print "test name ... " before the child's first line.
        if line.ends_with("vote 1") {
            vote_acked = true;
        } else if let Some((_, n)) = line.split_once("acked ") {
            acked = n.trim().parse().expect("index");
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Lines printed before the kill but not read yet are acknowledgements too.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        if let Some((_, n)) = line.split_once("acked ") {
            if let Ok(n) = n.trim().parse() {
                acked = n;
            }
        }
    }

    let (mut log, _sm) = rampart::store::open(dir.path()).expect("reopen after kill -9");
    assert!(vote_acked);
    assert_eq!(
        log.read_vote().await.expect("vote"),
        Some(Vote::new(1, 1)),
        "acknowledged vote lost"
    );
    let state = log.get_log_state().await.expect("state");
    let last = state.last_log_id.map_or(0, |l| l.index);
    assert!(
        last >= acked,
        "acknowledged up to {acked}, only {last} on disk"
    );
    let entries = log.try_get_log_entries(1..=last).await.expect("read");
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (1..=last).collect::<Vec<_>>(), "a hole in the log");
}
