//! The access file: its format, its validation, the rules it gives and their reload. Which
//! role a call needs and how a request is checked against the rules stay in `super`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use subtle::ConstantTimeEq;
use tonic::Status;

use super::{bearer, Caller, Role};

/// The shortest token accepted: 128 bits as hex.
const MIN_TOKEN_LEN: usize = 32;

/// How an access file marks a token given as its SHA-256 (64 hex digits follow).
pub const HASH_PREFIX: &str = "sha256:";

/// An access file that cannot be used, with the field and the reason.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("in {path}: {message}")]
    Parse { path: String, message: String },
    #[error("access {field}: {reason}")]
    Invalid { field: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    cluster_token: String,
    /// Whether the HTTP probes (`/metrics`, `/healthz`, `/readyz`) need a token too; by
    /// default they are open, as etcd's are, for scrapers and load balancers.
    #[serde(default)]
    protect_probes: bool,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    token: String,
}

/// The access rules a node enforces. `Access::open_to_all()` when no file is configured.
#[derive(Debug, Clone, Default)]
pub struct Access {
    rules: Option<Arc<Rules>>,
}

#[derive(Debug)]
struct Rules {
    cluster_token: String,
    /// Replaced whole on [`Access::reload`].
    tokens: RwLock<Arc<Vec<Known>>>,
    /// `protect_probes`, reloaded with the tokens.
    protect_probes: std::sync::atomic::AtomicBool,
}

/// An access file's content, validated.
struct Parsed {
    cluster_token: String,
    tokens: Vec<Known>,
    protect_probes: bool,
}

/// A client token as the node keeps it: its name, role and SHA-256.
#[derive(Debug)]
struct Known {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// The SHA-256 of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `sha256:<hex>`: how a token is written hashed in an access file.
pub fn hash_token(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(token_digest(token)))
}

/// An access file's `token` value (in clear, or `sha256:<64 hex digits>`) as its SHA-256.
fn entry_digest(token: &str) -> Result<[u8; 32], &'static str> {
    match token.strip_prefix(HASH_PREFIX) {
        Some(digits) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(digits, &mut out)
                .map_err(|_| "a `sha256:` token must be followed by 64 hex digits")?;
            Ok(out)
        }
        None => {
            check_secret(token)?;
            Ok(token_digest(token))
        }
    }
}

impl Access {
    /// No access control: every caller is an anonymous admin, nodes send no token.
    pub fn open_to_all() -> Self {
        Access { rules: None }
    }

    /// Reads and validates an access file.
    pub fn load(path: &Path) -> Result<Self, AccessError> {
        let text = read_access(path)?;
        Self::parse(&text).map_err(|e| at_path(e, path))
    }

