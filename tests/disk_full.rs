//! A full disk is fatal and visible: when a node's Raft core stops on `No space left on
//! device`, the node reports NOT_SERVING on gRPC health, names the file in its error, and
//! `rampart serve` exits non-zero (for a supervisor to restart it) instead of living on with
//! an applied index that never moves again.
//!
//! A disk remounted read-only: the node refuses to start on it, naming the file and the cause.
//!
//! The disk is a small tmpfs filled to the last byte (or remounted read-only), so these tests
//! need root (mount); they say so and pass without checking anything when the mount is
//! refused, unless `RAMPART_REQUIRE_MOUNT=1` (as `.ci/run` sets), which makes that a failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{rate, wait_until, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A tmpfs mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            // CI runs as root and sets this: there, a refused mount is a failure, not a skip.
            assert_ne!(
                std::env::var("RAMPART_REQUIRE_MOUNT").as_deref(),
                Ok("1"),
                "RAMPART_REQUIRE_MOUNT=1 but a tmpfs cannot be mounted here"
            );
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system has no byte left.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.path().join("filler")).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "filling the tmpfs: {e}");
                break;
            }
        }
        // The last partial chunk: fill byte by byte.
        while f.write_all(&[0]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

fn batch(i: u32) -> pb::IngestRequest {
    let at = common::now_ms();
    pb::IngestRequest {
        idempotency_key: format!("disk-full-{i}"),
        signals: vec![rate("fast", "error_rate", "mobile", false, at, 1, 100)],
    }
}

async fn health(endpoint: &str) -> Option<ServingStatus> {
    let channel = rampart::consensus::network::endpoint(endpoint, None)
        .ok()?
        .timeout(Duration::from_secs(1))
        .connect_lazy();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(reply.into_inner().status).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_with_a_full_disk_stops_serving_and_says_why() {
    let Some(disk) = Tmpfs::mount(48) else {
        return;
    };
    let data: PathBuf = disk.path().join("node3");
    let cluster = Cluster::start_with(3, |config, _| {
        if config.id == 3 {
            config.data.clone_from(&data);
        }
    })
    .await;
    let third = &cluster.nodes[2];
    assert_eq!(third.node.id, 3);
    wait_until(Duration::from_secs(10), "node 3 SERVING", || async {
        (health(&third.endpoint()).await == Some(ServingStatus::Serving)).then_some(())
    })
    .await;
    let mut contracts = ContractsClient::new(cluster.channel(0).await);
    contracts
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");

    disk.fill();
    // Writes go on (two nodes are a quorum, even if node 3 led and has to be replaced);
    // node 3's next append hits the full disk.
    let leader_side = if cluster.wait_for_leader().await == 1 {
        1
    } else {
        0
    };
    let signals = SignalsClient::new(cluster.channel(leader_side).await);
    let mut fatal = third.node.fatal_signal();
    let reason = wait_until(
        Duration::from_secs(20),
        "node 3's raft core to stop",
        || {
            let i = rand_index();
            let request = batch(i);
            let mut signals = signals.clone();
            let reason = fatal.borrow_and_update().clone();
            async move {
                if reason.is_none() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), signals.ingest(request)).await;
                }
                reason
            }
        },
    )
    .await;
    eprintln!("node 3 stopped: {reason}");
    assert!(
        reason.contains("No space left on device"),
        "the error says why: {reason}"
    );
    assert!(
        reason.contains(&data.display().to_string()),
        "the error names the file: {reason}"
    );
    wait_until(Duration::from_secs(5), "node 3 NOT_SERVING", || async {
        (health(&third.endpoint()).await == Some(ServingStatus::NotServing)).then_some(())
    })
    .await;
    // The two others go on serving writes.
    let signals = SignalsClient::new(cluster.channel(0).await);
    wait_until(
        Duration::from_secs(20),
        "a write on the healthy pair",
        || {
            let request = batch(1_000_000 + rand_index());
            let mut signals = signals.clone();
            async move { signals.ingest(request).await.ok().map(|_| ()) }
        },
    )
    .await;
    cluster.stop().await;
}

