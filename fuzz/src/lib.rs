//! The properties the fuzz targets check, one function per target, each taking the raw
//! input. They panic when a property fails (which libFuzzer reports as a crash).
//!
//! The fuzz targets (`fuzz_targets/`, nightly, cargo-fuzz) call them on generated inputs; the
//! main crate's `tests/fuzz_corpus.rs` (stable) includes this file with `#[path]` and replays
//! every committed corpus and regression file through them, so a regression fails
//! `cargo test --workspace`. Only rampart's public API and rampart's own dependencies are
//! used here, so both can compile it.

use rampart::engine::backtest::parse_arrivals;
use rampart::engine::contract::Contract;
use rampart::engine::signal::{format_time, SignalLine};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Inputs longer than this are skipped: every property is about shape, not size, and long
/// inputs only slow the fuzzer down.
pub const MAX_INPUT: usize = 64 * 1024;

/// The names of the targets, as directories under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: [&str; 4] = [
    "contract",
    "signal_lines",
    "proto_requests",
    "store_records",
];

/// Runs the property of `target` on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "contract" => contract(data),
        "signal_lines" => signal_lines(data),
        "proto_requests" => proto_requests(data),
        "store_records" => store_records(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// A YAML contract: an accepted contract serialises to YAML that parses to the same contract;
/// a refused one names at least one field, with a reason.
pub fn contract(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Contract::from_yaml(text) {
        Ok(contract) => {
            let yaml = serde_yaml::to_string(&contract).expect("a contract serialises");
            let again = Contract::from_yaml(&yaml)
                .unwrap_or_else(|e| panic!("re-parsing the written contract: {e}\n{yaml}"));
            assert_eq!(
                again, contract,
                "the contract changed on a round trip:\n{yaml}"
            );
            // Stored contracts travel as MessagePack in log entries and snapshots.
            let bytes = rampart::store::codec::encode(&contract).expect("encode");
            let back: Contract = rampart::store::codec::decode(&bytes).expect("decode");
            assert_eq!(
                back, contract,
                "the contract changed through the store codec"
            );
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "a refused contract with no error");
            for f in &e.0 {
                assert!(!f.field.is_empty(), "an error naming no field: {f:?}");
                assert!(!f.reason.is_empty(), "an error with no reason: {f:?}");
            }
        }
    }
}

/// A JSON-lines signal file: every line is either a signal or an error naming a field; each
/// signal written back as a line (with its `received` time) parses to the same signal.
pub fn signal_lines(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (arrivals, errors) = parse_arrivals(text);
    let counted = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(
        arrivals.len() + errors.len(),
        counted,
        "every line is a signal or an error"
    );
    for (line, e) in &errors {
        assert!(*line >= 1, "line numbers are 1-based");
        assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}");
    }
    for a in &arrivals {
        let mut line = SignalLine::from_signal(&a.signal);
        line.received = a.received.map(format_time);
        let written = serde_json::to_string(&line).expect("a line serialises");
        let (back, errors) = parse_arrivals(&written);
        assert!(errors.is_empty(), "re-reading {written}: {errors:?}");
        assert_eq!(back.len(), 1, "{written}");
        assert_eq!(
            back[0], *a,
            "the signal changed on a round trip through {written}"
        );
    }
}

/// Arbitrary bytes decoded with prost as one of the public API's requests (the first byte
/// chooses which), then converted to domain types as the handlers do: no panic, errors name
/// a field, and converted signals written back to protobuf convert to the same signal.
pub fn proto_requests(data: &[u8]) {
    use prost::Message;
    use rampart::api::convert;
    use rampart::api::error::ApiError;
    use rampart::proto::v1 as pb;

    fn named(e: &ApiError) {
        match e {
            ApiError::Invalid { field, reason } => {
                assert!(!field.is_empty() && !reason.is_empty(), "{e:?}");
            }
            other => panic!("a request's conversion failed with {other:?}, not a field error"),
        }
    }
    /// prost: what was decoded encodes to bytes that decode to the same message. (Not the
    /// same bytes: prost keeps `map` fields in a HashMap, whose order varies.) A NaN is not
    /// equal to itself, so a message holding one is compared by its encoded length.
    fn reencodes<M: Message + Default + PartialEq + std::fmt::Debug>(m: &M) {
        let bytes = m.encode_to_vec();
        let again = M::decode(bytes.as_slice()).expect("re-decoding an encoded message");
        if format!("{m:?}").contains("NaN") {
            assert_eq!(
                again.encoded_len(),
                bytes.len(),
                "a message changed on a round trip"
            );
        } else {
            assert_eq!(again, *m, "a message changed on a round trip");
        }
    }

    if data.len() > MAX_INPUT {
        return;
    }
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            let Ok(request) = pb::IngestRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            for raw in &request.signals {
                match convert::signal(raw) {
                    Ok(signal) => {
                        let proto = convert::signal_to_proto(&signal);
                        let back = convert::signal(&proto).unwrap_or_else(|e| {
                            panic!("a converted signal written back is refused: {e}")
                        });
                        assert_eq!(back, signal, "the signal changed on a round trip");
                        // And as a line of a signal file.
                        let line = serde_json::to_string(&SignalLine::from_signal(&signal))
                            .expect("a line serialises");
                        let (lines, errors) = parse_arrivals(&line);
                        assert!(errors.is_empty(), "re-reading {line}: {errors:?}");
                        assert_eq!(lines[0].signal, signal, "through {line}");
                    }
                    Err(e) => assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}"),
                }
            }
        }
        1 => {
            let Ok(request) = pb::OverrideRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            if let Err(e) = rampart::api::overrides::parse(&request) {
                named(&e);
            }
        }
        2 => {
            let Ok(request) = pb::PutContractRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            contract(request.yaml.as_bytes());
        }
        3 => {
            let Ok(request) = pb::EvaluateRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            if let Err(e) = convert::gate_key("gate", &request.gate) {
                named(&e);
            }
            if let Err(e) = convert::cohort_opt("cohort", &request.cohort) {
                named(&e);
            }
        }
        4 => {
            let Ok(request) = pb::WatchRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            match rampart::api::watch::parse_request(&request) {
                Ok((gates, resume)) => {
                    assert!(!gates.is_empty());
                    assert!(resume.keys().all(|g| gates.contains(g)));
                }
                Err(e) => named(&e),
            }
        }
        5 => {
            let Ok(request) = pb::InitRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            for (i, m) in request.members.iter().enumerate() {
                match rampart::api::admin::member(&format!("members[{i}]"), Some(m)) {
                    Ok((id, addr)) => assert!(id > 0 && !addr.is_empty()),
                    Err(e) => named(&e),
                }
            }
        }
        6 => {
            let Ok(request) = pb::AddLearnerRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            if let Err(e) = rampart::api::admin::member("member", request.member.as_ref()) {
                named(&e);
            }
        }
        _ => {
            let Ok(request) = pb::GetGateRequest::decode(body) else {
                return;
            };
            reencodes(&request);
            if let Err(e) = convert::gate_key("gate", &request.gate) {
                named(&e);
            }
        }
    }
}

