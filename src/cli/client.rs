//! Connecting to a node, with retries for the moments when no leader is known.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;

/// A channel to `endpoint` (`host:port` or a URL).
pub async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    let ep = crate::consensus::network::endpoint(endpoint)
        .with_context(|| format!("bad endpoint {endpoint}"))?;
    ep.timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach rampart at {endpoint} (is a node running? see --endpoint / RAMPART_ENDPOINT)"))
}

/// Runs `call` until it succeeds or fails with something other than UNAVAILABLE, for up to
/// `patience`. Only for calls that are safe to repeat (idempotent keys, reads).
pub async fn retry<T, F, Fut>(patience: Duration, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(status)
                if status.code() == tonic::Code::Unavailable
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// A status as a one-line error for people.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}
