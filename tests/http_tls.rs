//! The HTTP listener under TLS and limits: HTTPS with the node's certificate (client
//! certificates optional), a reload (SIGHUP's) that rotates that certificate without a
//! restart, and one rate-limit budget per caller across the HTTP and gRPC doors.

mod common;

use std::time::Instant;

use common::certs::{ca, issue, Ca};
use common::Cluster;
use rampart::auth::Bearer;
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;
use reqwest::StatusCode;
use tonic::service::interceptor::InterceptedService;

/// A fresh client (no pooled connection) trusting only `ca`, with no client certificate.
fn trusting(ca: &Ca) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).expect("root");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .use_rustls_tls()
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_node_certificate_rotated_by_a_reload() {
    let certs = tempfile::tempdir().expect("dir");
    let first = ca("first CA");
    let node_files = issue(certs.path(), "node", &first);
    let files = node_files.clone();
    let cluster = Cluster::start_with(1, move |config, _| {
        config.tls = Some(files.clone());
        config.http = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let base = cluster.nodes[0].http_url().expect("http listener");
    assert!(base.starts_with("https://"), "{base}");
    let readyz = format!("{base}/readyz");
    // No client certificate is needed on the HTTP listener (tokens authenticate).
    let answer = trusting(&first).get(&readyz).send().await.expect("https");
    assert_eq!(answer.status(), StatusCode::OK);
    // Plain HTTP to the TLS port gets no answer.
    let plain = readyz.replacen("https://", "http://", 1);
    let plain = reqwest::Client::new().get(&plain).send().await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served on the TLS listener"
    );
    // A client of another CA is refused in the handshake.
    let second = ca("second CA");
    assert!(trusting(&second).get(&readyz).send().await.is_err());

    // Rotate: the node's certificate from the second CA at the same paths, then reload.
    issue(certs.path(), "node", &second);
    let reloaded = cluster.nodes[0].reloader().reload().expect("reload");
    assert_eq!(reloaded, vec!["tls"]);
    let answer = trusting(&second)
        .get(&readyz)
        .send()
        .await
        .expect("the new certificate is served after the reload");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        trusting(&first).get(&readyz).send().await.is_err(),
        "the old certificate is still served"
    );
    cluster.stop().await;
}

const CLUSTER_TOKEN: &str = "cluster-0123456789abcdef0123456789abcdef";
const READER: &str = "reader-0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rate_limit_per_caller_over_http_and_grpc() {
    let cluster = Cluster::start_with(1, |config, dir| {
        let path = dir.join("access.toml");
        let access = format!(
            "cluster_token = \"{CLUSTER_TOKEN}\"\n[[tokens]]\nname = \"dashboard\"\nrole = \"reader\"\ntoken = \"{READER}\"\n"
        );
        std::fs::write(&path, access).expect("access file");
        config.access = Some(path);
        config.http = Some("127.0.0.1:0".parse().expect("addr"));
        config.rate_limit = Some(rampart::auth::RateLimit {
            per_second: 1,
            burst: 2,
        });
    })
    .await;
    let gates = format!("{}/v1/gates", cluster.nodes[0].http_url().expect("http"));
    let http = reqwest::Client::new();
    let channel = cluster.channel(0).await;
    let mut grpc = GatesClient::new(InterceptedService::new(
        channel,
        Bearer::new(Some(READER)).expect("token"),
    ));
    let list = pb::ListGatesRequest {
        consistency: pb::Consistency::Local as i32,
    };
    let started = Instant::now();
    let (mut http_ok, mut http_limited, mut grpc_ok, mut grpc_limited) = (0u64, 0u64, 0u64, 0u64);
    // Alternate the doors: the limiter must count both as the same caller.
    for _ in 0..10 {
        let answer = http
            .get(&gates)
            .bearer_auth(READER)
            .send()
            .await
            .expect("GET");
        match answer.status() {
            StatusCode::OK => http_ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let body: serde_json::Value = answer.json().await.expect("error body");
                assert_eq!(body["code"], "resource_exhausted", "{body}");
                assert!(
                    body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("token:dashboard")),
                    "{body}"
                );
                http_limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
        match grpc.list_gates(list).await {
            Ok(_) => grpc_ok += 1,
            Err(s) if s.code() == tonic::Code::ResourceExhausted => grpc_limited += 1,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // At most the burst plus what 1/s refilled, over both doors together.
    let allowed = 2.0 + elapsed.ceil() + 1.0;
    assert!(
        ((http_ok + grpc_ok) as f64) <= allowed,
        "{http_ok} HTTP + {grpc_ok} gRPC calls let through in {elapsed:.2}s"
    );
    assert!(
        http_limited > 0 && grpc_limited > 0,
        "both doors limited: {http_limited} {grpc_limited}"
    );
    // Probes are not metered against the caller's budget.
    let healthz = gates.replace("/v1/gates", "/healthz");
    let probe = http.get(&healthz).send().await.expect("probe");
    assert_eq!(probe.status(), StatusCode::OK);
    cluster.stop().await;
}