/// What the store persists or receives from peers, decoded from arbitrary bytes (the first
/// byte chooses the type; its top bit seals the rest with a correct header and checksum, so
/// the fuzzer gets past the CRC to the decoder): decoding never panics, and a decoded value
/// encodes to bytes that decode and encode to the same bytes (`decode(encode(x)) == x`).
pub fn store_records(data: &[u8]) {
    use rampart::consensus::{Entry, LogId, TypeConfig};
    use rampart::store::codec;
    use rampart::store::mark::{Acked, LEN};

    if data.len() > MAX_INPUT {
        return;
    }
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let seal = which & 0x80 != 0;
    let sealed = |body: &[u8]| -> Vec<u8> {
        let mut out = vec![codec::FORMAT_V2];
        out.extend(crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(body);
        out
    };
    let bytes = if seal { sealed(body) } else { body.to_vec() };

    match (which & 0x7f) % 12 {
        0 => value::<Entry>(&bytes),
        1 => value::<openraft::Vote<u64>>(&bytes),
        2 => value::<Option<LogId>>(&bytes),
        3 => value::<LogId>(&bytes),
        4 => value::<rampart::state::Command>(&bytes),
        5 => value::<rampart::node::admin::AdminCommand>(&bytes),
        6 => value::<openraft::raft::AppendEntriesRequest<TypeConfig>>(&bytes),
        7 => value::<openraft::raft::VoteRequest<u64>>(&bytes),
        8 => value::<openraft::raft::InstallSnapshotRequest<TypeConfig>>(&bytes),
        9 => {
            let mut file = b"RAMPSNAP".to_vec();
            file.extend_from_slice(&bytes);
            snapshot(if seal { &file } else { body });
        }
        11 => value::<Vec<Entry>>(&bytes),
        _ => {
            let mut mark = body.to_vec();
            if seal && mark.len() == LEN {
                let crc = crc32fast::hash(&mark[..LEN - 4]);
                mark[LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            }
            match Acked::decode(&mark) {
                Ok(acked) => {
                    assert_eq!(
                        Acked::decode(&acked.encode()),
                        Ok(acked),
                        "a mark changed on a round trip"
                    );
                    assert_eq!(
                        acked.encode().as_slice(),
                        mark.as_slice(),
                        "a mark was accepted in bytes its encoder does not write"
                    );
                }
                Err(reason) => assert!(!reason.is_empty()),
            }
        }
    }

    fn value<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
        let verified = codec::verify(bytes);
        match codec::decode::<T>(bytes) {
            Ok(v) => {
                assert!(verified.is_ok(), "decoded bytes that verify refuses");
                let once = codec::encode(&v).expect("a decoded value encodes");
                let again: T = codec::decode(&once)
                    .unwrap_or_else(|e| panic!("decoding what was just encoded: {e}"));
                let twice = codec::encode(&again).expect("encode");
                assert_eq!(once, twice, "a value changed on a round trip");
                // The wire format (version 1) carries the same body.
                let wire = codec::encode_wire(&v).expect("encode_wire");
                assert_eq!(wire[1..], once[5..], "the wire and the disk bodies differ");
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    fn snapshot(file: &[u8]) {
        use rampart::store::state_machine::reencode_snapshot;
        if let Ok(once) = reencode_snapshot(file) {
            let twice = reencode_snapshot(&once)
                .unwrap_or_else(|e| panic!("decoding a snapshot just encoded: {e}"));
            assert_eq!(once, twice, "a snapshot changed on a round trip");
        }
    }
}
