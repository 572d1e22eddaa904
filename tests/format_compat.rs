//! Persisted formats stay readable: fixtures written by format version 1 (committed under
//! `tests/data/format-v1/`) must decode with today's code. When a format changes, add a new
//! version and keep these fixtures; never regenerate them to make this test pass.
//! (`RAMPART_WRITE_FIXTURES=1 cargo test --test format_compat` wrote them once.)

use std::path::PathBuf;

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, RaftSnapshotBuilder};
use rampart::consensus::TypeConfig;
use rampart::engine::Contract;
use rampart::ids::GateKey;
use rampart::state::{Command, Override, OverrideKind, Request};
use rampart::store::codec;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-v1")
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

#[tokio::test]
async fn version_1_fixtures_still_decode() {
    let dir = fixtures();
    if std::env::var("RAMPART_WRITE_FIXTURES").is_ok() {
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let bytes = codec::encode(&entries()).expect("encode");
        std::fs::write(dir.join("entries.bin"), bytes).expect("write entries");
        let tmp = tempfile::TempDir::new().expect("temp dir");
        let (_log, mut sm) = rampart::store::open(tmp.path()).expect("open");
        sm.apply(entries()).await.expect("apply");
        let mut builder = sm.get_snapshot_builder().await;
        builder.build_snapshot().await.expect("snapshot");
        std::fs::copy(tmp.path().join("snapshot.bin"), dir.join("snapshot.bin"))
            .expect("copy snapshot");
    }

    let bytes = std::fs::read(dir.join("entries.bin")).expect("entries fixture");
    let decoded: Vec<Entry<TypeConfig>> =
        codec::decode(&bytes).expect("version 1 log entries decode");
    assert_eq!(decoded, entries());

    let tmp = tempfile::TempDir::new().expect("temp dir");
    std::fs::copy(dir.join("snapshot.bin"), tmp.path().join("snapshot.bin")).expect("copy");
    let (_log, mut sm) = rampart::store::open(tmp.path()).expect("a version 1 snapshot opens");
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
