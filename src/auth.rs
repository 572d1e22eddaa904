//! Who may call what: bearer tokens with roles for clients, a cluster token between nodes.
//!
//! The access file (TOML, the same on every node, named by the node config's `access`) lists
//! the cluster token and one entry per client token:
//!
//! ```toml
//! cluster_token = "a long random secret shared by the nodes"
//!
//! [[tokens]]
//! name = "deploy-controller-eu"   # recorded with every override made with this token
//! role = "operator"               # reader < ingester < operator < admin
//! token = "another long random secret"
//!
//! [[tokens]]
//! name = "dashboard"
//! role = "reader"
//! # the SHA-256 of the token instead of the token: `rampart token hash` (reads the token on
//! # stdin), or `printf %s "$TOKEN" | sha256sum`, with `sha256:` before the 64 hex digits
//! token = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! A token in clear and a hashed one work the same: the node hashes the presented token and
//! compares it, in constant time, with every entry's hash. The cluster token stays in clear
//! (nodes send it to each other). A hashed entry cannot be checked for length: hash tokens of
//! at least 32 random characters (`rampart token new`).
//!
//! On SIGHUP `rampart serve` reads the access file again ([`Access::reload`]): the client
//! tokens are replaced at once for new calls; a changed `cluster_token` is refused (the old
//! rules stay) because every node must change it together, by restarting.
//!
//! Roles nest: a reader reads gates, contracts, decisions and cluster status and evaluates;
//! an ingester also pushes signals; an operator also changes contracts and overrides gates;
//! an admin also changes membership. Health and reflection need no token (probes use them).
//! Without an access file every caller is an anonymous admin, as in `rampart dev`.
//!
//! A node may also limit how often each caller calls (`rate_limit` in the node config): per
//! token, or per client IP address without access control. Over the limit a call gets
//! RESOURCE_EXHAUSTED; node-to-node calls are never limited.
//!
//! This module owns the file format and the checks; it never decides what a call does.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The shortest token accepted: 128 bits as hex.
const MIN_TOKEN_LEN: usize = 32;

/// How an access file marks a token given as its SHA-256 (64 hex digits follow).
pub const HASH_PREFIX: &str = "sha256:";

/// What a caller may do. Ordered: each role can do everything the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Ingester,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Ingester => "ingester",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The authenticated caller of a request, put in its extensions by [`Authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; `anonymous` when access control is off.
    pub name: String,
    pub role: Role,
    /// Whether the caller showed a token (access control is on).
    pub authenticated: bool,
}

impl Caller {
    fn anonymous() -> Self {
        Caller {
            name: "anonymous".into(),
            role: Role::Admin,
            authenticated: false,
        }
    }
}

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
    fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller, Status> {
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
    fn is_peer(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
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

fn bearer(metadata: &tonic::metadata::MetadataMap) -> Result<&str, Status> {
    let value = metadata
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("authorization: a bearer token is required"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| Status::unauthenticated("authorization: expected `Bearer <token>`"))
}

/// How many calls one caller may make: a sustained rate and a burst (token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls per second, sustained.
    pub per_second: u32,
    /// Calls allowed at once above the sustained rate.
    pub burst: u32,
}

impl RateLimit {
    /// The field and reason when the limit cannot work.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.per_second == 0 {
            return Err(("rate_limit.per_second", "must be positive"));
        }
        if self.burst == 0 {
            return Err(("rate_limit.burst", "must be positive"));
        }
        Ok(())
    }
}

type KeyedLimiter = governor::DefaultKeyedRateLimiter<String>;

/// Server side: authenticates a public API call, records its [`Caller`], and applies the
/// per-caller rate limit (callers are tokens, or client IP addresses without access control).
#[derive(Clone)]
pub struct Authenticate {
    access: Access,
    limiter: Option<Arc<KeyedLimiter>>,
}

