//! The HTTP edge: `/metrics` (Prometheus), `/healthz` and `/readyz`, the JSON API under `/v1/`
//! (the same calls as `rampart.v1`, for people, scripts and notebooks), the hooks Argo
//! Rollouts and Flagger call, OFREP ([`ofrep`]) for OpenFeature SDKs, and the operator console
//! ([`console`]: pages at `/` and under `/console/`). Its own listener
//! beside the gRPC one: tonic's TLS server speaks HTTP/2 only, and scrapers, probes and
//! browsers need HTTP/1.1.
//!
//! Every `/v1/` route is a thin door onto the gRPC service: it turns the HTTP request into the
//! `rampart.v1` message, authenticates it with the node's [`crate::auth::Authenticate`] (the
//! same tokens, roles and per-caller rate limit as gRPC), calls the service's handler and
//! shows the answer through [`crate::api::view`]. So validation, roles, forwarding to the
//! leader and consistency are the gRPC edge's, decided in one place; errors become HTTP
//! statuses once, in [`error`]. `/metrics`, `/healthz` and `/readyz` are open unless the
//! access file sets `protect_probes`.
//!
//! This module never touches storage and never decides anything.

mod call;
mod console;
pub mod error;
mod hooks;
mod metrics;
pub mod ofrep;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::api::Api;
use crate::node::metrics::{HttpLabels, HttpRoute};
use crate::node::Node;
use crate::tls::ServerTls;

/// What every handler reaches.
#[derive(Clone)]
pub struct Edge {
    pub node: Arc<Node>,
    pub api: Api,
    /// The key the console signs its forms' CSRF tokens with.
    pub csrf: Arc<console::CsrfKey>,
}

/// How long open connections get to finish when the node stops.
const DRAIN: Duration = Duration::from_secs(2);

/// The routes, with request metrics and the body limit.
pub fn router(node: Arc<Node>) -> Router {
    let edge = Edge {
        api: Api { node: node.clone() },
        csrf: Arc::new(console::CsrfKey::new(&node.access)),
        node,
    };
    routes::routes()
        .merge(hooks::routes())
        .merge(metrics::routes())
        .merge(ofrep::routes())
        .merge(console::routes())
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(edge.clone(), count))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::MAX_REQUEST_BYTES,
        ))
        .with_state(edge)
}

/// A path no route serves: 404 in the API's error shape.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> error::HttpError {
    error::HttpError::not_found(format!(
        "no route {method} {}: the routes are in docs/openapi.yaml",
        uri.path()
    ))
}

/// A served path asked with a method it does not take: 405 in the API's error shape.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> error::HttpError {
    error::HttpError::method_not_allowed(method.as_str(), uri.path())
}

/// Counts and times every request under its route's pattern (never the raw path: an unknown
/// path counts as `unmatched`).
async fn count(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &edge.node.metrics;
    metrics
        .http_seconds
        .get_or_create(&HttpRoute {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_handled
        .get_or_create(&HttpLabels {
            route,
            method,
            code: response.status().as_u16().to_string(),
        })
        .inc();
    response
}

/// Serves the HTTP edge on `listener` until `shutdown` resolves; open connections then get
/// [`DRAIN`] to finish. With `tls` every connection is TLS (client certificates optional).
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = router(node);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn({
            let app = app.clone();
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            }
        });
        match &tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "HTTP connection");
                    }
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "HTTP TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "HTTP connection");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after the drain; closing them");
    }
    Ok(())
}
