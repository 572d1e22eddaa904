//! Storage tests: openraft's conformance suite, a model test against a `BTreeMap` that
//! reopens the store between operations, and crash-style reopen tests.

use std::collections::BTreeMap;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{log_id, StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, RaftLogReader, Vote};
use proptest::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::consensus::{StorageError, TypeConfig};
use crate::state::{Command, Request};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = open(dir.path()).expect("open store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(Builder)?;
    Ok(())
}

fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Request {
            at: i64::try_from(index).unwrap_or(0),
            command: Command::Tick,
        }),
    }
}

async fn append(log: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
    // Returns only after the store called back with success (entries durable).
    log.blocking_append(entries).await.expect("append");
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    Append(u64),
    Truncate(u64),
    Purge(u64),
    Vote(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..5).prop_map(Op::Append),
        1 => (0u64..30).prop_map(Op::Truncate),
        1 => (0u64..30).prop_map(Op::Purge),
        1 => (1u64..10).prop_map(Op::Vote),
        2 => Just(Op::Reopen),
    ]
}

/// The model: a map of index → term, the last purged index, the vote.
#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, u64>,
    purged: Option<u64>,
    vote: Option<u64>,
}

async fn check(log: &mut LogStore, model: &Model) {
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id.map(|l| l.index), model.purged);
    let last = model.entries.keys().next_back().copied().or(model.purged);
    assert_eq!(state.last_log_id.map(|l| l.index), last);
    assert_eq!(log.last_index().expect("last index"), last.unwrap_or(0));
    let all = log.try_get_log_entries(0..).await.expect("read");
    let got: BTreeMap<u64, u64> = all
        .iter()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect();
    assert_eq!(got, model.entries);
    assert_eq!(
        log.read_vote()
            .await
            .expect("vote")
            .map(|v| v.leader_id.term),
        model.vote
    );
}

/// The log store alone: a purge with no snapshot is a gap the full `open` refuses.
fn open_log(dir: &TempDir) -> LogStore {
    LogStore::open(&dir.path().join("raft"), dir.path()).expect("open log")
}

async fn run_model(ops: Vec<Op>) {
    let dir = TempDir::new().expect("temp dir");
    let mut log = open_log(&dir);
    let mut model = Model::default();
    let mut term = 1;
    for op in ops {
        match op {
            Op::Append(n) => {
                let next = model
                    .entries
                    .keys()
                    .next_back()
                    .copied()
                    .or(model.purged)
                    .map_or(0, |i| i + 1);
                let batch: Vec<_> = (next..next + n).map(|i| entry(term, i)).collect();
                append(&mut log, batch).await;
                for i in next..next + n {
                    model.entries.insert(i, term);
                }
            }
            Op::Truncate(at) => {
                // openraft only truncates entries that exist and are past the purged point.
                if model.entries.contains_key(&at) {
                    log.truncate(log_id(model.entries[&at], 1, at))
                        .await
                        .expect("truncate");
                    model.entries.retain(|i, _| *i < at);
                    term += 1;
                }
            }
            Op::Purge(upto) => {
                if let Some(&t) = model.entries.get(&upto) {
                    log.purge(log_id(t, 1, upto)).await.expect("purge");
                    model.entries.retain(|i, _| *i > upto);
                    model.purged = Some(upto);
                }
            }
            Op::Vote(t) => {
                let t = t.max(model.vote.unwrap_or(0));
                log.save_vote(&Vote::new(t, 1)).await.expect("vote");
                model.vote = Some(t);
            }
            Op::Reopen => {
                drop(log);
                log = open_log(&dir);
            }
        }
        check(&mut log, &model).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The log store behaves like the model, including across reopening.
    #[test]
    fn log_store_matches_model_across_reopen(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run_model(ops));
    }
}

#[tokio::test]
async fn snapshot_and_applied_state_survive_reopen() {
    let dir = TempDir::new().expect("temp dir");
    {
        let (_log, mut sm) = open(dir.path()).expect("open");
        sm.apply(vec![entry(1, 1), entry(1, 2), entry(1, 3)])
            .await
            .expect("apply");
        let mut builder = sm.get_snapshot_builder().await;
        let snap = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
            .await
            .expect("snapshot");
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(3));
        // Applied after the snapshot: lives in the log only, replayed by openraft at start.
        sm.apply(vec![entry(1, 4)]).await.expect("apply");
    }
    let (_log, mut sm) = open(dir.path()).expect("reopen");
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(
        applied.map(|l| l.index),
        Some(3),
        "reopened at the snapshot"
    );
    assert_eq!(
        sm.handle().read().state.cluster_time,
        3,
        "state restored with its applied id"
    );
    let current = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("a snapshot");
    assert_eq!(current.meta.last_log_id.map(|l| l.index), Some(3));
}

#[tokio::test]
async fn install_snapshot_replaces_the_whole_state() {
    let dir_a = TempDir::new().expect("temp dir");
    let dir_b = TempDir::new().expect("temp dir");
    let (_la, mut a) = open(dir_a.path()).expect("open a");
    let (lb, mut b) = open(dir_b.path()).expect("open b");
    a.apply(vec![entry(1, 1)]).await.expect("apply");
    b.apply(vec![entry(1, 1), entry(1, 2), entry(1, 3)])
        .await
        .expect("apply");
    let mut builder = a.get_snapshot_builder().await;
    let snap = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
        .await
        .expect("snapshot");
    b.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .expect("install");
    let (applied, _) = b.applied_state().await.expect("applied");
    assert_eq!(applied.map(|l| l.index), Some(1));
    assert_eq!(
        b.handle().read().state.cluster_time,
        1,
        "nothing of the old state survives"
    );
    drop((lb, b));
    let (_lb, mut b) = open(dir_b.path()).expect("reopen b");
    assert_eq!(
        b.applied_state().await.expect("applied").0.map(|l| l.index),
        Some(1),
        "installed snapshot persisted"
    );
}

#[test]
fn unknown_format_versions_are_refused() {
    let bytes = codec::encode(&42u64).expect("encode");
    assert_eq!(codec::decode::<u64>(&bytes).expect("decode"), 42);
    let mut newer = bytes.clone();
    newer[0] = 9;
    assert!(codec::decode::<u64>(&newer)
        .unwrap_err()
        .to_string()
        .contains("unknown format version 9"));
}
