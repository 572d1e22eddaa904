//! Mutual TLS: a 3-node cluster whose nodes speak TLS to each other (they elect a leader and a
//! follower forwards a write), and clients that get in only with a certificate from the
//! cluster's CA. Certificates are made here with rcgen; no key is committed.

mod common;

use std::path::Path;

use common::{Cluster, FAST_CONTRACT};
use rampart::consensus::network::endpoint;
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::tls::{Tls, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::Channel;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed ca");
    Ca { cert, key }
}

/// Writes a certificate for 127.0.0.1/localhost signed by `ca`, and `ca`'s certificate, under
/// `dir` with `prefix`; returns the files.
fn issue(dir: &Path, prefix: &str, ca: &Ca) -> TlsFiles {
    let key = KeyPair::generate().expect("key");
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("p");
    let cert = params.signed_by(&key, &ca.cert, &ca.key).expect("signed");
    let files = TlsFiles {
        ca: dir.join(format!("{prefix}-ca.pem")),
        cert: dir.join(format!("{prefix}-cert.pem")),
        key: dir.join(format!("{prefix}-key.pem")),
    };
    std::fs::write(&files.ca, ca.cert.pem()).expect("write ca");
    std::fs::write(&files.cert, cert.pem()).expect("write cert");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");
    files
}

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
