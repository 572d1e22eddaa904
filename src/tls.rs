//! Mutual TLS for every connection: node to node, and client to node.
//!
//! A node configured with `tls = { ca, cert, key }` (PEM files) serves only TLS, asks every
//! caller for a certificate signed by `ca`, and shows its own certificate, signed by the same
//! CA, when it calls other nodes. The certificate must name the host other nodes and clients
//! dial (the advertised address: a DNS name or an IP address in its subject alternative
//! names). Clients (the CLI's `--ca/--cert/--key`) do the same from their side. Health checks
//! go over the same TLS listener, so probes need a client certificate too.
//!
//! This module reads the files and builds tonic's configurations; it never opens a socket.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Where a node's or client's TLS material lives (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that signs every node's and client's certificate.
    pub ca: PathBuf,
    /// This party's certificate (chain), PEM.
    pub cert: PathBuf,
    /// This party's private key, PEM.
    pub key: PathBuf,
}

/// TLS material that could not be read, with the field and the reason.
#[derive(Debug, thiserror::Error)]
#[error("tls.{field}: {reason}")]
pub struct TlsError {
    pub field: &'static str,
    pub reason: String,
}

/// Loaded TLS material: a CA and this party's identity.
#[derive(Debug, Clone)]
pub struct Tls {
    ca: Certificate,
    identity: Identity,
}

fn read_pem(field: &'static str, path: &Path, marker: &str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError {
        field,
        reason: format!("reading {}: {e}", path.display()),
    })?;
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(TlsError {
            field,
            reason: format!("{} holds no PEM {marker}", path.display()),
        });
    }
    Ok(bytes)
}

impl Tls {
    /// Reads the three files; each must hold PEM of the right kind.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let ca = read_pem("ca", &files.ca, "CERTIFICATE")?;
        let cert = read_pem("cert", &files.cert, "CERTIFICATE")?;
        let key = read_pem("key", &files.key, "PRIVATE KEY")?;
        Ok(Tls {
            ca: Certificate::from_pem(ca),
            identity: Identity::from_pem(cert, key),
        })
    }

    /// The server side: our identity, and a client certificate from our CA required.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
    }

    /// The client side: trust only our CA, show our identity.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_wrong_files_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let files = |ca: &Path, cert: &Path, key: &Path| TlsFiles {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
        };
        let missing = dir.path().join("nope.pem");
        let e = Tls::load(&files(&missing, &pem, &pem)).unwrap_err();
        assert_eq!(e.field, "ca");
        let e = Tls::load(&files(&pem, &pem, &pem)).unwrap_err();
        assert_eq!(e.field, "key");
        assert!(e.reason.contains("PRIVATE KEY"), "{e}");
    }
}
