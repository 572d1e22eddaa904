//! A real Prometheus server (Debian's `prometheus`, installed by `.ci/run`) scrapes a 3-node
//! cluster's `/metrics`: PromQL over its HTTP API finds exactly one leader and the decisions
//! counter rising, and the shipped alert rules load and fire on a kill switch.
//!
//! Without a `prometheus` binary the test says so and passes, unless
//! `RAMPART_REQUIRE_PROMETHEUS=1` (CI sets it), where a missing binary fails it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{now_ms, rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use serde_json::Value;

fn find(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(binary))
            .find(|p| p.is_file())
    })
}

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One instant-vector query's single value, if the result has exactly one series.
async fn query(client: &reqwest::Client, base: &str, promql: &str) -> Option<f64> {
    let reply: Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let result = reply["data"]["result"].as_array()?;
    match result.as_slice() {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_one_leader_and_rising_decisions() {
    let required = std::env::var("RAMPART_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
    let (Some(prometheus), Some(promtool)) = (find("prometheus"), find("promtool")) else {
        assert!(
            !required,
            "RAMPART_REQUIRE_PROMETHEUS=1 but no prometheus/promtool on PATH"
        );
        eprintln!("SKIPPED: no prometheus binary (apt-get install prometheus)");
        return;
    };
    let rules = repo("cluster/prometheus/alerts.yml");
    let check = Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "alert rules: {}",
        String::from_utf8_lossy(&check.stdout) + String::from_utf8_lossy(&check.stderr)
    );
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(repo("cluster/prometheus/prometheus.yml"))
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let cluster = Cluster::start_with(3, |c, _| {
        c.http = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let targets: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.http_addr.expect("http").to_string())
        .collect();
    let dir = cluster.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: rampart\n    static_configs:\n      - targets: {targets:?}\n",
            rules.display()
        ),
    )
    .expect("config");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // A gate with 1s windows and a producer, so decisions keep coming.
    let endpoint = cluster.endpoint(0);
    ContractsClient::new(cluster.channel(0).await)
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = stop.clone();
    let producer = tokio::spawn(async move {
        let mut signals = SignalsClient::new(common::channel(&endpoint).await);
        let mut n = 0u64;
        while !producing.load(std::sync::atomic::Ordering::SeqCst) {
            let at = now_ms();
            let batch = vec![
                rate("fast", "error_rate", "mobile", true, at, 1, 200),
                rate("fast", "error_rate", "mobile", false, at, 1, 200),
            ];
            let _ = signals
                .ingest(pb::IngestRequest {
                    idempotency_key: format!("prom-{n}"),
                    signals: batch,
                })
                .await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let client = reqwest::Client::new();
    wait_until(
        Duration::from_secs(60),
        "Prometheus scraping all three nodes",
        || async {
            (query(&client, &base, "sum(up{job=\"rampart\"})").await == Some(3.0)).then_some(())
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "exactly one leader in PromQL",
        || async {
            let leaders = query(&client, &base, "sum(rampart_server_is_leader)").await;
            let known = query(&client, &base, "sum(rampart_server_has_leader)").await;
            (leaders == Some(1.0) && known == Some(3.0)).then_some(())
        },
    )
    .await;
    let decisions = "max(sum by (instance) (rampart_decisions_total{gate=\"fast\"}))";
    let first = wait_until(Duration::from_secs(30), "decisions scraped", || async {
        query(&client, &base, decisions).await.filter(|v| *v > 0.0)
    })
    .await;
    wait_until(
        Duration::from_secs(30),
        "the decisions counter rising",
        || async {
            query(&client, &base, decisions)
                .await
                .filter(|v| *v > first)
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "windows judged by the leader",
        || async {
            query(&client, &base, "sum(rampart_windows_judged_total)")
                .await
                .filter(|v| *v > 0.0)
        },
    )
    .await;

    // A kill switch: the gauge on every node, and the shipped alert firing.
    OverridesClient::new(cluster.channel(1).await)
        .r#override(pb::OverrideRequest {
            gate: "fast".into(),
            kind: pb::OverrideKind::Kill as i32,
            actor: "test".into(),
            reason: "prometheus drill".into(),
            ..Default::default()
        })
        .await
        .expect("kill");
    wait_until(
        Duration::from_secs(30),
        "the kill switch on every node",
        || async {
            (query(
                &client,
                &base,
                "sum(rampart_gate_kill_switch{gate=\"fast\"})",
            )
            .await
                == Some(3.0))
            .then_some(())
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "RampartKillSwitchOn firing",
        || async {
            let alerts: Value = client
                .get(format!("{base}/api/v1/alerts"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            alerts["data"]["alerts"]
                .as_array()?
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == "RampartKillSwitchOn" && a["state"] == "firing"
                })
                .then_some(())
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    producer.await.expect("producer");
    cluster.stop().await;
}
