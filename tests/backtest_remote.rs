//! The Backtest RPC (`Contracts/Backtest`) and `POST /v1/backtest` against a running cluster:
//! the same report as the local `rampart backtest` on the same files (`--remote` prints the
//! same bytes), the signals as JSON lines or as protobuf arrivals alike, unreadable lines
//! reported with their line and field while the rest are replayed, limits named by field, and
//! nothing stored.

#![allow(clippy::result_large_err)]

mod common;

use std::process::Command;

use common::{with_http, Cluster};
use rampart::api::convert::timestamp;
use rampart::engine::backtest::parse_arrivals;
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use serde_json::{json, Value};
use tonic::Code;

const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");

fn rampart(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
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
    (
        String::from_utf8(out.stdout).expect("UTF-8"),
        String::from_utf8(out.stderr).expect("UTF-8"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backtest_on_the_cluster_is_the_local_backtest() {
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let files = tempfile::tempdir().expect("dir");
    let (trace, _) = rampart(&["simulate", "regression-mobile", "--seed", "7"]);
    // One unreadable line in the middle: reported, the rest replayed.
    let mut lines: Vec<&str> = trace.lines().collect();
    let bad = r#"{"gate": "checkout-v2", "metric": "csat", "arm": "treatment", "at": "2026-01-01T00:00:00Z", "events": -1}"#;
    lines.insert(3, bad);
    let signals = files.path().join("trace.jsonl");
    std::fs::write(&signals, lines.join("\n")).expect("write");
    let contract = files.path().join("contract.yaml");
    std::fs::write(&contract, CONTRACT).expect("write");
    let (contract_arg, signals_arg) = (
        contract.to_str().expect("path"),
        signals.to_str().expect("path"),
    );
    let endpoint = cluster.endpoint(follower);
    for json in [true, false] {
        let mut local = vec![
            "backtest",
            "--contract",
            contract_arg,
            "--signals",
            signals_arg,
        ];
        if json {
            local.push("--json");
        }
        let mut remote = local.clone();
        remote.extend(["--remote", "--endpoint", &endpoint]);
        let (here, here_err) = rampart(&local);
        let (there, there_err) = rampart(&remote);
        assert_eq!(here, there, "--json {json}");
        assert_eq!(
            here_err, there_err,
            "the unreadable line, reported the same"
        );
        assert!(here_err.contains(":4: events"), "{here_err}");
    }
    let report: Value = serde_json::from_str(
        &rampart(&[
            "backtest",
            "--contract",
            contract_arg,
            "--signals",
            signals_arg,
            "--json",
        ])
        .0,
    )
    .expect("JSON");
    let rolled_back = report["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .any(|d| d["cohort"] == "mobile" && d["verdict"] == "rollback");
    assert!(rolled_back, "the regression in mobile rolls it back");

    // The same signals as protobuf arrivals: the same report, decisions with their evidence.
    let jsonl = lines.join("\n");
    let mut client = ContractsClient::new(cluster.channel(follower).await)
        .max_decoding_message_size(64 * 1024 * 1024);
    let by_lines = client
        .backtest(pb::BacktestRequest {
            yaml: CONTRACT.into(),
            arrivals: Vec::new(),
            jsonl: jsonl.clone(),
        })
        .await
        .expect("Backtest")
        .into_inner();
    assert_eq!(
        by_lines
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str()))
            .collect::<Vec<_>>(),
        [(4, "events")]
    );
    let (arrivals, _) = parse_arrivals(&jsonl);
    let arrivals = arrivals
        .iter()
        .map(|a| pb::BacktestArrival {
            signal: Some(rampart::api::convert::signal_to_proto(&a.signal)),
            received: a.received.map(timestamp),
        })
        .collect();
    let by_arrivals = client
        .backtest(pb::BacktestRequest {
            yaml: CONTRACT.into(),
            arrivals,
            jsonl: String::new(),
        })
        .await
        .expect("Backtest")
        .into_inner();
    assert!(by_arrivals.rejected.is_empty());
    assert_eq!(by_arrivals.report_json, by_lines.report_json);
    assert_eq!(by_arrivals.decisions, by_lines.decisions);
    let rollback = by_lines
        .decisions
        .iter()
        .find(|d| d.cohort == "mobile" && d.verdict == "rollback")
        .expect("the rollback");
    assert!(!rollback.evidence.is_empty(), "{rollback:?}");
    assert_eq!(
        by_lines.decisions.len(),
        report["decisions"].as_array().unwrap().len()
    );
    let mobile = by_lines
        .final_cohorts
        .iter()
        .find(|c| c.cohort == "mobile")
        .expect("mobile");
    assert_eq!(
        (mobile.exposure, mobile.status.as_str()),
        (0.0, "rolled_back")
    );

    // POST /v1/backtest: the same report, the unreadable line under `rejected`.
    let url = format!(
        "{}/v1/backtest",
        cluster.nodes[follower].http_url().expect("http")
    );
    let http: Value = reqwest::Client::new()
        .post(&url)
        .json(&json!({"contract": CONTRACT, "signals": jsonl}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(http["decisions"], report["decisions"]);
    assert_eq!(
        http["rejected"],
        json!([{"line": 4, "field": "events", "reason": http["rejected"][0]["reason"]}])
    );
    let refused = reqwest::Client::new()
        .post(&url)
        .json(&json!({"contract": "gate: x", "signals": ""}))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);

    // Limits and bad requests name the field.
    let far_apart = [
        r#"{"gate": "checkout-v2", "metric": "csat", "arm": "treatment", "at": "2020-01-01T00:00:00Z", "n": 10, "sum": 40.0, "sum_sq": 161.0}"#,
        r#"{"gate": "checkout-v2", "metric": "csat", "arm": "treatment", "at": "2026-01-01T00:00:00Z", "n": 10, "sum": 40.0, "sum_sq": 161.0}"#,
    ]
    .join("\n");
    let status = client
        .backtest(pb::BacktestRequest {
            yaml: CONTRACT.into(),
            arrivals: Vec::new(),
            jsonl: far_apart,
        })
        .await
        .expect_err("six years of 15-minute windows");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("jsonl:"), "{status:?}");
    let status = client
        .backtest(pb::BacktestRequest {
            yaml: CONTRACT.into(),
            arrivals: Vec::new(),
            jsonl: String::new(),
        })
        .await
        .expect_err("no signals");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = client
        .backtest(pb::BacktestRequest {
            yaml: "gate: x".into(),
            arrivals: Vec::new(),
            jsonl,
        })
        .await
        .expect_err("a bad contract");
    assert!(status.message().starts_with("contract:"), "{status:?}");

    // Nothing was stored: the cluster has no gate.
    let listed = client
        .list_contracts(pb::ListContractsRequest::default())
        .await
        .expect("ListContracts")
        .into_inner();
    assert!(listed.contracts.is_empty(), "{listed:?}");
    cluster.stop().await;
}