    /// Parses and validates the text of an access file.
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let parsed = parse_rules(text)?;
        Ok(Access {
            rules: Some(Arc::new(Rules {
                cluster_token: parsed.cluster_token,
                tokens: RwLock::new(Arc::new(parsed.tokens)),
                protect_probes: parsed.protect_probes.into(),
            })),
        })
    }

    /// Reads the access file at `path` again and replaces the client tokens. Refused, with
    /// nothing changed, when the file is unusable, when it changes `cluster_token`, or when
    /// access control is off (turning it on takes a restart).
    pub fn reload(&self, path: &Path) -> Result<(), AccessError> {
        let Some(rules) = &self.rules else {
            return Err(AccessError::Invalid {
                field: "access".into(),
                reason: "access control is off on this node; turning it on takes a restart".into(),
            });
        };
        let text = read_access(path)?;
        let parsed = parse_rules(&text).map_err(|e| at_path(e, path))?;
        if !bool::from(
            parsed
                .cluster_token
                .as_bytes()
                .ct_eq(rules.cluster_token.as_bytes()),
        ) {
            return Err(AccessError::Invalid {
                field: "cluster_token".into(),
                reason: "cannot change while the node runs: restart every node to rotate it".into(),
            });
        }
        *rules.tokens.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(parsed.tokens);
        rules
            .protect_probes
            .store(parsed.protect_probes, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether the HTTP probes may be read without a token.
    pub fn probes_open(&self) -> bool {
        self.rules
            .as_ref()
            .is_none_or(|r| !r.protect_probes.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.rules.is_some()
    }

    /// The token this node shows other nodes, if any.
    pub fn cluster_token(&self) -> Option<&str> {
        self.rules.as_ref().map(|r| r.cluster_token.as_str())
    }

    /// Who presented `metadata`'s bearer token.
    pub(super) fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller, Status> {
        let Some(rules) = &self.rules else {
            return Ok(Caller::anonymous());
        };
        let token = bearer(metadata)?;
        let presented = token_digest(token);
        let tokens = rules
            .tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Every entry is compared, in constant time, so timing says nothing about the tokens.
        let mut found = None;
        for entry in tokens.iter() {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        match found {
            Some(entry) => Ok(Caller {
                name: entry.name.clone(),
                role: entry.role,
                authenticated: true,
            }),
            None => Err(Status::unauthenticated(
                "authorization: the bearer token is not known to this cluster",
            )),
        }
    }

    /// Whether `metadata` carries the cluster token (always true when access control is off).
    pub(super) fn is_peer(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(rules) = &self.rules else {
            return Ok(());
        };
        let refused =
            || Status::unauthenticated("authorization: node-to-node calls need the cluster token");
        let token = bearer(metadata).map_err(|_| refused())?;
        if bool::from(rules.cluster_token.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

fn read_access(path: &Path) -> Result<String, AccessError> {
    std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn at_path(e: AccessError, path: &Path) -> AccessError {
    match e {
        AccessError::Parse { message, .. } => AccessError::Parse {
            path: path.display().to_string(),
            message,
        },
        other => other,
    }
}

/// The cluster token and the client tokens of an access file's text, validated.
fn parse_rules(text: &str) -> Result<Parsed, AccessError> {
    let file: AccessFile = toml::from_str(text).map_err(|e| AccessError::Parse {
        path: "the access file".into(),
        message: e.message().to_owned(),
    })?;
    let invalid = |field: String, reason: &str| AccessError::Invalid {
        field,
        reason: reason.to_owned(),
    };
    if file.cluster_token.starts_with(HASH_PREFIX) {
        return Err(invalid(
            "cluster_token".into(),
            "must be in clear: nodes send it to each other (only client tokens may be hashed)",
        ));
    }
    check_secret(&file.cluster_token).map_err(|r| invalid("cluster_token".into(), r))?;
    let mut names = HashSet::new();
    let mut digests = HashSet::from([token_digest(&file.cluster_token)]);
    let mut known = Vec::with_capacity(file.tokens.len());
    for (i, entry) in file.tokens.into_iter().enumerate() {
        let name = entry.name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(invalid(
                format!("tokens[{i}].name"),
                "must be 1 to 128 characters",
            ));
        }
        if !names.insert(name.to_owned()) {
            return Err(invalid(format!("tokens[{i}].name"), "is used twice"));
        }
        let digest =
            entry_digest(&entry.token).map_err(|r| invalid(format!("tokens[{i}].token"), r))?;
        if !digests.insert(digest) {
            return Err(invalid(
                format!("tokens[{i}].token"),
                "is used twice (or equals cluster_token)",
            ));
        }
        known.push(Known {
            name: entry.name,
            role: entry.role,
            digest,
        });
    }
    Ok(Parsed {
        cluster_token: file.cluster_token,
        tokens: known,
        protect_probes: file.protect_probes,
    })
}

fn check_secret(secret: &str) -> Result<(), &'static str> {
    if secret.len() < MIN_TOKEN_LEN {
        return Err("must be at least 32 characters (e.g. `openssl rand -hex 16`)");
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces");
    }
    Ok(())
}
