//! Security on for drills (`--secure`): a CA, certificates naming the addresses the drill's
//! nodes are dialled at, and an access file with a cluster token and one admin token for the
//! drill's clients (stored there as its SHA-256, as `rampart token access` writes it), so the
//! same invariants are checked with mutual TLS and tokens in the path. Made fresh for each
//! drill with rcgen under the drill's directory; nothing is reused or committed.
//!
//! Loopback ([`Secure::loopback`]): one certificate naming every loopback address, shared by
//! the nodes and the clients. Docker ([`Secure::compose`]): the layout `cluster/compose-*.yml`
//! mounts (`ca.pem`, `nodeI.pem`, `nodeI.key`, `access.toml`), one certificate per node, and a
//! client certificate of its own for the drill.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rampart::auth::Bearer;
use rampart::tls::{Tls, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::ClientTlsConfig;

/// The name of the drill clients' token: not the actor they type (`chaos`), so the nodes
/// record overrides as `operator:chaos (token drill)`, as they do for any operator.
pub const TOKEN_NAME: &str = "drill";

/// What a secured cluster's nodes are started with.
pub struct Secure {
    /// CA, certificate and key of the drill's clients (on loopback, the nodes' too).
    pub files: TlsFiles,
    /// The access file.
    pub access: PathBuf,
    token: String,
}

/// How the drill's clients reach a secured cluster.
#[derive(Clone)]
pub struct ClientSecurity {
    pub tls: ClientTlsConfig,
    pub bearer: Bearer,
}

fn secret() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

impl Secure {
    /// Writes the CA, a certificate for `hosts` (IP addresses or names) and the access file
    /// under `dir`, readable by the nodes' users.
    pub fn loopback(dir: &Path, hosts: Vec<String>) -> anyhow::Result<Self> {
        Self::create(dir, &[("node".into(), hosts)], "node")
    }

    /// The secrets directory a compose cluster mounts: `nodeI.pem`/`nodeI.key` for each
    /// `(I, names)` of `nodes` (the service name and address the node is dialled at), the CA,
    /// the access file, and `chaos.pem`/`chaos.key` for the drill's clients.
    pub fn compose(dir: &Path, nodes: &[(u64, Vec<String>)]) -> anyhow::Result<Self> {
        let mut parties: Vec<(String, Vec<String>)> = nodes
            .iter()
            .map(|(id, names)| (format!("node{id}"), names.clone()))
            .collect();
        parties.push(("chaos".into(), vec!["chaos".into()]));
        Self::create(dir, &parties, "chaos")
    }

    /// A CA, one certificate per `(name, SANs)` of `parties` (`name.pem`, `name.key`), and the
    /// access file; the clients use the certificate of `client`.
    fn create(dir: &Path, parties: &[(String, Vec<String>)], client: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart chaos CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca.pem())?;
        for (name, hosts) in parties {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(hosts.clone())?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name.as_str());
            let cert = params.signed_by(&key, &ca, &ca_key)?;
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem())?;
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
        }
        let files = TlsFiles {
            ca: ca_path,
            cert: dir.join(format!("{client}.pem")),
            key: dir.join(format!("{client}.key")),
        };
        let token = secret();
        let access = dir.join("access.toml");
        std::fs::write(
            &access,
            format!(
                "cluster_token = \"{}\"\n[[tokens]]\nname = \"{TOKEN_NAME}\"\nrole = \"admin\"\ntoken = \"{}\"\n",
                secret(),
                rampart::auth::hash_token(&token)
            ),
        )?;
        Ok(Secure {
            files,
            access,
            token,
        })
    }

    /// The drill clients' side: trust the CA, show the certificate, send the admin token.
    pub fn client(&self) -> anyhow::Result<ClientSecurity> {
        Ok(ClientSecurity {
            tls: Tls::load(&self.files).context("chaos TLS files")?.client(),
            bearer: Bearer::new(Some(&self.token))?,
        })
    }

    /// The `rampart serve` arguments that turn security on (loopback: the shared certificate).
    pub fn serve_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--access".into(),
            self.access.clone().into(),
            "--ca".into(),
            self.files.ca.clone().into(),
            "--cert".into(),
            self.files.cert.clone().into(),
            "--key".into(),
            self.files.key.clone().into(),
        ]
    }
}
