//! Mutual TLS for every connection: node to node, and client to node.
//!
//! A node configured with `tls = { ca, cert, key }` (PEM files) serves only TLS, asks every
//! caller for a certificate signed by `ca`, and shows its own certificate, signed by the same
//! CA, when it calls other nodes. The certificate must name the host other nodes and clients
//! dial (the advertised address: a DNS name or an IP address in its subject alternative
//! names). Clients (the CLI's `--ca/--cert/--key`) do the same from their side. Health checks
//! go over the same TLS listener, so probes need a client certificate too.
//!
//! The server side is a [`ServerTls`]: on SIGHUP `rampart serve` reloads it from the same
//! files ([`ServerTls::reload`]) and every handshake after that shows the new certificate and
//! checks clients against the new CA; connections already open keep working. A file that
//! cannot be used leaves the old material in place. A node's own calls to other nodes keep
//! the certificate it started with until it restarts, so a rotation under a new CA keeps the
//! old CA in `ca` (both, concatenated) until every node has restarted.
//!
//! This module reads the files and builds tonic's and rustls' configurations; it never opens
//! a socket.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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
    pem: Pem,
}

/// The PEM files' contents, for rustls.
#[derive(Clone)]
struct Pem {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem { .. }")
    }
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
            ca: Certificate::from_pem(&ca),
            identity: Identity::from_pem(&cert, &key),
            pem: Pem { ca, cert, key },
        })
    }

    /// The server side as rustls runs it: our certificate chain and key; for gRPC a client
    /// certificate signed by our CA required and HTTP/2 only, for HTTP a client certificate
    /// optional (scrapers, probes and browsers rarely have one) and HTTP/1.1 or HTTP/2.
    fn rustls_server(&self, listener: Listener) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let bad = |field: &'static str| {
            move |e: &dyn std::fmt::Display| TlsError {
                field,
                reason: e.to_string(),
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.pem.ca.as_slice()) {
            let cert = cert.map_err(|e| bad("ca")(&e))?;
            roots.add(cert).map_err(|e| bad("ca")(&e))?;
        }
        let chain = rustls_pemfile::certs(&mut self.pem.cert.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("cert")(&e))?;
        let key = rustls_pemfile::private_key(&mut self.pem.key.as_slice())
            .map_err(|e| bad("key")(&e))?
            .ok_or_else(|| TlsError {
                field: "key",
                reason: "holds no PKCS#8, PKCS#1 or SEC1 private key".into(),
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        );
        let verifier = match listener {
            Listener::Grpc => verifier,
            Listener::Http => verifier.allow_unauthenticated(),
        }
        .build()
        .map_err(|e| bad("ca")(&e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("cert")(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| bad("cert")(&e))?;
        config.alpn_protocols = match listener {
            Listener::Grpc => vec![b"h2".to_vec()],
            Listener::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        Ok(Arc::new(config))
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

use tokio_rustls::rustls;

/// Which listener a server configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// gRPC: mutual TLS, HTTP/2.
    Grpc,
    /// HTTP (metrics, JSON API): client certificates optional, HTTP/1.1 and HTTP/2.
    Http,
}

/// A node's server side of TLS, reloadable: each handshake uses the newest configuration.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    listener: Listener,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

impl ServerTls {
    /// The gRPC listener's server side of `tls`; an error names the file that rustls refuses.
    pub fn new(tls: &Tls) -> Result<Self, TlsError> {
        Self::for_listener(tls, Listener::Grpc)
    }

    /// The server side of `tls` for `listener`.
    pub fn for_listener(tls: &Tls, listener: Listener) -> Result<Self, TlsError> {
        Ok(ServerTls {
            current: Arc::new(RwLock::new(tls.rustls_server(listener)?)),
            listener,
        })
    }

    /// Reads `files` again and uses them for every later handshake. On an error nothing
    /// changes.
    pub fn reload(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let config = Tls::load(files)?.rustls_server(self.listener)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// An acceptor with the current configuration (for one handshake).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
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
