//! Shared harness for black-box tests: nodes on port 0 in temp dirs, gRPC clients, and
//! waiting on conditions with deadlines (never bare sleeps as synchronisation).

#![allow(dead_code)]

pub mod certs;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rampart::node::NodeConfig;
use rampart::proto::v1 as pb;
use rampart::server::RunningNode;
use tempfile::TempDir;
use tonic::transport::Channel;

/// An in-process cluster.
pub struct Cluster {
    pub nodes: Vec<RunningNode>,
    pub dir: TempDir,
}

/// A `start_with` configuration: an HTTP listener on a free port.
pub fn with_http(config: &mut NodeConfig, _: &std::path::Path) {
    config.http = Some("127.0.0.1:0".parse().expect("addr"));
}

/// Fast timers for tests.
pub fn test_config(id: u64, dir: &std::path::Path) -> NodeConfig {
    let mut c = NodeConfig::new(
        id,
        "127.0.0.1:0".parse().expect("addr"),
        dir.join(format!("node{id}")),
    );
    c.heartbeat_ms = 50;
    c.election_timeout_min_ms = 300;
    c.election_timeout_max_ms = 600;
    c.evaluate_every_ms = 50;
    c.snapshot_every = 200;
    c
}

impl Cluster {
    /// Starts `n` nodes and initialises them as one cluster.
    pub async fn start(n: u64) -> Cluster {
        Self::start_with(n, |_, _| {}).await
    }

    /// Starts `n` nodes, each configured by `configure` (given the cluster's temp dir too),
    /// and initialises them as one cluster.
    pub async fn start_with(
        n: u64,
        configure: impl Fn(&mut NodeConfig, &std::path::Path),
    ) -> Cluster {
        let dir = TempDir::new().expect("temp dir");
        let mut nodes = Vec::new();
        for id in 1..=n {
            let mut config = test_config(id, dir.path());
            configure(&mut config, dir.path());
            nodes.push(rampart::server::start(config).await.expect("start node"));
        }
        let members: BTreeMap<u64, String> = nodes
            .iter()
            .map(|r| (r.node.id, r.addr.to_string()))
            .collect();
        nodes[0].node.init(members).await.expect("init");
        let cluster = Cluster { nodes, dir };
        cluster.wait_for_leader().await;
        cluster
    }

    /// Waits until every node knows the same leader.
    pub async fn wait_for_leader(&self) -> u64 {
        wait_until(
            Duration::from_secs(20),
            "a leader known by every node",
            || async {
                let leaders: Vec<Option<u64>> =
                    self.nodes.iter().map(|n| n.node.leader_id()).collect();
                match leaders[0] {
                    Some(l) if leaders.iter().all(|x| *x == Some(l)) => Some(l),
                    _ => None,
                }
            },
        )
        .await
    }

    /// The position in `nodes` of node `id`.
    pub fn index_of(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|n| n.node.id == id)
            .expect("a node with that id")
    }

    /// The position in `nodes` of a node other than `leader`.
    pub fn follower(&self, leader: u64) -> usize {
        self.nodes
            .iter()
            .position(|n| n.node.id != leader)
            .expect("a follower")
    }

    /// `path` on node `i`'s HTTP listener (started with [`with_http`]).
    pub fn url(&self, i: usize, path: &str) -> String {
        format!(
            "{}{path}",
            self.nodes[i].http_url().expect("an HTTP listener")
        )
    }

    pub fn endpoint(&self, i: usize) -> String {
        self.nodes[i].endpoint()
    }

    pub async fn channel(&self, i: usize) -> Channel {
        channel(&self.endpoint(i)).await
    }

    /// Waits until every node has applied the same log index.
    pub async fn wait_converged(&self) {
        wait_until(
            Duration::from_secs(20),
            "every node applied the same index",
            || async {
                let applied: Vec<u64> = self
                    .nodes
                    .iter()
                    .map(|n| n.node.state.read().last_applied.map_or(0, |l| l.index))
                    .collect();
                (applied.iter().all(|a| *a == applied[0]) && applied[0] > 0).then_some(())
            },
        )
        .await;
    }

    pub async fn stop(self) {
        for n in self.nodes {
            n.stop().await.expect("stop");
        }
    }
}

pub async fn channel(endpoint: &str) -> Channel {
    Channel::from_shared(endpoint.to_owned())
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Polls `check` every 20ms until it returns Some, or panics naming `what` after `limit`.
pub async fn wait_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wall clock, epoch milliseconds.
pub fn now_ms() -> i64 {
    rampart::node::wall_clock_ms()
}

/// A rate signal at `at`.
pub fn rate(
    gate: &str,
    metric: &str,
    cohort: &str,
    treatment: bool,
    at: i64,
    events: u64,
    trials: u64,
) -> pb::Signal {
    pb::Signal {
        gate: gate.into(),
        metric: metric.into(),
        cohort: cohort.into(),
        arm: if treatment {
            pb::Arm::Treatment as i32
        } else {
            pb::Arm::Control as i32
        },
        at: Some(rampart::api::convert::timestamp(at)),
        measurement: Some(pb::signal::Measurement::Rate(pb::Rate { events, trials })),
    }
}

/// A fast contract for cluster tests: 1s windows, one guardrail with a 5% ceiling.
pub const FAST_CONTRACT: &str = r#"
gate: fast
variants: { treatment: new, fallback: old }
ladder: [10, 50, 100]
stage_min_duration: 1s
window: 1s
grace: 200ms
cohorts: [mobile]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.05 }
"#;
