//! `rampart certs` and `rampart token`: the secrets a secured cluster starts with, made where
//! it is deployed (an init container, a job, a drill) so none is ever committed.
//!
//! - `rampart certs --out DIR --node NAME[=SAN,...] --client NAME`: a CA (`ca.pem`, `ca.key`)
//!   and, signed by it, one certificate and key per node (`NAME.pem`, `NAME.key`, naming each
//!   SAN; `NAME` alone when none is given) and per client. Safe to run again: when every file
//!   asked for is there it does nothing; a DIR with a CA but missing files is refused (a new
//!   CA would not match the certificates already handed out).
//! - `rampart token new`: a fresh random token (256 bits, hex).
//! - `rampart token hash`: reads a token on stdin, prints `sha256:<hex>` for an access file.
//! - `rampart token access --out DIR --client NAME=ROLE`: an access file `DIR/access.toml`
//!   with a new cluster token and, per client, a new token stored there only as its hash and
//!   in clear in `DIR/token-NAME` for that client. Does nothing when `access.toml` exists.
//!
//! Keys and tokens are written with mode 0600.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::auth::{hash_token, Role};

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write the CA, certificates and keys into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// A node: its file name and the DNS names or IP addresses it is dialled at, e.g.
    /// `node1=node1,localhost,127.0.0.1` (just `node1` names only itself).
    #[arg(long = "node", value_name = "NAME[=SAN,...]")]
    pub nodes: Vec<String>,
    /// A client certificate (for the CLI, probes, drills), named NAME.
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print a new random token (64 hex digits).
    New,
    /// Read a token on stdin and print its `sha256:<hex>` form for the access file.
    Hash,
    /// Write an access file with new tokens under --out (nothing when it exists).
    Access(AccessArgs),
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Directory for `access.toml` and one `token-NAME` per client.
    #[arg(long)]
    pub out: PathBuf,
    /// A client token: its name and role (reader, ingester, operator, admin).
    #[arg(long = "client", value_name = "NAME=ROLE", required = true)]
    pub clients: Vec<String>,
}

/// A name usable as a file name and a certificate subject.
fn file_name(field: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if !ok {
        bail!("{field} `{name}`: must be 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`");
    }
    if name == "ca" {
        bail!("{field} `{name}`: `ca` is the CA's file name");
    }
    Ok(())
}

fn write_secret(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// The (name, SANs) of every certificate asked for, checked.
fn parse_parties(args: &CertsArgs) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut parties = Vec::new();
    for node in &args.nodes {
        let (name, sans) = match node.split_once('=') {
            Some((name, sans)) => (
                name,
                sans.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => (node.as_str(), vec![node.clone()]),
        };
        file_name("--node", name)?;
        if sans.is_empty() {
            bail!("--node `{node}`: names no host after `=`");
        }
        parties.push((name.to_owned(), sans));
    }
    for client in &args.clients {
        file_name("--client", client)?;
        parties.push((client.clone(), vec![client.clone()]));
    }
    let mut names: Vec<&String> = parties.iter().map(|(n, _)| n).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("`{}` is asked for twice", w[0]);
    }
    if parties.is_empty() {
        bail!("nothing to make: give --node and/or --client");
    }
    Ok(parties)
}