impl Authenticate {
    /// Authentication by `access`; at most `limit` calls per caller when given (a limit that
    /// fails [`RateLimit::check`] is treated as no limit; the node config refuses it earlier).
    pub fn new(access: Access, limit: Option<RateLimit>) -> Self {
        let limiter = limit.and_then(|l| {
            let rate = std::num::NonZeroU32::new(l.per_second)?;
            let burst = std::num::NonZeroU32::new(l.burst)?;
            let quota = governor::Quota::per_second(rate).allow_burst(burst);
            Some(Arc::new(governor::RateLimiter::keyed(quota)))
        });
        Authenticate { access, limiter }
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.access.caller(request.metadata())?;
        if let Some(limiter) = &self.limiter {
            let key = if caller.authenticated {
                format!("token:{}", caller.name)
            } else {
                request
                    .remote_addr()
                    .map_or_else(|| "unknown".to_owned(), |a| format!("ip:{}", a.ip()))
            };
            if limiter.check_key(&key).is_err() {
                return Err(Status::resource_exhausted(format!(
                    "rate limit: {key} is over this node's per-caller limit; slow down and retry"
                )));
            }
        }
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// Server side: lets only nodes of the cluster call the node-to-node service.
#[derive(Debug, Clone)]
pub struct PeerGuard(pub Access);

impl Interceptor for PeerGuard {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.0.is_peer(request.metadata())?;
        Ok(request)
    }
}

/// Client side: adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Debug, Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A bearer for `token`; an error when the token cannot be a header value.
    pub fn new(token: Option<&str>) -> Result<Self, AccessError> {
        match token {
            None => Ok(Bearer(None)),
            Some(t) => MetadataValue::try_from(format!("Bearer {}", t.trim()))
                .map(|v| Bearer(Some(v)))
                .map_err(|_| AccessError::Invalid {
                    field: "token".into(),
                    reason: "must be printable ASCII".into(),
                }),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The caller of a request, if it may act as `needed`; PERMISSION_DENIED naming the role
/// otherwise. `what` says what the call does, for the message.
pub fn authorize<T>(request: &Request<T>, needed: Role, what: &str) -> Result<Caller, Status> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("the request was not authenticated"))?;
    if caller.role >= needed {
        Ok(caller)
    } else {
        Err(Status::permission_denied(format!(
            "authorization: token '{}' has role {}; {what} needs {} or above",
            caller.name,
            caller.role.as_str(),
            needed.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "cccccccccccccccccccccccccccccccc";
    const READER: &str = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";

    fn access() -> Access {
        Access::parse(&format!(
            "cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"dash\"\nrole = \"reader\"\ntoken = \"{READER}\"\n"
        ))
        .unwrap()
    }

    fn with_token(token: Option<&str>) -> Request<()> {
        let mut bearer = Bearer::new(token).unwrap();
        bearer.call(Request::new(())).unwrap()
    }

    #[test]
    fn a_known_token_gets_its_role_and_nothing_above() {
        let mut auth = Authenticate::new(access(), None);
        let request = auth.call(with_token(Some(READER))).unwrap();
        let caller = authorize(&request, Role::Reader, "reading").unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("dash", Role::Reader));
        let denied = authorize(&request, Role::Ingester, "ingesting signals").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("needs ingester"), "{denied:?}");
    }

    #[test]
    fn missing_unknown_and_cluster_tokens_are_refused_for_clients() {
        let mut auth = Authenticate::new(access(), None);
        for token in [None, Some("nope"), Some(CLUSTER)] {
            let status = auth.call(with_token(token)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{token:?}");
        }
    }

    #[test]
    fn only_the_cluster_token_opens_the_peer_service() {
        let mut guard = PeerGuard(access());
        assert!(guard.call(with_token(Some(CLUSTER))).is_ok());
        assert!(guard.call(with_token(Some(READER))).is_err());
        assert!(guard.call(with_token(None)).is_err());
        let mut open = PeerGuard(Access::open_to_all());
        assert!(open.call(with_token(None)).is_ok());
    }

    #[test]
    fn without_an_access_file_everyone_is_an_anonymous_admin() {
        let mut auth = Authenticate::new(Access::open_to_all(), None);
        let request = auth.call(with_token(None)).unwrap();
        let caller = authorize(&request, Role::Admin, "changing membership").unwrap();
        assert!(!caller.authenticated);
    }

    #[test]
    fn each_caller_has_its_own_rate_limit() {
        let limit = RateLimit {
            per_second: 1,
            burst: 2,
        };
        let mut auth = Authenticate::new(access(), Some(limit));
        assert!(auth.call(with_token(Some(READER))).is_ok());
        assert!(auth.call(with_token(Some(READER))).is_ok());
        let status = auth.call(with_token(Some(READER))).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("token:dash"), "{status:?}");
        // Without access control callers are told apart by address; none here, one bucket.
        let mut open = Authenticate::new(Access::open_to_all(), Some(limit));
        assert!(open.call(with_token(None)).is_ok());
        assert!(open.call(with_token(None)).is_ok());
        assert!(open.call(with_token(None)).is_err());
        assert_eq!(limit.check(), Ok(()));
        assert_eq!(
            RateLimit { burst: 0, ..limit }.check(),
            Err(("rate_limit.burst", "must be positive"))
        );
    }

    #[test]
    fn a_hashed_token_works_like_the_token_in_clear() {
        let hashed = hash_token(READER);
        assert_eq!(
            hashed,
            format!("sha256:{}", hex::encode(token_digest(READER)))
        );
        assert_eq!(hashed.len(), "sha256:".len() + 64);
        for token in [
            READER.to_owned(),
            hashed.clone(),
            hashed.to_uppercase().replacen("SHA256", "sha256", 1),
        ] {
            let access = Access::parse(&format!(
                "cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"dash\"\nrole = \"reader\"\ntoken = \"{token}\"\n"
            ))
            .unwrap();
            let mut auth = Authenticate::new(access, None);
            let request = auth.call(with_token(Some(READER))).unwrap();
            let caller = authorize(&request, Role::Reader, "reading").unwrap();
            assert_eq!(caller.name, "dash", "{token}");
            let wrong = auth
                .call(with_token(Some(&format!("{READER}x"))))
                .unwrap_err();
            assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
            // The hash itself is not a token.
            assert!(auth.call(with_token(Some(&hashed))).is_err());
        }
        let bad = [
            ("sha256:abc", "tokens[0].token"),
            (&format!("sha256:{}", "g".repeat(64)), "64 hex digits"),
        ];
        for (token, expected) in bad {
            let e = Access::parse(&format!(
                "cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"a\"\nrole = \"reader\"\ntoken = \"{token}\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(expected), "{token}: {e}");
        }
        // A hash of the cluster token is the cluster token used twice; the cluster token
        // itself may not be hashed.
        let e = Access::parse(&format!(
            "cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"a\"\nrole = \"reader\"\ntoken = \"{}\"\n",
            hash_token(CLUSTER)
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("equals cluster_token"), "{e}");
        let e = Access::parse(&format!("cluster_token = \"{}\"\n", hash_token(CLUSTER)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster_token") && e.contains("in clear"), "{e}");
    }

    #[test]
    fn reload_replaces_client_tokens_and_refuses_a_new_cluster_token() {
        const OTHER: &str = "oooooooooooooooooooooooooooooooo";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.toml");
        let file = |cluster: &str, token: &str| {
            format!("cluster_token = \"{cluster}\"\n[[tokens]]\nname = \"dash\"\nrole = \"reader\"\ntoken = \"{token}\"\n")
        };
        std::fs::write(&path, file(CLUSTER, READER)).unwrap();
        let access = Access::load(&path).unwrap();
        let mut auth = Authenticate::new(access.clone(), None);
        assert!(auth.call(with_token(Some(READER))).is_ok());
        std::fs::write(&path, file(CLUSTER, &hash_token(OTHER))).unwrap();
        access.reload(&path).unwrap();
        assert!(
            auth.call(with_token(Some(READER))).is_err(),
            "the old token is gone"
        );
        assert!(
            auth.call(with_token(Some(OTHER))).is_ok(),
            "the new one works"
        );
        // A broken file or a new cluster token changes nothing.
        std::fs::write(&path, "cluster_token = 3\n").unwrap();
        assert!(access.reload(&path).is_err());
        std::fs::write(&path, file(READER, OTHER)).unwrap();
        let e = access.reload(&path).unwrap_err().to_string();
        assert!(e.contains("cluster_token"), "{e}");
        assert!(auth.call(with_token(Some(OTHER))).is_ok());
        assert!(PeerGuard(access.clone())
            .call(with_token(Some(CLUSTER)))
            .is_ok());
        assert!(Access::open_to_all().reload(&path).is_err());
    }

    #[test]
    fn bad_access_files_name_the_field() {
        let cases = [
            ("cluster_token = \"short\"\n", "cluster_token"),
            (
                &format!("cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"a\"\nrole = \"reader\"\ntoken = \"{CLUSTER}\"\n"),
                "tokens[0].token",
            ),
            (
                &format!("cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"a\"\nrole = \"reader\"\ntoken = \"{READER}\"\n[[tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"{READER}x\"\n"),
                "tokens[1].name",
            ),
            (
                &format!("cluster_token = \"{CLUSTER}\"\n[[tokens]]\nname = \"a\"\nrole = \"root\"\ntoken = \"{READER}\"\n"),
                "root",
            ),
            (&format!("cluster_token = \"{CLUSTER}\"\nusers = []\n"), "users"),
        ];
        for (text, field) in cases {
            let e = Access::parse(text).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
