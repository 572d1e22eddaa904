//! One delivery attempt: sign the body as Standard Webhooks does, POST it, and say what the
//! answer means for the retry loop.
//!
//! Headers: `webhook-id` (the decision's `gate:version`, the same on every retry and after a
//! leader change, so receivers dedupe on it), `webhook-timestamp` (Unix seconds of this
//! attempt, so receivers refuse replays outside their tolerance) and `webhook-signature`
//! (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`).

use std::time::Duration;

use base64::Engine;

use crate::engine::notify::{key_bytes, Notify};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Try again later: no answer, a timeout, a 5xx, 408 or 429 (or 3xx: redirects are not
    /// followed, a signed body goes only where the contract says), or no key on this node.
    Retry(String),
    /// A 4xx the receiver will answer again: give up on this decision.
    Refused(String),
}

/// The `webhook-signature` header value for one attempt.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// The client every lane shares: no redirects, a timeout per attempt.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The HMAC key of a hook on this node: from the contract, or its environment variable.
fn key(hook: &Notify) -> Result<Vec<u8>, String> {
    match (&hook.secret, &hook.secret_env) {
        (Some(secret), _) => key_bytes(secret),
        (None, Some(name)) => match std::env::var(name) {
            Ok(value) if !value.is_empty() => key_bytes(&value),
            _ => Err(format!("secret_env {name} is not set on this node")),
        },
        (None, None) => Err("the hook has no secret".into()),
    }
}

/// POSTs `body` to the hook, signed at `now_ms`.
pub async fn attempt(
    client: &reqwest::Client,
    hook: &Notify,
    id: &str,
    body: Vec<u8>,
    now_ms: i64,
) -> Outcome {
    let key = match key(hook) {
        Ok(key) => key,
        Err(why) => return Outcome::Retry(why),
    };
    let timestamp = now_ms.div_euclid(1000);
    let signature = signature(&key, id, timestamp, &body);
    let sent = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Err(e) => Outcome::Retry(format!("no answer: {e}")),
        Ok(answer) => judge(answer.status()),
    }
}

/// What a status code means for the delivery.
fn judge(status: reqwest::StatusCode) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_client_error() && code != 408 && code != 429 {
        Outcome::Refused(format!("the receiver answered {status}"))
    } else {
        Outcome::Retry(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_standard_webhooks() {
        // The example of the Standard Webhooks specification (its reference libraries' test).
        let key = key_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn statuses_decide_retry_or_give_up() {
        use reqwest::StatusCode as S;
        assert_eq!(judge(S::NO_CONTENT), Outcome::Delivered);
        assert!(matches!(judge(S::INTERNAL_SERVER_ERROR), Outcome::Retry(_)));
        assert!(matches!(judge(S::TOO_MANY_REQUESTS), Outcome::Retry(_)));
        assert!(matches!(judge(S::REQUEST_TIMEOUT), Outcome::Retry(_)));
        assert!(matches!(judge(S::MOVED_PERMANENTLY), Outcome::Retry(_)));
        assert!(matches!(judge(S::BAD_REQUEST), Outcome::Refused(_)));
        assert!(matches!(judge(S::GONE), Outcome::Refused(_)));
    }
}
