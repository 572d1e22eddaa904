//! The `rampart` client commands against a 3-node cluster, through a follower (writes are
//! forwarded, reads retried while no leader is known): contract apply / get / list, signal
//! push (a bad line named by its line and field, a second push of the same file counted
//! once), gate get / list / evaluate, decisions, an override, cluster status and health, each
//! read back from its `--json` output.

mod common;

use std::process::Command;

use common::{now_ms, Cluster, FAST_CONTRACT};
use serde_json::Value;

fn rampart(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .env_remove("RAMPART_TOKEN")
        .env_remove("RAMPART_ENDPOINT")
        .output()
        .expect("run rampart");
    assert!(
        out.status.success(),
        "rampart {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json(endpoint: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = rampart(endpoint, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_commands_through_a_follower() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster
        .nodes
        .iter()
        .position(|n| n.node.id != leader)
        .expect("a follower");
    let endpoint = cluster.endpoint(follower);
    let dir = tempfile::TempDir::new().expect("temp dir");

    let contract = dir.path().join("fast.yaml");
    std::fs::write(&contract, FAST_CONTRACT).expect("contract file");
    let applied = json(&endpoint, &["contract", "apply", "-f", path(&contract)]);
    assert_eq!(applied["gate"], "fast");
    assert_eq!(applied["contract_version"], 1);
    let got = json(&endpoint, &["contract", "get", "fast"]);
    assert!(got["yaml"]
        .as_str()
        .is_some_and(|y| y.contains("error_rate")));
    let listed = json(&endpoint, &["contract", "list"]);
    assert_eq!(listed[0]["gate"], "fast", "{listed}");

    // Two good lines and one with a negative count, in a window still open.
    let at = rampart::engine::signal::format_time(now_ms() + 3_000);
    let line = |arm: &str, events: i64| {
        format!("{{\"gate\":\"fast\",\"cohort\":\"mobile\",\"arm\":\"{arm}\",\"metric\":\"error_rate\",\"at\":\"{at}\",\"events\":{events},\"trials\":200}}\n")
    };
    let signals = dir.path().join("signals.jsonl");
    let text = [
        line("treatment", 1),
        line("control", 2),
        line("control", -1),
    ]
    .concat();
    std::fs::write(&signals, text).expect("signal file");
    let pushed = json(&endpoint, &["signal", "push", "-f", path(&signals)]);
    assert_eq!(pushed["accepted"], 2, "{pushed}");
    assert_eq!(pushed["rejected"], 1, "{pushed}");
    assert_eq!(pushed["rejections"][0]["line"], 3, "{pushed}");
    assert_eq!(pushed["rejections"][0]["field"], "events", "{pushed}");
    assert_eq!(pushed["duplicate_batches"], 0, "{pushed}");
    let again = json(&endpoint, &["signal", "push", "-f", path(&signals)]);
    assert_eq!(
        again["duplicate_batches"], 1,
        "the same file counts once: {again}"
    );

    let gate = json(&endpoint, &["gate", "get", "fast"]);
    assert_eq!(gate["gate"], "fast", "{gate}");
    let gates = json(&endpoint, &["gate", "list", "--local"]);
    assert!(gates.as_array().is_some_and(|g| g.len() == 1), "{gates}");
    let assigned = json(
        &endpoint,
        &["gate", "evaluate", "fast", "user-7", "--cohort", "mobile"],
    );
    assert!(
        assigned["variant"] == "new" || assigned["variant"] == "old",
        "{assigned}"
    );

    let held = json(
        &endpoint,
        &[
            "override", "hold", "fast", "--actor", "sre", "--reason", "cli test",
        ],
    );
    let version = held["version"].as_u64().expect("version");
    let decisions = json(&endpoint, &["decisions", "fast"]);
    let found = decisions.as_array().expect("decisions").iter().any(|d| {
        d["version"].as_u64() == Some(version)
            && d["action"] == "override:hold"
            && d["reason"].as_str().is_some_and(|r| r.contains("cli test"))
    });
    assert!(found, "the hold at version {version} in {decisions}");

    let status = json(&endpoint, &["cluster", "status"]);
    assert_eq!(status["leader"], leader, "{status}");
    assert_eq!(rampart(&endpoint, &["health"]).trim(), "SERVING");
    cluster.stop().await;
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
