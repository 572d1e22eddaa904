//! Who is using the console: the session cookie, signing in and out, and the CSRF token every
//! form carries.
//!
//! The cookie `rampart_session` holds either the bearer token the user signed in with
//! (`t.<hex>`) or, before that, a random anonymous id (`a.<hex>`) that only anchors the CSRF
//! token. It is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends
//! it) and `Secure` when the node serves TLS. A form's CSRF token is the HMAC-SHA256 of the
//! cookie's value under a key every node derives from the cluster token (so a page from one node
//! posts to another), or a random key of this node when there is no access file (`rampart dev`);
//! it is compared in constant time.
//!
//! This module never decides what a caller may do: the token goes through the node's
//! `Authenticate` like an API call's.

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::auth::Access;
use crate::http::error::HttpError;

/// The session cookie's name.
pub const COOKIE: &str = "rampart_session";

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The key CSRF tokens are signed with.
pub struct CsrfKey(hmac::Key);

impl CsrfKey {
    /// Derived from the cluster token when there is one (every node of the cluster signs
    /// alike), else random for this node's lifetime.
    pub fn new(access: &Access) -> Self {
        let secret = match access.cluster_token() {
            Some(token) => {
                let derive = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
                hmac::sign(&derive, b"rampart console csrf v1")
                    .as_ref()
                    .to_vec()
            }
            None => {
                let mut bytes = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, &secret))
    }

    fn sign(&self, value: &str) -> String {
        hex::encode(hmac::sign(&self.0, value.as_bytes()).as_ref())
    }
}

/// The session of one request: the cookie it came with, or a new anonymous one to set.
#[derive(Debug, Clone)]
pub struct Session {
    value: String,
    /// Whether the response must set the cookie (the request had none).
    pub fresh: bool,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Session {
    /// The request's session; a new anonymous one when it has no (well-formed) cookie.
    pub fn of(headers: &HeaderMap) -> Session {
        let found = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.to_owned())
            .filter(|v| Session::well_formed(v));
        match found {
            Some(value) => Session {
                value,
                fresh: false,
            },
            None => Session::anonymous(),
        }
    }

    /// A new anonymous session.
    pub fn anonymous() -> Session {
        Session {
            value: format!("a.{}", random_hex()),
            fresh: true,
        }
    }

    /// A session signed in with `token`.
    pub fn signed_in(token: &str) -> Session {
        Session {
            value: format!("t.{}", hex::encode(token.trim())),
            fresh: true,
        }
    }

    fn well_formed(value: &str) -> bool {
        value.len() <= 1024
            && (value
                .strip_prefix("a.")
                .or_else(|| value.strip_prefix("t.")))
            .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The bearer token signed in with, if any.
    pub fn token(&self) -> Option<String> {
        let hex = self.value.strip_prefix("t.")?;
        String::from_utf8(hex::decode(hex).ok()?).ok()
    }

    /// The CSRF token forms of this session carry.
    pub fn csrf(&self, key: &CsrfKey) -> String {
        key.sign(&self.value)
    }

    /// Refuses a form whose CSRF token is missing or not this session's (403 naming the
    /// field). A session the request did not bring (no cookie) has no form to post.
    pub fn check_csrf(&self, key: &CsrfKey, presented: Option<&str>) -> Result<(), HttpError> {
        let presented = presented.filter(|p| !p.is_empty()).ok_or_else(|| {
            HttpError::forbidden(
                CSRF_FIELD,
                "the form carries no CSRF token; reload the page",
            )
        })?;
        let expected = self.csrf(key);
        let same: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
        if self.fresh || !same {
            return Err(HttpError::forbidden(
                CSRF_FIELD,
                "the form's CSRF token is not this session's; reload the page and send it again",
            ));
        }
        Ok(())
    }

    /// The `Set-Cookie` header that keeps this session (`secure` under TLS).
    pub fn set_cookie(&self, secure: bool) -> HeaderValue {
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.value
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("rampart_session=; Path=/"))
    }

    /// The `Set-Cookie` header that ends a session.
    pub fn clear_cookie(secure: bool) -> HeaderValue {
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("rampart_session=; Path=/; Max-Age=0"))
    }

    /// `headers` with the signed-in token as their `Authorization`, unless they carry one.
    pub fn authorized(&self, headers: &HeaderMap) -> HeaderMap {
        let mut headers = headers.clone();
        if !headers.contains_key(header::AUTHORIZATION) {
            if let Some(value) = self
                .token()
                .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
            {
                headers.insert(header::AUTHORIZATION, value);
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_signed_in_session_carries_its_token_to_the_call() {
        let s = Session::signed_in("s3cret token");
        let value = s.value.clone();
        let back = Session::of(&cookie(&value));
        assert!(!back.fresh);
        assert_eq!(back.token().as_deref(), Some("s3cret token"));
        let h = back.authorized(&HeaderMap::new());
        assert_eq!(h[header::AUTHORIZATION], "Bearer s3cret token");
    }

    #[test]
    fn a_malformed_cookie_is_a_new_anonymous_session() {
        let s = Session::of(&cookie("t.not-hex"));
        assert!(s.fresh);
        assert_eq!(s.token(), None);
        assert!(Session::of(&HeaderMap::new()).fresh);
    }

    #[test]
    fn csrf_is_bound_to_the_session_and_the_key() {
        let key = CsrfKey::new(&Access::open_to_all());
        let s = Session::of(&cookie("a.00ff"));
        let token = s.csrf(&key);
        assert!(s.check_csrf(&key, Some(&token)).is_ok());
        let refused = s.check_csrf(&key, None).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(refused.field.as_deref(), Some(CSRF_FIELD));
        assert!(s.check_csrf(&key, Some("00")).is_err());
        let other = Session::of(&cookie("a.00fe"));
        assert!(other.check_csrf(&key, Some(&token)).is_err());
        let other_key = CsrfKey::new(&Access::open_to_all());
        assert!(s.check_csrf(&other_key, Some(&token)).is_err());
        // A request without a cookie cannot post a form, whatever it sends.
        let fresh = Session::anonymous();
        let forged = fresh.csrf(&key);
        assert!(fresh.check_csrf(&key, Some(&forged)).is_err());
    }

    #[test]
    fn nodes_of_one_cluster_sign_alike() {
        let access =
            || Access::parse("cluster_token = \"cccccccccccccccccccccccccccccccc\"\n").unwrap();
        let s = Session::of(&cookie("a.abcd"));
        assert_eq!(
            s.csrf(&CsrfKey::new(&access())),
            s.csrf(&CsrfKey::new(&access()))
        );
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let v = Session::anonymous().set_cookie(true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Secure"));
        assert!(!Session::anonymous()
            .set_cookie(false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
