//! Certificates for TLS tests, made at test time with rcgen (no key is committed).

use std::path::Path;

use rampart::tls::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A certificate authority: its certificate and key.
pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

pub fn ca(name: &str) -> Ca {
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
pub fn issue(dir: &Path, prefix: &str, ca: &Ca) -> TlsFiles {
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
