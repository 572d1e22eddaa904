//! The contract's outbound notifications: which receivers hear about which decisions.
//!
//! A contract may name webhooks (`notify: [{url, secret | secret_env, on: [...]}]`). This
//! module owns that part of the language and its validation; the delivery (HTTP, signing,
//! retries) is an edge (`crate::notify`) and the delivery cursor is replicated state
//! (`crate::state::notify`). Pure: no IO.

use serde::{Deserialize, Serialize};

/// The events a receiver can subscribe to. A decision is one event (its action) and also
/// `kill` when it turned the kill switch on (an engine rollback does when it is gate-wide or
/// leaves every cohort rolled back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Expand,
    Stay,
    Slow,
    Hold,
    AwaitApproval,
    ManualReview,
    /// A cohort (or the whole gate) rolled back, by the engine or an operator.
    Rollback,
    /// The kill switch went on (an operator's kill, or an engine rollback that is gate-wide
    /// or leaves every cohort rolled back).
    Kill,
    Resume,
    Approve,
    SetExposure,
    /// A contract version was applied.
    Contract,
    /// The contract was deleted.
    Deleted,
}

impl NotifyOn {
    /// Every event, for error messages and docs.
    pub const ALL: [NotifyOn; 13] = [
        NotifyOn::Expand,
        NotifyOn::Stay,
        NotifyOn::Slow,
        NotifyOn::Hold,
        NotifyOn::AwaitApproval,
        NotifyOn::ManualReview,
        NotifyOn::Rollback,
        NotifyOn::Kill,
        NotifyOn::Resume,
        NotifyOn::Approve,
        NotifyOn::SetExposure,
        NotifyOn::Contract,
        NotifyOn::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Expand => "expand",
            NotifyOn::Stay => "stay",
            NotifyOn::Slow => "slow",
            NotifyOn::Hold => "hold",
            NotifyOn::AwaitApproval => "await_approval",
            NotifyOn::ManualReview => "manual_review",
            NotifyOn::Rollback => "rollback",
            NotifyOn::Kill => "kill",
            NotifyOn::Resume => "resume",
            NotifyOn::Approve => "approve",
            NotifyOn::SetExposure => "set_exposure",
            NotifyOn::Contract => "contract",
            NotifyOn::Deleted => "deleted",
        }
    }
}

/// What a receiver hears about when its `on` is not written: the decisions that need a human.
pub fn default_on() -> Vec<NotifyOn> {
    vec![NotifyOn::Rollback, NotifyOn::Kill, NotifyOn::ManualReview]
}

/// One webhook of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// `http://` or `https://` URL the leader POSTs each matching decision to.
    pub url: String,
    /// The HMAC-SHA256 key, written in the contract (readable by everyone who may read
    /// contracts). A `whsec_` prefix means the rest is base64, as Standard Webhooks writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The name of an environment variable that holds the key on every node (kept out of the
    /// contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// The events delivered; default rollback, kill and manual_review.
    #[serde(default = "default_on")]
    pub on: Vec<NotifyOn>,
}

impl Notify {
    /// Whether a decision with these events is delivered to this receiver.
    pub fn wants(&self, events: &[NotifyOn]) -> bool {
        events.iter().any(|e| self.on.contains(e))
    }
}

/// The rules of the `notify` section, each problem named by its field.
pub(super) fn validate(hooks: &[Notify], fail: &mut impl FnMut(&str, String)) {
    for (i, hook) in hooks.iter().enumerate() {
        let path = format!("notify[{i}]");
        match url::Url::parse(&hook.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => fail(
                &format!("{path}.url"),
                format!(
                    "{:?} is not an http:// or https:// URL with a host (scheme {})",
                    hook.url,
                    u.scheme()
                ),
            ),
            Err(e) => fail(
                &format!("{path}.url"),
                format!("{:?} is not a URL: {e}", hook.url),
            ),
        }
        if hooks[..i].iter().any(|h| h.url == hook.url) {
            fail(
                &format!("{path}.url"),
                "appears twice: one entry per receiver (list every event in its `on`)".into(),
            );
        }
        match (&hook.secret, &hook.secret_env) {
            (Some(_), Some(_)) => fail(
                &path,
                "has both secret and secret_env: give the key one way".into(),
            ),
            (None, None) => fail(
                &path,
                "needs secret or secret_env: every delivery is signed".into(),
            ),
            (Some(s), None) if s.is_empty() => {
                fail(&format!("{path}.secret"), "must not be empty".into())
            }
            (Some(s), None) => {
                if let Err(reason) = key_bytes(s) {
                    fail(&format!("{path}.secret"), reason);
                }
            }
            (None, Some(name)) => {
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    fail(
                        &format!("{path}.secret_env"),
                        format!("{name:?} is not an environment variable name (A-Z, 0-9, _)"),
                    );
                }
            }
        }
        if hook.on.is_empty() {
            fail(
                &format!("{path}.on"),
                format!(
                    "must name at least one event: {}",
                    NotifyOn::ALL.map(NotifyOn::as_str).join(", ")
                ),
            );
        }
    }
}

/// The HMAC key a secret spells: the bytes of the text, or for `whsec_<base64>` the decoded
/// bytes (the Standard Webhooks convention).
pub fn key_bytes(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("a whsec_ secret must be base64 after the prefix: {e}")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(hooks: &[Notify]) -> Vec<String> {
        let mut out = Vec::new();
        validate(hooks, &mut |f: &str, r: String| {
            out.push(format!("{f}: {r}"))
        });
        out
    }

    fn hook(url: &str) -> Notify {
        Notify {
            url: url.into(),
            secret: Some("k".into()),
            secret_env: None,
            on: default_on(),
        }
    }

    #[test]
    fn a_good_hook_passes_and_bad_ones_name_the_field() {
        assert!(errors(&[hook("https://hooks.example/x")]).is_empty());
        assert!(errors(&[hook("ftp://x")])[0].starts_with("notify[0].url"));
        assert!(errors(&[hook("not a url")])[0].starts_with("notify[0].url"));
        let twice = errors(&[hook("http://a/"), hook("http://a/")]);
        assert!(
            twice[0].starts_with("notify[1].url: appears twice"),
            "{twice:?}"
        );
        let mut h = hook("http://a/");
        h.secret = None;
        assert!(errors(&[h.clone()])[0].contains("needs secret"));
        h.secret_env = Some("1BAD".into());
        assert!(errors(&[h.clone()])[0].starts_with("notify[0].secret_env"));
        h.secret_env = Some("HOOK_KEY".into());
        h.on.clear();
        assert!(errors(&[h])[0].starts_with("notify[0].on: must name"));
        let mut w = hook("http://a/");
        w.secret = Some("whsec_%%%".into());
        assert!(errors(&[w])[0].starts_with("notify[0].secret: a whsec_"));
    }

    #[test]
    fn whsec_secrets_are_base64() {
        assert_eq!(key_bytes("whsec_aGk=").unwrap(), b"hi");
        assert_eq!(key_bytes("plain").unwrap(), b"plain");
    }
}
