//! Clocks: a leader whose wall clock is 2 h fast or 30 min slow does not move cluster time
//! away from the voters' clocks; on-time signals are accepted and windows are judged; the
//! status call names the skew. In process: each node reads a shifted clock
//! (`OffsetClock`), so no libfaketime is needed (the chaos drill `clock-skew` does it with
//! real processes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{rate, test_config, wait_until, Cluster, FAST_CONTRACT};
use rampart::node::timekeeper::{OffsetClock, WallClock};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::signals_client::SignalsClient;

const HOUR: i64 = 3_600_000;

/// Starts three nodes, node i reading the system clock shifted by `offsets[i]`, and makes
/// node 1 the leader.
async fn skewed_cluster(offsets: [i64; 3]) -> Cluster {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut nodes = Vec::new();
    for (i, offset) in offsets.iter().enumerate() {
        let mut config = test_config(i as u64 + 1, dir.path());
        config.http = Some("127.0.0.1:0".parse().expect("addr"));
        let clock: Arc<dyn WallClock> = Arc::new(OffsetClock(*offset));
        nodes.push(
            rampart::server::start_with_clock(config, clock)
                .await
                .expect("start"),
        );
    }
    let members = nodes
        .iter()
        .map(|r| (r.node.id, r.addr.to_string()))
        .collect();
    nodes[0].node.init(members).await.expect("init");
    let cluster = Cluster { nodes, dir };
    wait_until(Duration::from_secs(20), "node 1 leads", || async {
        let leader = cluster.wait_for_leader().await;
        if leader != 1 {
            let _ = cluster.nodes[0].node.raft.trigger().elect().await;
            return None;
        }
        Some(())
    })
    .await;
    cluster
}

/// The cluster status seen from `from` (0-based) once node 1 leads again and reports
/// `limit`: under a loaded machine leadership may have moved, and a status call may time out.
async fn status_with_limit(
    cluster: &Cluster,
    from: usize,
    limit: &str,
) -> rampart::node::admin::ClusterView {
    wait_until(
        Duration::from_secs(20),
        "node 1 leads and names the limit",
        || async {
            let status = cluster.nodes[from].node.status().await;
            if status.leader != Some(1) {
                let _ = cluster.nodes[0].node.raft.trigger().elect().await;
                return None;
            }
            (status.time_limit == limit).then_some(status)
        },
    )
    .await
}

