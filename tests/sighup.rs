//! SIGHUP, sent to a real `rampart serve` process, reloads its access file without a restart:
//! a token added to the file is taken, one removed from it is refused, and a file that no
//! longer reads keeps the old tokens (the node says why in its log and goes on serving).
//! (The certificate half of the reload is tested in process by tests/tls.rs.)

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait_until;
use rampart::auth::Bearer;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

const CLUSTER_TOKEN: &str = "cluster-0123456789abcdef0123456789abcdef";
const OLD: &str = "old-reader-0123456789abcdef0123456789abcdef";
const NEW: &str = "new-reader-0123456789abcdef0123456789abcdef";

fn access_file(readers: &[(&str, &str)]) -> String {
    let mut text = format!("cluster_token = \"{CLUSTER_TOKEN}\"\n");
    for (name, token) in readers {
        text.push_str(&format!(
            "[[tokens]]\nname = \"{name}\"\nrole = \"reader\"\ntoken = \"{token}\"\n"
        ));
    }
    text
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hangup(serve: &Serve) {
    let status = Command::new("kill")
        .args(["-HUP", &serve.0.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

/// What a ListGates call with `token` answers: Ok, or the refusal's code.
async fn list_with(channel: &Channel, token: &str) -> Result<(), Code> {
    let bearer = Bearer::new(Some(token)).expect("token");
    let mut gates = GatesClient::new(InterceptedService::new(channel.clone(), bearer));
    gates
        .list_gates(pb::ListGatesRequest {
            consistency: pb::Consistency::Local as i32,
        })
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_access_file_of_a_running_node() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let access = dir.path().join("access.toml");
    std::fs::write(&access, access_file(&[("old", OLD)])).expect("access file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--id", "1", "--listen", &addr, "--access"])
            .arg(&access)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("RAMPART_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rampart serve"),
    );
    let channel = rampart::consensus::network::endpoint(&format!("http://{addr}"), None)
        .expect("endpoint")
        .timeout(Duration::from_secs(2))
        .connect_lazy();
    wait_until(Duration::from_secs(20), "the node answers", || async {
        list_with(&channel, OLD).await.ok()
    })
    .await;
    assert_eq!(list_with(&channel, NEW).await, Err(Code::Unauthenticated));

    // The new token in, the old one out, then SIGHUP: the same process takes the new file.
    std::fs::write(&access, access_file(&[("new", NEW)])).expect("rewrite");
    hangup(&serve);
    wait_until(Duration::from_secs(10), "the new token taken", || async {
        list_with(&channel, NEW).await.ok()
    })
    .await;
    assert_eq!(list_with(&channel, OLD).await, Err(Code::Unauthenticated));

    // A file that does not read: the tokens stay as they were, and the log says why.
    std::fs::write(&access, "cluster_token = 7\n").expect("break the file");
    hangup(&serve);
    let log = dir.path().join("serve.log");
    wait_until(
        Duration::from_secs(10),
        "the refusal in the log",
        || async {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains("SIGHUP: not reloaded").then_some(())
        },
    )
    .await;
    assert_eq!(list_with(&channel, NEW).await, Ok(()));
    assert_eq!(list_with(&channel, OLD).await, Err(Code::Unauthenticated));
}
