//! The fuzz targets' properties on stable: every committed corpus file (`fuzz/corpus/<target>/`)
//! and every crasher kept as a regression (`fuzz/regressions/<target>/`) is replayed through
//! the same property functions the nightly fuzz targets call (`fuzz/src/lib.rs`, included
//! here), so a regression fails `cargo test --workspace` without nightly or cargo-fuzz.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` (re)writes the generated binary
//! seeds (`seed-*` files of `proto_requests` and `store_records`) from today's encoders.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod props;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} holds no seed: the replay would test nothing"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| props::check(target, &data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} property (replay: cargo +nightly fuzz run {target} {})",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn contract_corpus() {
    replay("contract");
}

#[test]
fn signal_lines_corpus() {
    replay("signal_lines");
}

#[test]
fn proto_requests_corpus() {
    replay("proto_requests");
}

#[test]
fn store_records_corpus() {
    replay("store_records");
}

/// The generated seeds of the binary targets: valid encodings of real values, from which
/// the fuzzer mutates.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when an encoding changes"]
fn write_seeds() {
    seeds::proto_requests(&fuzz_dir().join("corpus/proto_requests"));
    seeds::store_records(&fuzz_dir().join("corpus/store_records"));
}

mod seeds {
    use std::collections::BTreeSet;
    use std::path::Path;

    use openraft::{BasicNode, Entry, EntryPayload, Membership, StoredMembership, Vote};
    use prost::Message;
    use rampart::api::convert::signal_to_proto;
    use rampart::consensus::TypeConfig;
    use rampart::engine::backtest::parse_signal_lines;
    use rampart::engine::Contract;
    use rampart::proto::v1 as pb;
    use rampart::state::{Command, Request, State};
    use rampart::store::codec;
    use serde::Serialize;

    const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");

    fn write(dir: &Path, name: &str, which: u8, body: &[u8]) {
        std::fs::create_dir_all(dir).expect("corpus dir");
        let mut data = vec![which];
        data.extend_from_slice(body);
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }

