//! Security on for loopback drills (`--secure`): a CA and one certificate naming every loopback
//! address a drill's nodes use, an access file with a cluster token and one admin token for the
//! drill's clients, so the same invariants are checked with mutual TLS and tokens in the path.
//! Made fresh for each drill with rcgen under the drill's directory; nothing is reused.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rampart::auth::Bearer;
use rampart::tls::{Tls, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::ClientTlsConfig;

/// What a secured cluster's nodes are started with.
pub struct Secure {
    /// CA, certificate and key; nodes and the drill's clients share the certificate.
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
    pub fn create(dir: &Path, hosts: Vec<String>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart chaos CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(hosts)?.signed_by(&key, &ca, &ca_key)?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
        };
        std::fs::write(&files.ca, ca.pem())?;
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        let token = secret();
        let access = dir.join("access.toml");
        std::fs::write(
            &access,
            format!(
                "cluster_token = \"{}\"\n[[tokens]]\nname = \"chaos\"\nrole = \"admin\"\ntoken = \"{token}\"\n",
                secret()
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

    /// The `rampart serve` arguments that turn security on.
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