fn rand_index() -> u32 {
    rand::random::<u32>() % 1_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_serve_exits_non_zero_when_its_disk_fills() {
    let Some(disk) = Tmpfs::mount(48) else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = disk.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "id = 1\nlisten = \"{addr}\"\ndata = \"{}\"\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n",
            disk.path().join("data").display()
        ),
    )
    .expect("config");
    let logs = tempfile::TempDir::new().expect("temp dir");
    let stderr = logs.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RAMPART_LOG", "error")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn rampart serve");
    let endpoint = format!("http://{addr}");
    wait_until(Duration::from_secs(20), "a single-node cluster", || async {
        let channel = rampart::consensus::network::endpoint(&endpoint, None)
            .ok()?
            .timeout(Duration::from_secs(2))
            .connect_lazy();
        AdminClient::new(channel)
            .init(pb::InitRequest { members: vec![] })
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    wait_until(Duration::from_secs(10), "SERVING", || async {
        (health(&endpoint).await == Some(ServingStatus::Serving)).then_some(())
    })
    .await;
    disk.fill();
    let contracts = ContractsClient::new(
        rampart::consensus::network::endpoint(&endpoint, None)
            .expect("endpoint")
            .timeout(Duration::from_secs(2))
            .connect_lazy(),
    );
    let status = wait_until(Duration::from_secs(20), "rampart serve to exit", || {
        let mut contracts = contracts.clone();
        let exited = child.try_wait().expect("try_wait");
        async move {
            if exited.is_none() {
                let _ = contracts
                    .put_contract(pb::PutContractRequest {
                        yaml: FAST_CONTRACT.into(),
                        ..Default::default()
                    })
                    .await;
            }
            exited
        }
    })
    .await;
    assert!(!status.success(), "exit status {status:?}");
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    eprintln!("rampart serve exited with {status}; its stderr:\n{log}");
    assert!(
        log.contains("No space left on device") && log.contains("ERROR"),
        "stderr says why at error level: {log}"
    );
}

/// A disk the kernel remounted read-only (as ext4's `errors=remount-ro` does after an I/O
/// error): the node, restarted on it, refuses to start with an error that names the file and
/// says why, instead of serving a state it can no longer make durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_on_a_read_only_disk_refuses_to_start_and_says_why() {
    let Some(disk) = Tmpfs::mount(48) else {
        return;
    };
    let data: PathBuf = disk.path().join("node3");
    let mut cluster = Cluster::start_with(3, |config, _| {
        if config.id == 3 {
            config.data.clone_from(&data);
        }
    })
    .await;
    ContractsClient::new(cluster.channel(0).await)
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("contract");
    cluster.wait_converged().await;
    let third = cluster.nodes.remove(2);
    let config = third.node.config.clone();
    third.stop().await.expect("stop node 3");
    // The kernel refuses (EBUSY) while a file is open for writing: wait for the stopped node's
    // last handles to close.
    let dir = disk.path().to_owned();
    wait_until(
        Duration::from_secs(20),
        "the tmpfs remounted read-only",
        || {
            let dir = dir.clone();
            async move {
                Command::new("mount")
                    .args(["-o", "remount,ro"])
                    .arg(&dir)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                    .then_some(())
            }
        },
    )
    .await;
    let refused = match rampart::server::start(config).await {
        Ok(running) => {
            running.stop().await.ok();
            panic!("node 3 started on a read-only disk");
        }
        Err(e) => format!("{e:#}"),
    };
    eprintln!("node 3 refused: {refused}");
    assert!(
        refused.contains("Read-only file system"),
        "the error says why: {refused}"
    );
    assert!(
        refused.contains(&data.display().to_string()),
        "the error names the file: {refused}"
    );
    // The two others go on serving writes.
    let signals = SignalsClient::new(cluster.channel(0).await);
    wait_until(
        Duration::from_secs(20),
        "a write on the healthy pair",
        || {
            let request = batch(2_000_000 + rand_index());
            let mut signals = signals.clone();
            async move { signals.ingest(request).await.ok().map(|_| ()) }
        },
    )
    .await;
    cluster.stop().await;
}
