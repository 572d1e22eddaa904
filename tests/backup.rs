//! Backup and restore of a whole cluster: `rampart snapshot save` on one cluster, `rampart
//! restore` into a fresh one, then every contract, gate and decision compared through the API
//! on every node of the new cluster, idempotency keys still answering as duplicates, and the
//! refusals (a cluster that is not fresh, a damaged file) naming why.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{now_ms, rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic::Code;

/// A gate whose windows do not close during the test (7-day windows, aligned to the epoch):
/// its whole state must match exactly.
const STEADY: &str = r#"
gate: steady
variants: { treatment: new, fallback: old }
ladder: [5, 25, 100]
stage_min_duration: 7d
window: 7d
cohorts: [mobile, desktop]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.5 }
"#;

fn rampart(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_remove("RAMPART_TOKEN")
        .output()
        .expect("run rampart");
    assert!(
        out.status.success(),
        "rampart {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn decisions(ch: tonic::transport::Channel, gate: &str) -> Vec<pb::Decision> {
    GatesClient::new(ch)
        .list_decisions(pb::ListDecisionsRequest {
            gate: gate.into(),
            after_version: 0,
            limit: 0,
            consistency: pb::Consistency::Linearizable as i32,
        })
        .await
        .expect("list decisions")
        .into_inner()
        .decisions
}

async fn gate(ch: tonic::transport::Channel, gate: &str) -> pb::GateState {
    let mut g = GatesClient::new(ch)
        .get_gate(pb::GetGateRequest {
            gate: gate.into(),
            consistency: pb::Consistency::Linearizable as i32,
        })
        .await
        .expect("get gate")
        .into_inner();
    g.read = None;
    g
}

async fn contracts(ch: tonic::transport::Channel) -> Vec<pb::ContractInfo> {
    ContractsClient::new(ch)
        .list_contracts(pb::ListContractsRequest {
            consistency: pb::Consistency::Linearizable as i32,
        })
        .await
        .expect("list contracts")
        .into_inner()
        .contracts
}

fn batch(key: &str, gate: &str, cohort: &str) -> pb::IngestRequest {
    pb::IngestRequest {
        idempotency_key: key.into(),
        signals: vec![
            rate(gate, "error_rate", cohort, true, now_ms(), 2, 100),
            rate(gate, "error_rate", cohort, false, now_ms(), 1, 100),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_fresh_cluster_with_every_gate_and_decision() {
    let source = Cluster::start(3).await;
    let mut put = ContractsClient::new(source.channel(0).await);
    for yaml in [STEADY, FAST_CONTRACT] {
        put.put_contract(pb::PutContractRequest {
            yaml: yaml.into(),
            ..Default::default()
        })
        .await
        .expect("put contract");
    }
    // Signals into the fast gate (its first 1 s window may open a moment after the put).
    let signals = SignalsClient::new(source.channel(1).await);
    let accepted_key = wait_until(Duration::from_secs(10), "a batch accepted", || {
        let mut signals = signals.clone();
        async move {
            let key = format!("fast-{}", now_ms());
            let reply = signals
                .ingest(batch(&key, "fast", "mobile"))
                .await
                .expect("ingest")
                .into_inner();
            (reply.accepted == 2).then_some(key)
        }
    })
    .await;
    let mut overrides = OverridesClient::new(source.channel(2).await);
    for (kind, cohort) in [
        (pb::OverrideKind::Hold, "desktop"),
        (pb::OverrideKind::Kill, ""),
    ] {
        overrides
            .r#override(pb::OverrideRequest {
                gate: "steady".into(),
                cohort: cohort.into(),
                kind: kind as i32,
                exposure: 0.0,
                actor: "test".into(),
                reason: "backup drill".into(),
            })
            .await
            .expect("override");
    }
    // The fast gate judges 1 s windows: wait for a few of its decisions.
    let ch = source.channel(0).await;
    wait_until(Duration::from_secs(20), "fast gate decisions", || {
        let ch = ch.clone();
        async move { (decisions(ch, "fast").await.len() >= 3).then_some(()) }
    })
    .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cluster.backup");
    let file_s = file.to_str().expect("utf-8 path");
    let saved = rampart(&[
        "--endpoint",
        &source.endpoint(1),
        "snapshot",
        "save",
        file_s,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&saved.stdout);
    assert!(stdout.contains("\"gates\": 2"), "{stdout}");
    let info = rampart(&["snapshot", "info", file_s, "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info json");
    let backup = rampart::store::backup::decode_backup(&std::fs::read(&file).expect("read"))
        .expect("decode");
    assert_eq!(info["gates"], 2);
    assert!(backup.state.signals_accepted >= 2);
    assert_eq!(info["signals_accepted"], backup.state.signals_accepted);
    let fast_version = backup
        .state
        .gates
        .values()
        .find(|g| g.contract.gate.as_str() == "fast")
        .expect("fast gate")
        .version;

    // The reference: the source's steady gate (static) and its decisions up to the backup.
    let steady_before = gate(source.channel(0).await, "steady").await;
    let steady_decisions = decisions(source.channel(0).await, "steady").await;
    let fast_decisions: Vec<pb::Decision> = decisions(source.channel(0).await, "fast")
        .await
        .into_iter()
        .filter(|d| d.version <= fast_version)
        .collect();
    let contracts_before = contracts(source.channel(0).await).await;
    source.stop().await;

    let target = Cluster::start(3).await;
    let restored = rampart(&[
        "--endpoint",
        &target.endpoint(2),
        "restore",
        file_s,
        "--json",
    ]);
    let restored: serde_json::Value = serde_json::from_slice(&restored.stdout).expect("json");
    assert_eq!(restored["gates"], 2, "{restored}");
    assert_eq!(
        restored["signals_accepted"], backup.state.signals_accepted,
        "{restored}"
    );

    for i in 0..3 {
        let steady = gate(target.channel(i).await, "steady").await;
        assert_eq!(steady, steady_before, "node {i}: the steady gate");
        assert!(steady.kill_switch, "node {i}: the kill switch survives");
        assert_eq!(
            decisions(target.channel(i).await, "steady").await,
            steady_decisions,
            "node {i}: steady decisions"
        );
        let fast: Vec<pb::Decision> = decisions(target.channel(i).await, "fast")
            .await
            .into_iter()
            .filter(|d| d.version <= fast_version)
            .collect();
        assert_eq!(
            fast, fast_decisions,
            "node {i}: fast decisions up to the backup"
        );
        assert_eq!(contracts(target.channel(i).await).await, contracts_before);
    }
    // Idempotency keys came along: a pipeline retrying a batch counts nothing twice.
    let again = SignalsClient::new(target.channel(0).await)
        .ingest(batch(&accepted_key, "fast", "mobile"))
        .await
        .expect("retry")
        .into_inner();
    assert!(again.duplicate, "{again:?}");

    // The cluster is no longer fresh: a second restore is refused, nothing changes.
    let mut admin = AdminClient::new(target.channel(1).await);
    let bytes = std::fs::read(&file).expect("read");
    let refused = restore_status(&mut admin, bytes.clone()).await;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("fresh"), "{refused:?}");
    let mut damaged = bytes;
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x10;
    let refused = restore_status(&mut admin, damaged).await;
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("checksum"), "{refused:?}");
    assert_eq!(
        refused
            .metadata()
            .get("rampart-field")
            .and_then(|v| v.to_str().ok()),
        Some("data")
    );
    assert_eq!(gate(target.channel(0).await, "steady").await, steady_before);
    target.stop().await;
}

async fn restore_status(
    admin: &mut AdminClient<tonic::transport::Channel>,
    bytes: Vec<u8>,
) -> tonic::Status {
    let chunks = vec![pb::BackupChunk { data: bytes }];
    match admin.restore(futures::stream::iter(chunks)).await {
        Err(status) => status,
        Ok(stream) => {
            let mut stream = stream.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => return status,
                    Ok(Some(p)) if p.done => panic!("restored: {p:?}"),
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the restore ended without an answer"),
                }
            }
        }
    }
}