/// `rampart certs`.
pub fn certs(args: &CertsArgs) -> anyhow::Result<()> {
    let parties = parse_parties(args)?;
    let dir = &args.out;
    let ca_pem = dir.join("ca.pem");
    let wanted = |name: &str| {
        [
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        ]
    };
    if ca_pem.exists() {
        let missing: Vec<PathBuf> = parties
            .iter()
            .flat_map(|(n, _)| wanted(n))
            .filter(|p| !p.exists())
            .collect();
        if missing.is_empty() {
            outln!(
                "{}: every certificate is already there; nothing made",
                dir.display()
            );
            return Ok(());
        }
        bail!(
            "{} already holds a CA but not {}: remove the directory to make a new set",
            dir.display(),
            missing[0].display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rampart CA");
    let ca = ca_params.self_signed(&ca_key)?;
    for (name, sans) in &parties {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans.clone())
            .with_context(|| format!("`{name}`: a subject alternative name is not valid"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        let [pem, key_path] = wanted(name);
        write_public(&pem, cert.pem().as_bytes())?;
        write_secret(&key_path, key.serialize_pem().as_bytes())?;
    }
    write_secret(&dir.join("ca.key"), ca_key.serialize_pem().as_bytes())?;
    // Last, so a run that failed half-way is not taken for a complete set.
    write_public(&ca_pem, ca.pem().as_bytes())?;
    outln!(
        "{}: ca.pem and {} certificate(s) made",
        dir.display(),
        parties.len()
    );
    Ok(())
}

/// A new random token: 256 bits from the OS's generator, as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

fn parse_client(spec: &str) -> anyhow::Result<(String, Role)> {
    let (name, role) = spec
        .split_once('=')
        .with_context(|| format!("--client `{spec}`: expected NAME=ROLE"))?;
    file_name("--client", name)?;
    let role = match role {
        "reader" => Role::Reader,
        "ingester" => Role::Ingester,
        "operator" => Role::Operator,
        "admin" => Role::Admin,
        other => bail!(
            "--client `{spec}`: role `{other}` is not one of reader, ingester, operator, admin"
        ),
    };
    Ok((name.to_owned(), role))
}

/// `rampart token ...`.
pub fn token(cmd: &TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::New => outln!("{}", new_token()),
        TokenCmd::Hash => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the token on stdin")?;
            let token = text.trim();
            if token.is_empty() {
                bail!("no token on stdin (e.g. `printf %s \"$TOKEN\" | rampart token hash`)");
            }
            outln!("{}", hash_token(token));
        }
        TokenCmd::Access(args) => {
            let clients = args
                .clients
                .iter()
                .map(|c| parse_client(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let path = args.out.join("access.toml");
            if path.exists() {
                outln!("{} is already there; nothing made", path.display());
                return Ok(());
            }
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            let mut text = format!(
                "# Made by `rampart token access`; client tokens are stored as their SHA-256.\ncluster_token = \"{}\"\n",
                new_token()
            );
            for (name, role) in &clients {
                let token = new_token();
                write_secret(&args.out.join(format!("token-{name}")), token.as_bytes())?;
                text.push_str(&format!(
                    "\n[[tokens]]\nname = \"{name}\"\nrole = \"{}\"\ntoken = \"{}\"\n",
                    role.as_str(),
                    hash_token(&token)
                ));
            }
            // Checked as a node will read it, then written last (its presence means done).
            crate::auth::Access::parse(&text)?;
            write_secret(&path, text.as_bytes())?;
            outln!(
                "{}: access file and {} token(s) made",
                path.display(),
                clients.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_make_a_chain_and_refuse_to_mix_sets() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tls");
        let args = CertsArgs {
            out: out.clone(),
            nodes: vec!["node1=node1,127.0.0.1".into()],
            clients: vec!["admin".into()],
        };
        certs(&args).unwrap();
        for f in [
            "ca.pem",
            "ca.key",
            "node1.pem",
            "node1.key",
            "admin.pem",
            "admin.key",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let files = crate::tls::TlsFiles {
            ca: out.join("ca.pem"),
            cert: out.join("node1.pem"),
            key: out.join("node1.key"),
        };
        crate::tls::Tls::load(&files).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("node1.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(out.join("node1.pem")).unwrap();
        certs(&args).unwrap();
        assert_eq!(
            std::fs::read(out.join("node1.pem")).unwrap(),
            before,
            "kept"
        );
        let more = CertsArgs {
            clients: vec!["other".into()],
            ..args
        };
        let e = certs(&more).unwrap_err().to_string();
        assert!(e.contains("already holds a CA"), "{e}");
        for bad in ["../x", "ca", ""] {
            let e = certs(&CertsArgs {
                out: out.clone(),
                nodes: vec![bad.into()],
                clients: vec![],
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("--node"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_access_file_holds_hashes_and_each_client_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let args = AccessArgs {
            out: dir.path().into(),
            clients: vec!["chaos=admin".into(), "dash=reader".into()],
        };
        token(&TokenCmd::Access(args)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("access.toml")).unwrap();
        let chaos = std::fs::read_to_string(dir.path().join("token-chaos")).unwrap();
        assert_eq!(chaos.len(), 64);
        assert!(!text.contains(&chaos), "the client token is not in clear");
        assert!(text.contains(&hash_token(&chaos)));
        crate::auth::Access::parse(&text).unwrap();
        let e = parse_client("x=root").unwrap_err().to_string();
        assert!(e.contains("role `root`"), "{e}");
    }
}
