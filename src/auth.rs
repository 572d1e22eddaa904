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
//! ```
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
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The shortest token accepted: 128 bits as hex.
const MIN_TOKEN_LEN: usize = 32;

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
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Clone, Deserialize)]
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
    tokens: Vec<TokenEntry>,
}

impl Access {
    /// No access control: every caller is an anonymous admin, nodes send no token.
    pub fn open_to_all() -> Self {
        Access { rules: None }
    }

    /// Reads and validates an access file.
    pub fn load(path: &Path) -> Result<Self, AccessError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            AccessError::Parse { message, .. } => AccessError::Parse {
                path: shown,
                message,
            },
            other => other,
        })
    }

    /// Parses and validates the text of an access file.
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let file: AccessFile = toml::from_str(text).map_err(|e| AccessError::Parse {
            path: "the access file".into(),
            message: e.message().to_owned(),
        })?;
        let invalid = |field: String, reason: &str| AccessError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        check_secret(&file.cluster_token).map_err(|r| invalid("cluster_token".into(), r))?;
        let mut names = HashSet::new();
        let mut secrets = HashSet::from([file.cluster_token.as_str()]);
        for (i, entry) in file.tokens.iter().enumerate() {
            let name = entry.name.trim();
            if name.is_empty() || name.len() > 128 {
                return Err(invalid(
                    format!("tokens[{i}].name"),
                    "must be 1 to 128 characters",
                ));
            }
            if !names.insert(name) {
                return Err(invalid(format!("tokens[{i}].name"), "is used twice"));
            }
            check_secret(&entry.token).map_err(|r| invalid(format!("tokens[{i}].token"), r))?;
            if !secrets.insert(entry.token.as_str()) {
                return Err(invalid(
                    format!("tokens[{i}].token"),
                    "is used twice (or equals cluster_token)",
                ));
            }
        }
        Ok(Access {
            rules: Some(Arc::new(Rules {
                cluster_token: file.cluster_token,
                tokens: file.tokens,
            })),
        })
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
        // Every entry is compared, in constant time, so timing says nothing about the tokens.
        let mut found = None;
        for entry in &rules.tokens {
            if bool::from(entry.token.as_bytes().ct_eq(token.as_bytes())) {
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