    fn signals() -> Vec<rampart::engine::Signal> {
        let text = include_str!("data/scenarios/regression-mobile-seed1.jsonl");
        let mut lines: Vec<&str> = text.lines().take(6).collect();
        // One of each measurement: a sketch, moments and an observation as well.
        lines.push(r#"{"gate":"checkout-v2","metric":"p99_latency","arm":"control","at":"2026-11-21T10:03:00.250Z","values":[0.1,0.2,0.0]}"#);
        lines.push(r#"{"gate":"checkout-v2","metric":"csat","cohort":"mobile","arm":"treatment","at":"2026-11-21T10:04:00Z","n":3,"sum":6.5,"sum_sq":15.25}"#);
        lines.push(r#"{"gate":"checkout-v2","metric":"review_sentiment","cohort":"web","arm":"treatment","at":"2026-11-21T10:03:10Z","value":-0.6,"confidence":0.91,"topics":["confusing"]}"#);
        let (signals, errors) = parse_signal_lines(&lines.join("\n"));
        assert!(errors.is_empty(), "{errors:?}");
        signals
    }

    pub fn proto_requests(dir: &Path) {
        let signals: Vec<pb::Signal> = signals().iter().map(signal_to_proto).collect();
        let ingest = pb::IngestRequest {
            idempotency_key: "batch-1".into(),
            signals,
        };
        write(dir, "ingest", 0, &ingest.encode_to_vec());
        let ov = pb::OverrideRequest {
            gate: "checkout-v2".into(),
            cohort: "mobile".into(),
            kind: pb::OverrideKind::SetExposure as i32,
            exposure: 12.5,
            actor: "sre".into(),
            reason: "canary".into(),
        };
        write(dir, "override", 1, &ov.encode_to_vec());
        let put = pb::PutContractRequest {
            yaml: CONTRACT.into(),
            ..Default::default()
        };
        write(dir, "put-contract", 2, &put.encode_to_vec());
        let evaluate = pb::EvaluateRequest {
            gate: "checkout-v2".into(),
            unit_id: "user-1".into(),
            cohort: "web".into(),
            consistency: 1,
        };
        write(dir, "evaluate", 3, &evaluate.encode_to_vec());
        let watch = pb::WatchRequest {
            gates: vec!["checkout-v2".into(), "search-v2".into()],
            after_version: [("checkout-v2".to_owned(), 7)].into_iter().collect(),
        };
        write(dir, "watch", 4, &watch.encode_to_vec());
        let member = |id, addr: &str| pb::Member {
            id,
            addr: addr.into(),
        };
        let init = pb::InitRequest {
            members: vec![member(1, "127.0.0.1:7001"), member(2, "127.0.0.1:7002")],
        };
        write(dir, "init", 5, &init.encode_to_vec());
        let learner = pb::AddLearnerRequest {
            member: Some(member(4, "node-4:7000")),
        };
        write(dir, "add-learner", 6, &learner.encode_to_vec());
        let get = pb::GetGateRequest {
            gate: "checkout-v2".into(),
            consistency: 2,
        };
        write(dir, "get-gate", 7, &get.encode_to_vec());
    }

    /// The body (MessagePack, named fields) that `codec` puts behind its header.
    fn body<T: Serialize>(value: &T) -> Vec<u8> {
        codec::encode_wire(value).expect("encode")[1..].to_vec()
    }

    #[derive(Serialize)]
    struct SnapshotFile<'a> {
        meta: &'a openraft::SnapshotMeta<u64, BasicNode>,
        state: &'a State,
    }

    pub fn store_records(dir: &Path) {
        const SEAL: u8 = 0x80;
        let contract = Contract::from_yaml(CONTRACT).expect("example contract");
        let put = Command::PutContract {
            contract: Box::new(contract),
        };
        let ingest = Command::Ingest {
            idempotency_key: "batch-1".into(),
            signals: signals(),
        };
        let mut state = State::default();
        let entries: Vec<Entry<TypeConfig>> = [put, ingest]
            .into_iter()
            .enumerate()
            .map(|(i, command)| {
                let request = Request {
                    at: 1_795_255_440_000 + i as i64,
                    command,
                };
                state.apply(&request);
                Entry {
                    log_id: openraft::testing::log_id(2, 1, i as u64 + 5),
                    payload: EntryPayload::Normal(request),
                }
            })
            .collect();
        let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
        let nodes = voters
            .iter()
            .map(|id| (*id, BasicNode::new(format!("127.0.0.1:700{id}"))))
            .collect::<std::collections::BTreeMap<_, _>>();
        let membership = Membership::new(vec![voters], nodes);
        let log_id = openraft::testing::log_id(2, 1, 6);
        let membership_entry: Entry<TypeConfig> = Entry {
            log_id: openraft::testing::log_id(2, 1, 4),
            payload: EntryPayload::Membership(membership.clone()),
        };
        let vote = Vote::new_committed(2, 1);

        write(dir, "entry-put", SEAL, &body(&entries[0]));
        write(dir, "entry-ingest", SEAL, &body(&entries[1]));
        write(dir, "entry-membership", SEAL, &body(&membership_entry));
        write(
            dir,
            "entry-v2",
            0,
            &codec::encode(&entries[0]).expect("encode"),
        );
        write(dir, "vote", SEAL | 1, &body(&vote));
        write(dir, "committed", SEAL | 2, &body(&Some(log_id)));
        write(dir, "purged", SEAL | 3, &body(&log_id));
        write(
            dir,
            "command",
            SEAL | 4,
            &body(&entries_command(&entries[1])),
        );
        let admin = rampart::node::admin::AdminCommand::AddLearner {
            id: 4,
            addr: "node-4:7000".into(),
        };
        write(dir, "admin-command", SEAL | 5, &body(&admin));
        let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(openraft::testing::log_id(2, 1, 4)),
            entries: entries.clone(),
            leader_commit: Some(log_id),
        };
        write(
            dir,
            "append-entries-v1",
            6,
            &codec::encode_wire(&append).expect("encode"),
        );
        let vote_request = openraft::raft::VoteRequest::new(vote, Some(log_id));
        write(dir, "vote-request", SEAL | 7, &body(&vote_request));
        let meta = openraft::SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(Some(log_id), membership),
            snapshot_id: "2-1-6-1".into(),
        };
        let install = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
            vote,
            meta: meta.clone(),
            offset: 0,
            data: b"RAMPSNAP".to_vec(),
            done: true,
        };
        write(dir, "install-snapshot", SEAL | 8, &body(&install));
        let file = SnapshotFile {
            meta: &meta,
            state: &state,
        };
        write(dir, "snapshot", SEAL | 9, &body(&file));
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        for version in [1, 2] {
            let dir_v = fixtures.join(format!("format-v{version}"));
            let snapshot = std::fs::read(dir_v.join("snapshot.bin")).expect("snapshot fixture");
            write(dir, &format!("snapshot-file-v{version}"), 9, &snapshot);
            let entries = std::fs::read(dir_v.join("entries.bin")).expect("entries fixture");
            write(dir, &format!("entries-v{version}"), 11, &entries);
        }
        let acked = std::fs::read(fixtures.join("format-v2/acked.bin")).expect("mark fixture");
        write(dir, "acked", 10, &acked);
    }

    fn entries_command(entry: &Entry<TypeConfig>) -> Command {
        match &entry.payload {
            EntryPayload::Normal(request) => request.command.clone(),
            _ => unreachable!("a normal entry"),
        }
    }
}
