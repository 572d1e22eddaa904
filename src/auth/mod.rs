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
//! This module owns the roles and the checks of each call (the access file itself, its format
//! and reload, is `access`); it never decides what a call does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

mod access;

pub use access::{hash_token, token_digest, Access, AccessError, HASH_PREFIX};

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
