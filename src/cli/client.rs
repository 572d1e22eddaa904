//! Connecting to a node, with retries for the moments when no leader is known.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::auth::Bearer;
use crate::tls::{Tls, TlsFiles};

/// Where the CLI calls, and with which token.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` or a URL.
    pub endpoint: String,
    /// The bearer token, when the cluster has access control on.
    pub token: Option<String>,
    /// CA, certificate and key, when the cluster serves mutual TLS.
    pub tls: Option<TlsFiles>,
}

/// A connection that shows the target's token on every call.
pub type Conn = InterceptedService<Channel, Bearer>;

/// A connection to `target`.
pub async fn connect(target: &Target) -> anyhow::Result<Conn> {
    let endpoint = &target.endpoint;
    let bearer = Bearer::new(target.token.as_deref()).context("--token / RAMPART_TOKEN")?;
    let tls = match &target.tls {
        Some(files) => Some(Tls::load(files)?.client()),
        None => None,
    };
    let ep = crate::consensus::network::endpoint(endpoint, tls.as_ref())
        .with_context(|| format!("bad endpoint {endpoint}"))?;
    let channel = ep.timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach rampart at {endpoint} (is a node running? see --endpoint / RAMPART_ENDPOINT)"))?;
    Ok(InterceptedService::new(channel, bearer))
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

/// How long a repeatable call waits for a leader before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A call that is safe to repeat (a read, or a write under an idempotency key): `call` with a
/// clone of `client` and of `request`, retried while no leader is known (`retry`, for up to
/// `PATIENCE`); its reply, or the status as a one-line error.
pub async fn repeatable<C, R, T, Fut>(
    client: &C,
    request: R,
    call: impl Fn(C, R) -> Fut,
) -> anyhow::Result<T>
where
    C: Clone,
    R: Clone,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    retry(PATIENCE, || call(client.clone(), request.clone()))
        .await
        .map(tonic::Response::into_inner)
        .map_err(status_error)
}

/// A status as a one-line error for people.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => " (pass --token or set RAMPART_TOKEN)",
        tonic::Code::Unknown if status.message().contains("transport error") => {
            " (if the cluster serves TLS, pass --ca, --cert and --key)"
        }
        _ => "",
    };
    anyhow::anyhow!("{:?}: {}{hint}", status.code(), status.message())
}
