//! The real binary, three processes: a client ingests batches with idempotency keys (retrying
//! on errors) while the leader is killed with SIGKILL; a new leader decides; no acknowledged
//! batch is lost or counted twice; the killed node restarts from its disk and catches up to
//! the same decision log.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{rate, wait_until, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tempfile::TempDir;
use tonic::transport::Channel;

struct Proc {
    id: u64,
    addr: String,
    config: std::path::PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RAMPART_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rampart serve");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A lazily connecting channel: calls fail fast while the node is down.
fn lazy(endpoint: &str) -> Channel {
    rampart::consensus::network::endpoint(endpoint, None)
        .expect("endpoint")
        .timeout(Duration::from_secs(3))
        .connect_lazy()
}

async fn decisions(endpoint: &str) -> Option<Vec<pb::Decision>> {
    let mut gates = GatesClient::new(lazy(endpoint));
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |d: &pb::Decision| d.version);
        let request = pb::ListDecisionsRequest {
            gate: "fast".into(),
            after_version: after,
            limit: 1000,
            consistency: pb::Consistency::Local as i32,
        };
        let page = gates
            .list_decisions(request)
            .await
            .ok()?
            .into_inner()
            .decisions;
        if page.is_empty() {
            return Some(all);
        }
        all.extend(page);
    }
}

async fn leader_of(endpoint: &str) -> Option<u64> {
    let status = AdminClient::new(lazy(endpoint))
        .status(pb::StatusRequest {})
        .await
        .ok()?
        .into_inner();
    status.leader_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_mid_stream_loses_nothing_and_restarts_from_disk() {
    let dir = TempDir::new().expect("temp dir");
    let mut procs: Vec<Proc> = (1..=3)
        .map(|id| {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join(format!("node{id}.toml"));
            let text = format!(
                "id = {id}\nlisten = \"{addr}\"\ndata = \"{}\"\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\nevaluate_every_ms = 50\nsnapshot_every = 100\n",
                dir.path().join(format!("data{id}")).display()
            );
            std::fs::write(&config, text).expect("config");
            Proc { id, addr, config, child: None }
        })
        .collect();
    for p in &mut procs {
        p.spawn();
    }

    tracing::info!("--- initialise and apply the contract");
    let members: Vec<pb::Member> = procs
        .iter()
        .map(|p| pb::Member {
            id: p.id,
            addr: p.addr.clone(),
        })
        .collect();
    let first = procs[0].endpoint();
    wait_until(Duration::from_secs(20), "cluster initialised", || {
        let members = members.clone();
        let first = first.clone();
        async move {
            AdminClient::new(lazy(&first))
                .init(pb::InitRequest { members })
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    wait_until(Duration::from_secs(20), "contract applied", || {
        let first = first.clone();
        async move {
            let mut c = ContractsClient::new(lazy(&first));
            c.put_contract(pb::PutContractRequest {
                yaml: FAST_CONTRACT.into(),
                ..Default::default()
            })
            .await
            .ok()
            .map(|_| ())
        }
    })
    .await;

    tracing::info!("--- a client ingests with idempotency keys and retries");
    let endpoints: Vec<String> = procs.iter().map(Proc::endpoint).collect();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let client = tokio::spawn({
        let endpoints = endpoints.clone();
        let progress = progress.clone();
        async move {
            let mut acked: BTreeMap<String, u32> = BTreeMap::new();
            let started = Instant::now();
            let mut batch = 0u32;
            while started.elapsed() < Duration::from_secs(12) {
                let key = format!("batch-{batch}");
                let mut attempt = 0usize;
                loop {
                    // Round-robin over nodes: a dead node costs one failed attempt.
                    let endpoint = &endpoints[(batch as usize + attempt) % endpoints.len()];
                    let at = common::now_ms();
                    let signals = vec![
                        rate("fast", "error_rate", "mobile", true, at, 1, 150),
                        rate("fast", "error_rate", "mobile", false, at, 1, 150),
                    ];
                    let request = pb::IngestRequest {
                        idempotency_key: key.clone(),
                        signals,
                    };
                    match SignalsClient::new(lazy(endpoint)).ingest(request).await {
                        Ok(reply) => {
                            acked.insert(key.clone(), reply.into_inner().accepted);
                            break;
                        }
                        Err(_) => {
                            attempt += 1;
                            assert!(attempt < 200, "batch {key} never acknowledged");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                batch += 1;
                progress.store(batch, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            acked
        }
    });

    tracing::info!("--- kill -9 the leader mid-stream");
    wait_until(Duration::from_secs(20), "30 batches acknowledged", || {
        let done = progress.load(std::sync::atomic::Ordering::SeqCst) >= 30;
        async move { done.then_some(()) }
    })
    .await;
    let old_leader = wait_until(Duration::from_secs(10), "a leader", || {
        leader_of(&endpoints[0])
    })
    .await;
    let victim = procs
        .iter()
        .position(|p| p.id == old_leader)
        .expect("leader process");
    let killed_at = Instant::now();
    procs[victim].kill9();
    let survivor = endpoints[(victim + 1) % 3].clone();
    let failover = wait_until(
        Duration::from_secs(20),
        "a decision by a new leader",
        || {
            let survivor = survivor.clone();
            async move {
                let log = decisions(&survivor).await?;
                log.iter()
                    .any(|d| {
                        d.decided_by.starts_with("leader:")
                            && !d.decided_by.starts_with(&format!("leader:{old_leader}@"))
                    })
                    .then(|| killed_at.elapsed())
            }
        },
    )
    .await;
    println!(
        "failover: first decision by a new leader {failover:?} after kill -9 of node {old_leader}"
    );

    let acked = client.await.expect("client");
    let expected: u64 = acked.values().map(|a| u64::from(*a)).sum();
    println!(
        "acknowledged batches: {}, signals accepted: {expected}",
        acked.len()
    );

    tracing::info!("--- restart the killed node from its disk");
    procs[victim].spawn();
    let victim_endpoint = endpoints[victim].clone();
    let logs = wait_until(
        Duration::from_secs(30),
        "the restarted node caught up",
        || {
            let endpoints = endpoints.clone();
            async move {
                let mut logs = Vec::new();
                for e in &endpoints {
                    logs.push(decisions(e).await?);
                }
                let same = logs
                    .iter()
                    .all(|l| l.len() == logs[0].len() && !l.is_empty());
                same.then_some(logs)
            }
        },
    )
    .await;
    let versions = |l: &Vec<pb::Decision>| {
        l.iter()
            .map(|d| (d.version, d.action.clone(), d.decided_by.clone()))
            .collect::<Vec<_>>()
    };
    assert!(
        logs.iter().all(|l| versions(l) == versions(&logs[0])),
        "decision logs differ"
    );

    tracing::info!("--- no acknowledged batch lost, none counted twice, on every node");
    for e in endpoints.iter().chain(std::iter::once(&victim_endpoint)) {
        // LOCAL reads: each node's own applied state, waited on until it has caught up.
        let what = format!("node {e} counting exactly the {expected} acknowledged signals");
        wait_until(Duration::from_secs(20), &what, || {
            let e = e.clone();
            async move {
                let mut g = GatesClient::new(lazy(&e));
                let r = pb::GetGateRequest {
                    gate: "fast".into(),
                    consistency: pb::Consistency::Local as i32,
                };
                let counted = g.get_gate(r).await.ok()?.into_inner().signals_accepted;
                assert!(
                    counted <= expected,
                    "node {e} counted {counted} > {expected} acknowledged: a batch counted twice"
                );
                (counted == expected).then_some(())
            }
        })
        .await;
    }
}
