//! Persisted formats stay readable: fixtures written by format version 1 (committed under
//! `tests/data/format-v1/`, no checksums) and version 2 (`tests/data/format-v2/`, CRC-32 on
//! every value, plus the acknowledged mark `acked.bin`) must decode with today's code. When a
//! format changes, add a new version and keep these fixtures; never regenerate them to make
//! this test pass. (`RAMPART_WRITE_FIXTURES=2 cargo test --test format_compat` wrote the
//! version 2 ones once; version 1's were written by the code of that version.)

use std::path::PathBuf;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{Entry, EntryPayload, RaftSnapshotBuilder, Vote};
use rampart::consensus::TypeConfig;
use rampart::engine::Contract;
use rampart::ids::GateKey;
use rampart::state::{Command, Override, OverrideKind, Request};
use rampart::store::codec;

fn fixtures(version: u8) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/format-v{version}"))
}

fn entries() -> Vec<Entry<TypeConfig>> {
    let contract =
        Contract::from_yaml(include_str!("data/format-v1/checkout-v2.yaml")).expect("contract");
    let kill = Override {
        gate: GateKey::try_from("checkout-v2").expect("gate"),
        cohort: None,
        kind: OverrideKind::Kill,
        actor: "sre".into(),
        reason: "fixture".into(),
    };
    let commands = [
        Command::PutContract {
            contract: Box::new(contract),
        },
        Command::Override(kill),
        Command::Ingest {
            idempotency_key: "k1".into(),
            signals: vec![],
        },
    ];
    commands
        .into_iter()
        .enumerate()
        .map(|(i, command)| Entry {
            log_id: openraft::testing::log_id(1, 1, i as u64 + 1),
            payload: EntryPayload::Normal(Request {
                at: 1_763_719_200_000 + i as i64,
                command,
            }),
        })
        .collect()
}

/// Writes the version 2 fixtures with today's code (only when asked).
async fn write_fixtures(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("fixture dir");
    let bytes = codec::encode(&entries()).expect("encode");
    std::fs::write(dir.join("entries.bin"), bytes).expect("write entries");
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let (mut log, mut sm) = rampart::store::open(tmp.path()).expect("open");
    log.save_vote(&Vote::new(1, 1)).await.expect("vote");
    log.blocking_append(entries()).await.expect("append");
    sm.apply(entries()).await.expect("apply");
    let mut builder = sm.get_snapshot_builder().await;
    builder.build_snapshot().await.expect("snapshot");
    for file in ["snapshot.bin", "acked.bin"] {
        std::fs::copy(tmp.path().join(file), dir.join(file)).expect("copy fixture");
    }
}

/// A data directory holding the snapshot (and mark) of `version`'s fixtures opens with the
/// state they were written with: the kill switch on, two decisions, the ingest key.
async fn check_snapshot(version: u8, files: &[&str]) {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    for file in files {
        std::fs::copy(fixtures(version).join(file), tmp.path().join(file)).expect("copy");
    }
    let (_log, mut sm) = rampart::store::open(tmp.path())
        .unwrap_or_else(|e| panic!("a version {version} data directory opens: {e}"));
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(applied.map(|l| l.index), Some(3));
    let handle = sm.handle();
    let applied = handle.read();
    let gate = applied
        .state
        .live_gate(&GateKey::try_from("checkout-v2").expect("gate"))
        .expect("gate in snapshot");
    assert!(gate.kill_switch);
    assert_eq!(gate.decisions.len(), 2);
    assert!(applied.state.ingested.contains_key("k1"));
}

#[tokio::test]
async fn version_1_fixtures_still_decode() {
    let bytes = std::fs::read(fixtures(1).join("entries.bin")).expect("entries fixture");
    assert_eq!(
        bytes[0],
        codec::FORMAT_V1,
        "version 1 fixtures are never rewritten"
    );
    let decoded: Vec<Entry<TypeConfig>> =
        codec::decode(&bytes).expect("version 1 log entries decode");
    assert_eq!(decoded, entries());
    check_snapshot(1, &["snapshot.bin"]).await;
}

#[tokio::test]
async fn version_2_fixtures_still_decode() {
    if std::env::var("RAMPART_WRITE_FIXTURES").as_deref() == Ok("2") {
        write_fixtures(&fixtures(2)).await;
    }
    let bytes = std::fs::read(fixtures(2).join("entries.bin")).expect("entries fixture");
    assert_eq!(bytes[0], codec::FORMAT_V2);
    let decoded: Vec<Entry<TypeConfig>> =
        codec::decode(&bytes).expect("version 2 log entries decode");
    assert_eq!(decoded, entries());
    check_snapshot(2, &["snapshot.bin"]).await;
}

/// The mark of a node that acknowledged 3 entries, over an empty raft/: the log is gone, so
/// the node refuses to start, as it must.
#[tokio::test]
async fn a_version_2_mark_is_read_and_enforced() {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    for file in ["snapshot.bin", "acked.bin"] {
        std::fs::copy(fixtures(2).join(file), tmp.path().join(file)).expect("copy");
    }
    let err = rampart::store::open(tmp.path())
        .expect_err("acknowledged entries are missing")
        .to_string();
    assert!(err.contains("acknowledged entries up to index 3"), "{err}");
}