/// Sends on-time signals (stamped with the true clock) for `windows` judged windows and
/// checks cluster time on every node against the true clock all along.
async fn gate_keeps_working(cluster: &Cluster) {
    let mut contracts = ContractsClient::new(cluster.channel(1).await);
    contracts
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("put contract");
    let mut signals = SignalsClient::new(cluster.channel(2).await);
    let first_window = |c: &Cluster| {
        let s = c.nodes[0].node.state.read();
        s.state
            .gates
            .values()
            .next()
            .and_then(|g| g.cohorts.values().next().and_then(|c| c.last_window))
    };
    let mut started = None;
    let mut refused = Vec::new();
    let mut accepted = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    // Until four windows after the first are judged.
    loop {
        let now = common::now_ms();
        let batch = pb::IngestRequest {
            idempotency_key: format!("k{n}"),
            signals: vec![
                rate("fast", "error_rate", "mobile", true, now, 1, 100),
                rate("fast", "error_rate", "mobile", false, now, 1, 100),
            ],
        };
        n += 1;
        let outcome = signals.ingest(batch).await.expect("ingest").into_inner();
        accepted += outcome.accepted;
        // The gate's first window starts after the contract: signals before it do not count.
        refused.extend(
            outcome
                .rejected
                .into_iter()
                .map(|r| r.reason)
                .filter(|r| !r.contains("before the gate's first window")),
        );
        for running in &cluster.nodes {
            let time = running.node.state.read().state.cluster_time;
            let truth = common::now_ms();
            assert!(
                time <= truth + 1_000,
                "node {} cluster time {} ms ahead of the true clock",
                running.node.id,
                time - truth
            );
        }
        let last = first_window(cluster);
        started = started.or(last);
        let judged = match (started, last) {
            (Some(a), Some(b)) => (b - a) / 1_000,
            _ => 0,
        };
        if judged >= 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {judged} windows judged in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted > 0);
    // The first batch's idempotency key is still remembered (its expiry is by cluster time).
    let again = pb::IngestRequest {
        idempotency_key: "k0".into(),
        signals: vec![rate(
            "fast",
            "error_rate",
            "mobile",
            true,
            common::now_ms(),
            1,
            100,
        )],
    };
    let again = signals.ingest(again).await.expect("ingest").into_inner();
    assert!(again.duplicate, "the first key expired: {again:?}");
    // Signals sent in the last ~100ms of a window's grace may be late; none may be refused
    // as from the future, and nearly all are accepted.
    assert!(
        refused.iter().all(|r| !r.contains("ahead of cluster time")),
        "{refused:?}"
    );
    assert!(
        refused.len() * 10 <= accepted as usize,
        "{} refused, {accepted} accepted: {refused:?}",
        refused.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_two_hours_fast_does_not_move_cluster_time_ahead() {
    let cluster = skewed_cluster([2 * HOUR, 0, 0]).await;
    gate_keeps_working(&cluster).await;
    let status = status_with_limit(&cluster, 1, "leader_ahead").await;
    assert!(status.clock_skew, "{status:?}");
    let leader = status.nodes.iter().find(|n| n.id == 1).expect("node 1");
    let skew = leader.clock_skew_ms.expect("leader's skew");
    assert!((skew - 2 * HOUR).abs() < 1_000, "{skew}");
    // The same in the leader's metrics, and a follower sees the leader's time near its own.
    let on_leader = metrics(&cluster, 0).await;
    assert_eq!(
        sample(&on_leader, "rampart_clock_limit{limit=\"leader_ahead\"}"),
        Some(1.0),
        "{on_leader}"
    );
    assert_eq!(
        sample(&on_leader, "rampart_clock_limit{limit=\"none\"}"),
        Some(0.0)
    );
    let ahead = sample(&on_leader, "rampart_clock_offset_from_voters_seconds").expect("offset");
    assert!((ahead - 7200.0).abs() < 1.0, "{ahead}");
    let on_follower = metrics(&cluster, 1).await;
    let off = sample(
        &on_follower,
        "rampart_clock_offset_from_leader_seconds{leader=\"1\"}",
    )
    .expect("a follower's offset from the leader");
    assert!(off.abs() < 6.0, "{off}");
    assert_eq!(
        sample(&on_follower, "rampart_clock_limit{limit=\"none\"}"),
        None
    );
    cluster.stop().await;
}

async fn metrics(cluster: &Cluster, i: usize) -> String {
    let url = format!("{}/metrics", cluster.nodes[i].http_url().expect("HTTP"));
    reqwest::get(url)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// The value of the series named exactly `series` (name and labels) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_a_day_fast_expires_no_idempotency_key() {
    // More than the 24 h a key is remembered.
    let cluster = skewed_cluster([25 * HOUR, 0, 0]).await;
    gate_keeps_working(&cluster).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_half_an_hour_slow_still_judges_windows() {
    let cluster = skewed_cluster([-HOUR / 2, 0, 0]).await;
    gate_keeps_working(&cluster).await;
    let status = status_with_limit(&cluster, 0, "leader_behind").await;
    assert!(status.clock_skew, "{status:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_clocks_report_no_skew() {
    let cluster = skewed_cluster([0, 0, 0]).await;
    gate_keeps_working(&cluster).await;
    let status = cluster.nodes[2].node.status().await;
    assert!(!status.clock_skew, "{status:?}");
    assert!(status.time_limit.is_empty());
    assert!(status.nodes.iter().all(|n| n.clock_skew_ms.is_some()));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contract_put_right_after_init_starts_at_the_real_time() {
    // Before the leader has read a majority of clocks there is no cluster time; the first
    // entries wait for it instead of stamping 0 (a gate starting in 1970 would judge every
    // empty window since).
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut nodes = Vec::new();
    for id in 1..=3 {
        // Default timing, as `rampart dev` runs.
        let config = rampart::node::NodeConfig::new(
            id,
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join(format!("node{id}")),
        );
        nodes.push(rampart::server::start(config).await.expect("start"));
    }
    let members = nodes
        .iter()
        .map(|r| (r.node.id, r.addr.to_string()))
        .collect();
    nodes[0].node.init(members).await.expect("init");
    let cluster = Cluster { nodes, dir };
    // The moment there is a leader, before it has read its voters' clocks.
    let node = &cluster.nodes[0].node;
    let contract = rampart::engine::Contract::from_yaml(FAST_CONTRACT).expect("contract");
    wait_until(Duration::from_secs(20), "the contract written", || async {
        let put = rampart::state::Command::PutContract {
            contract: Box::new(contract.clone()),
        };
        match node.write(put).await {
            Ok(_) => Some(()),
            Err(e) if e.retryable() => None,
            Err(e) => panic!("put contract: {e}"),
        }
    })
    .await;
    let (first_window, contract_at) = {
        let state = node.state.read();
        let gate = state.state.gates.values().next().expect("the gate");
        (gate.first_window, gate.decisions[0].at)
    };
    let now = common::now_ms();
    assert!(
        (first_window - now).abs() < 60_000,
        "first window {} ms from now",
        first_window - now
    );
    assert!(contract_at > now - 60_000);
    cluster.stop().await;
}
