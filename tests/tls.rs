//! Mutual TLS: a 3-node cluster whose nodes speak TLS to each other (they elect a leader and a
//! follower forwards a write), and clients that get in only with a certificate from the
//! cluster's CA. Certificates are made here with rcgen; no key is committed.

mod common;

use common::certs::{ca, issue};
use common::{Cluster, FAST_CONTRACT};
use rampart::consensus::network::endpoint;
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::tls::{Tls, TlsFiles};
use tonic::transport::Channel;

async fn connect(addr: &str, files: Option<&TlsFiles>) -> Result<Channel, String> {
    let tls = files.map(|f| Tls::load(f).expect("load").client());
    endpoint(addr, tls.as_ref())
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn list_contracts(channel: Channel) -> Result<pb::ListContractsResponse, tonic::Status> {
    ContractsClient::new(channel)
        .list_contracts(pb::ListContractsRequest::default())
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_clients_speak_mutual_tls() {
    let certs = tempfile::tempdir().expect("dir");
    let cluster_ca = ca("rampart test CA");
    let node_files = issue(certs.path(), "node", &cluster_ca);
    let client_files = issue(certs.path(), "client", &cluster_ca);
    let rogue_files = issue(certs.path(), "rogue", &ca("someone else's CA"));

    let cluster = Cluster::start_with(3, |config, _| config.tls = Some(node_files.clone())).await;
    // Elected over TLS; now a write through a follower is forwarded over TLS too.
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let addr = cluster.nodes[follower].addr.to_string();

    let channel = connect(&addr, Some(&client_files))
        .await
        .expect("a client with a certificate from the cluster's CA connects");
    ContractsClient::new(channel.clone())
        .put_contract(pb::PutContractRequest {
            yaml: FAST_CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("a contract through a follower, forwarded over TLS");
    let listed = list_contracts(channel).await.expect("list");
    assert_eq!(listed.contracts.len(), 1);

    // Plaintext: the handshake fails, nothing is answered.
    let plain = match connect(&addr, None).await {
        Ok(channel) => list_contracts(channel)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    assert!(plain.is_err(), "a plaintext client was answered");

    // TLS trusting the cluster's CA but showing a certificate from another CA: refused.
    let mut rogue = rogue_files.clone();
    rogue.ca = client_files.ca.clone();
    let refused = match connect(&addr, Some(&rogue)).await {
        Ok(channel) => list_contracts(channel)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    assert!(
        refused.is_err(),
        "a client with a foreign certificate was answered"
    );

    cluster.stop().await;
}

/// Health over `channel`, bounded: whether the call was answered.
async fn answers(channel: Channel) -> bool {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let call = health.check(tonic_health::pb::HealthCheckRequest::default());
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), call).await,
        Ok(Ok(_))
    )
}

/// ListContracts with `token` over `channel`, bounded: the status code.
async fn list_with(channel: Channel, token: &str) -> tonic::Code {
    let bearer = rampart::auth::Bearer::new(Some(token)).expect("bearer");
    let mut client = ContractsClient::with_interceptor(channel, bearer);
    let call = client.list_contracts(pb::ListContractsRequest::default());
    match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
        Ok(Ok(_)) => tonic::Code::Ok,
        Ok(Err(status)) => status.code(),
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}

/// SIGHUP's reload: the node's certificate is replaced by one from a new CA and the access file
/// by one with another (hashed) token. The connection opened before goes on; new clients get in
/// only with the new CA's certificates and the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_certificate_and_the_tokens_without_a_restart() {
    const OLD_TOKEN: &str = "0123456789abcdef0123456789abcdef-old";
    const NEW_TOKEN: &str = "0123456789abcdef0123456789abcdef-new";
    let certs = tempfile::tempdir().expect("dir");
    let first = ca("first CA");
    let node_files = issue(certs.path(), "node", &first);
    let old_client = issue(certs.path(), "old-client", &first);
    let access = certs.path().join("access.toml");
    let access_file = |token: &str| {
        format!(
            "cluster_token = \"cccccccccccccccccccccccccccccccc\"\n[[tokens]]\nname = \"ops\"\nrole = \"admin\"\ntoken = \"{token}\"\n"
        )
    };
    std::fs::write(&access, access_file(OLD_TOKEN)).expect("access");
    let (files, path) = (node_files.clone(), access.clone());
    let cluster = Cluster::start_with(1, move |config, _| {
        config.tls = Some(files.clone());
        config.access = Some(path.clone());
    })
    .await;
    let addr = cluster.nodes[0].addr.to_string();
    let open = connect(&addr, Some(&old_client)).await.expect("connects");
    assert_eq!(list_with(open.clone(), OLD_TOKEN).await, tonic::Code::Ok);

    // Rotate: new CA, new node certificate at the same paths, the token replaced by a hash.
    let second = ca("second CA");
    issue(certs.path(), "node", &second);
    let new_client = issue(certs.path(), "new-client", &second);
    std::fs::write(&access, access_file(&rampart::auth::hash_token(NEW_TOKEN))).expect("access");
    let reloaded = cluster.nodes[0].reloader().reload().expect("reload");
    assert_eq!(reloaded, vec!["tls", "access"]);

    // The connection made before the reload still answers (a new one could not be made with
    // the first CA), now with the new token only.
    assert!(answers(open.clone()).await, "the open connection was cut");
    assert_eq!(list_with(open.clone(), NEW_TOKEN).await, tonic::Code::Ok);
    assert_eq!(
        list_with(open, OLD_TOKEN).await,
        tonic::Code::Unauthenticated
    );
    // New handshakes show the new certificate: a client of the new CA gets in...
    let fresh = connect(&addr, Some(&new_client))
        .await
        .expect("a client of the new CA connects after the reload");
    assert_eq!(list_with(fresh, NEW_TOKEN).await, tonic::Code::Ok);
    // ...and a client of the first CA no longer does.
    let stale = match connect(&addr, Some(&old_client)).await {
        Ok(channel) => answers(channel).await,
        Err(_) => false,
    };
    assert!(
        !stale,
        "a client of the old CA was answered after the reload"
    );

    // Unusable files are refused and change nothing.
    std::fs::write(&node_files.key, "not a key").expect("damage key");
    let errors = cluster.nodes[0].reloader().reload().expect_err("bad key");
    assert!(errors.iter().any(|e| e.contains("tls.key")), "{errors:?}");
    let again = connect(&addr, Some(&new_client))
        .await
        .expect("still serving");
    assert!(answers(again).await);
    cluster.stop().await;
}
