//! Damage on disk is refused, never served: each file a node keeps (`raft/db`, `raft/conf`,
//! `snapshot.bin`, `acked.bin`) is cut short or has a byte flipped at random positions; the
//! store then either refuses to open with an error naming the file, or opens and yields exactly
//! the log, vote and state it held before (a damaged snapshot the log covers is rebuilt from
//! the log). A `raft/db` cut to half, and a vote rolled back, are refused with the way out.
//!
//! The positions come from a seeded generator (`RAMPART_DAMAGE_SEED`, default fixed) so a
//! failure is reproducible; the seed is printed with every failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, RaftLogReader, RaftSnapshotBuilder, Vote};
use rampart::consensus::TypeConfig;
use rampart::engine::Contract;
use rampart::ids::GateKey;
use rampart::state::{Command, Override, OverrideKind, Request, State};
use rand::{Rng, SeedableRng};

const ENTRIES: u64 = 300;
const SNAPSHOT_AT: u64 = 200;

fn entry(index: u64) -> Entry<TypeConfig> {
    let command = match index {
        1 => Command::PutContract {
            contract: Box::new(
                Contract::from_yaml(include_str!("../examples/checkout-v2.yaml")).expect("yaml"),
            ),
        },
        // The kill switch goes on after the snapshot: a node that served the snapshot alone
        // would show it off.
        i if i == SNAPSHOT_AT + 10 => Command::Override(Override {
            gate: GateKey::try_from("checkout-v2").expect("gate"),
            cohort: None,
            kind: OverrideKind::Kill,
            actor: "sre".into(),
            reason: "damage test".into(),
        }),
        i => Command::Ingest {
            idempotency_key: format!("k{i}"),
            signals: vec![],
        },
    };
    Entry {
        log_id: log_id(3, 1, index),
        payload: EntryPayload::Normal(Request {
            at: 1_763_719_200_000 + i64::try_from(index).unwrap_or(0),
            command,
        }),
    }
}

/// What a store yields: its log, its vote, and the state it serves once the log up to
/// `applied_to` is applied (as openraft re-applies the committed log at start).
#[derive(Debug, PartialEq)]
struct Held {
    log: Vec<Entry<TypeConfig>>,
    vote: Option<Vote<u64>>,
    state: State,
}

async fn held(dir: &Path, applied_to: u64) -> Result<Held, String> {
    let (mut log, mut sm) = rampart::store::open(dir).map_err(|e| e.to_string())?;
    let entries = log
        .try_get_log_entries(0..)
        .await
        .map_err(|e| e.to_string())?;
    let vote = log.read_vote().await.map_err(|e| e.to_string())?;
    let (applied, _) = sm.applied_state().await.map_err(|e| e.to_string())?;
    let from = applied.map_or(1, |l| l.index + 1);
    let replay: Vec<_> = entries
        .iter()
        .filter(|e| (from..=applied_to).contains(&e.log_id.index))
        .cloned()
        .collect();
    sm.apply(replay).await.map_err(|e| e.to_string())?;
    let state = sm.handle().read().state.clone();
    Ok(Held {
        log: entries,
        vote,
        state,
    })
}

/// A data directory with a vote, `ENTRIES` acknowledged entries and a snapshot at
/// `SNAPSHOT_AT` (nothing purged: the log covers the snapshot).
async fn pristine(dir: &Path) {
    let (mut log, mut sm) = rampart::store::open(dir).expect("open");
    log.save_vote(&Vote::new(3, 1)).await.expect("vote");
    for first in (1..=ENTRIES).step_by(10) {
        let batch: Vec<_> = (first..first + 10).map(entry).collect();
        log.blocking_append(batch).await.expect("append");
    }
    sm.apply((1..=SNAPSHOT_AT).map(entry)).await.expect("apply");
    let mut builder = sm.get_snapshot_builder().await;
    builder.build_snapshot().await.expect("snapshot");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("dir entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy");
        }
    }
}

fn seed() -> u64 {
    std::env::var("RAMPART_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

/// One damaged copy: `file` cut to `len` or with byte `at` flipped.
enum Damage {
    Flip { at: u64, mask: u8 },
    Cut { len: u64 },
}

fn damage(path: &Path, how: &Damage) {
    match *how {
        Damage::Flip { at, mask } => {
            let mut bytes = std::fs::read(path).expect("read");
            let i = usize::try_from(at).expect("index");
            bytes[i] ^= mask;
            std::fs::write(path, bytes).expect("write");
        }
        Damage::Cut { len } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open");
            f.set_len(len).expect("truncate");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_refused_or_change_nothing() {
    let seed = seed();
    let base = tempfile::TempDir::new().expect("temp dir");
    let clean = base.path().join("clean");
    pristine(&clean).await;
    let expected = held(&clean, ENTRIES).await.expect("the clean copy opens");
    assert!(expected.state.gates.values().all(|g| g.kill_switch));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let files: [(&str, &str); 4] = [
        ("raft/db", "raft/db"),
        ("raft/conf", "raft/conf"),
        ("snapshot.bin", "snapshot.bin"),
        ("acked.bin", "acked.bin"),
    ];
    let started = Instant::now();
    let (mut refused, mut unchanged, mut runs) = (0, 0, 0);
    let mut first_refusal = std::collections::BTreeMap::new();
    for round in 0..12 {
        for (file, named) in files {
            // sled's segments are mostly zero padding: aim at the bytes in use.
            let bytes = std::fs::read(clean.join(file)).expect("read");
            let used = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
            let len = u64::try_from(used).expect("len");
            let how = if round % 3 == 2 {
                Damage::Cut {
                    len: rng.gen_range(0..len),
                }
            } else {
                Damage::Flip {
                    at: rng.gen_range(0..len),
                    mask: 1 << rng.gen_range(0..8),
                }
            };
            let what = match how {
                Damage::Flip { at, mask } => format!("{file}: byte {at} ^ {mask:#04x}"),
                Damage::Cut { len: to } => format!("{file}: cut from {len} to {to} bytes"),
            };
            let copy = base
                .path()
                .join(format!("copy-{round}-{}", file.replace('/', "-")));
            copy_dir(&clean, &copy);
            damage(&copy.join(file), &how);
            runs += 1;
            match held(&copy, ENTRIES).await {
                Err(e) => {
                    refused += 1;
                    first_refusal
                        .entry(file)
                        .or_insert_with(|| format!("{what}: {e}"));
                    let named_path = copy.join(named).display().to_string();
                    assert!(
                        e.contains(&named_path),
                        "seed {seed}, {what}: the error must name {named_path}: {e}"
                    );
                }
                Ok(got) => {
                    unchanged += 1;
                    assert!(
                        got == expected,
                        "seed {seed}, {what}: opened, but does not hold what it held before"
                    );
                }
            }
            std::fs::remove_dir_all(&copy).ok();
        }
    }
    eprintln!(
        "seed {seed}: {runs} damaged copies, {refused} refused, {unchanged} unchanged, {:?}",
        started.elapsed()
    );
    for refusal in first_refusal.values() {
        eprintln!("  {refusal}");
    }
    assert!(refused > 0, "some damage must be noticed");
}

#[tokio::test]
async fn a_raft_db_cut_to_half_is_refused_with_the_way_out() {
    let base = tempfile::TempDir::new().expect("temp dir");
    let dir = base.path().join("node");
    pristine(&dir).await;
    let db = dir.join("raft/db");
    let len = std::fs::metadata(&db).expect("len").len();
    damage(&db, &Damage::Cut { len: len / 2 });
    let err = rampart::store::open(&dir).expect_err("a truncated log is refused");
    let err = err.to_string();
    eprintln!("{err}");
    for needle in [
        db.display().to_string().as_str(),
        "acknowledged entries up to index 300",
        "rampart cluster remove",
        "rampart cluster add",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
}

#[tokio::test]
async fn a_vote_rolled_back_is_refused() {
    let base = tempfile::TempDir::new().expect("temp dir");
    let dir = base.path().join("node");
    pristine(&dir).await;
    let old_raft = base.path().join("raft-before-vote");
    copy_dir(&dir.join("raft"), &old_raft);
    {
        let (mut log, _sm) = rampart::store::open(&dir).expect("open");
        log.save_vote(&Vote::new(9, 2)).await.expect("vote");
    }
    // raft/ as it was before the vote (a restored copy, a lost tail), acked.bin as it is.
    std::fs::remove_dir_all(dir.join("raft")).expect("rm");
    copy_dir(&old_raft, &dir.join("raft"));
    let err = rampart::store::open(&dir)
        .expect_err("a forgotten vote is refused")
        .to_string();
    assert!(
        err.contains("vote") && err.contains("T9-N2") && err.contains("rampart cluster remove"),
        "{err}"
    );
}

#[tokio::test]
async fn a_damaged_snapshot_is_refused_when_the_log_no_longer_covers_it() {
    let base = tempfile::TempDir::new().expect("temp dir");
    let dir: PathBuf = base.path().join("node");
    pristine(&dir).await;
    {
        let (mut log, _sm) = rampart::store::open(&dir).expect("open");
        log.purge(log_id(3, 1, SNAPSHOT_AT - 50))
            .await
            .expect("purge");
    }
    let snapshot = dir.join("snapshot.bin");
    let len = std::fs::metadata(&snapshot).expect("len").len();
    damage(
        &snapshot,
        &Damage::Flip {
            at: len / 2,
            mask: 4,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = rampart::store::open(&dir)
        .expect_err("no way to rebuild the state")
        .to_string();
    assert!(Instant::now() < deadline);
    for needle in [
        snapshot.display().to_string().as_str(),
        "checksum mismatch",
        "purged up to index 150",
        "rampart cluster remove",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
}

#[tokio::test]
async fn a_deleted_acknowledged_mark_is_refused_but_a_log_from_before_marks_opens() {
    let base = tempfile::TempDir::new().expect("temp dir");
    let dir = base.path().join("node");
    pristine(&dir).await;
    let mark = dir.join("acked.bin");
    // A log written by a release that kept no mark: no `marked` key in its meta tree.
    {
        let db = sled::Config::new()
            .path(dir.join("raft"))
            .segment_size(8 << 20)
            .open()
            .expect("sled");
        db.open_tree("meta")
            .expect("meta")
            .remove("marked")
            .expect("remove");
        db.flush().expect("flush");
    }
    std::fs::remove_file(&mark).expect("rm acked.bin");
    let before = held(&dir, ENTRIES)
        .await
        .expect("an older node's log opens");
    assert_eq!(before.vote, Some(Vote::new(3, 1)));
    assert!(mark.exists(), "and gets its mark");
    // Once kept beside a mark, a log whose mark is gone is refused: a truncation could hide
    // behind it.
    std::fs::remove_file(&mark).expect("rm acked.bin");
    let err = rampart::store::open(&dir)
        .expect_err("a lost mark is refused")
        .to_string();
    for needle in [
        mark.display().to_string().as_str(),
        "is missing",
        "rampart cluster remove",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    // Refusing wrote nothing: the next start refuses the same way.
    assert!(!mark.exists());
    assert!(rampart::store::open(&dir).is_err());
}
