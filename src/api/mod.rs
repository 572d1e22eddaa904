//! The API edge: tonic services of `rampart.v1`, gRPC health and reflection, and the
//! node-to-node service, all on one listener. Every public call passes `auth::Authenticate`
//! and each handler states the role it needs (`auth::authorize`); the node-to-node service
//! needs the cluster token; health and reflection are open.
//!
//! Handlers parse and validate requests (`convert`), call the node (a replicated write or a
//! read after a barrier) and map errors to statuses in one place (`error`). They never touch
//! storage and never decide anything.

pub mod admin;
pub mod backtest;
pub mod backup;
pub mod contracts;
pub mod convert;
pub mod error;
pub mod gates;
pub(crate) mod metered;
pub mod overrides;
pub mod signals;
pub mod view;
pub mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::Status;

use crate::auth::{Authenticate, PeerGuard};
use crate::node::peer_service::PeerService;
use crate::node::Node;
use crate::proto::internal::raft_internal_server::RaftInternalServer;
use crate::proto::v1 as pb;
use crate::proto::v1::admin_server::AdminServer;
use crate::proto::v1::contracts_server::ContractsServer;
use crate::proto::v1::gates_server::GatesServer;
use crate::proto::v1::overrides_server::OverridesServer;
use crate::proto::v1::signals_server::SignalsServer;
use crate::tls::ServerTls;

/// Largest contract text accepted (PutContract, Backtest).
pub const MAX_CONTRACT_BYTES: usize = 256 * 1024;

/// Largest request a client may send (the ingest batch limit applies inside it).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// Shared by every public service.
#[derive(Clone)]
pub struct Api {
    pub node: Arc<Node>,
}

impl Api {
    /// Makes the local state safe to read at the asked consistency and says what was read.
    async fn read_info(
        &self,
        consistency: i32,
        default: pb::Consistency,
    ) -> Result<pb::ReadInfo, Status> {
        let consistency = match pb::Consistency::try_from(consistency) {
            Ok(pb::Consistency::Unspecified) => default,
            Ok(c) => c,
            Err(_) => return Err(error::ApiError::invalid("consistency", "unknown value").into()),
        };
        if consistency == pb::Consistency::Linearizable {
            self.node
                .read_barrier()
                .await
                .map_err(error::ApiError::from)?;
        }
        let applied_index = self.node.state.read().last_applied.map_or(0, |l| l.index);
        Ok(pb::ReadInfo {
            consistency: consistency as i32,
            applied_index,
            age_ms: self.node.state.apply_age_ms(),
            node_id: self.node.id,
        })
    }
}

/// Serves every service on `listener` until `shutdown` resolves, then drains. With `tls`
/// every connection is a mutual TLS one, its handshake made with `tls`'s current material.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let api = Api { node: node.clone() };
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(report_health(node.clone(), reporter, &HEALTH_SERVICES));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Server::tcp_nodelay only applies to listeners tonic binds itself; without it here,
    // Nagle's algorithm and delayed ACKs add ~40ms to some replies.
    let incoming = TcpIncoming::from_listener(listener, true, Some(Duration::from_secs(30)))
        .map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    let peer = RaftInternalServer::new(PeerService { node: node.clone() })
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let peer = InterceptedService::new(peer, PeerGuard(node.access.clone()));
    let auth = node.authenticate.clone();
    let router = Server::builder()
        .layer(metered::MeteredLayer(node.clone()))
        .timeout(node.config.request_timeout() + Duration::from_secs(1))
        .concurrency_limit_per_connection(512)
        .tcp_nodelay(true)
        // Find dead clients (and let clients find a dead server) on idle streams such as Watch.
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .add_service(health)
        .add_service(reflection)
        .add_service(peer)
        .add_service(guarded(
            ContractsServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            &auth,
        ))
        .add_service(guarded(
            SignalsServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            &auth,
        ))
        .add_service(guarded(GatesServer::new(api.clone()), &auth))
        .add_service(guarded(OverridesServer::new(api.clone()), &auth))
        .add_service(guarded(AdminServer::new(api), &auth));
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls_incoming(incoming, tls), shutdown)
                .await?
        }
        None => {
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    Ok(())
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS connections made over `tcp`'s, each handshake on its own task (a slow client holds
/// up no other) with the acceptor current when the connection came in. Ends, releasing the
/// listener, once the server stops reading.
pub(crate) fn tls_incoming(
    mut tcp: TcpIncoming,
    tls: ServerTls,
) -> impl futures::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                () = tx.closed() => return,
                conn = tcp.next() => conn,
            };
            let stream = match conn {
                None => return,
                Some(Ok(stream)) => stream,
                Some(Err(e)) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let peer = stream.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(?peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A public service behind authentication (and the per-caller rate limit).
fn guarded<S>(service: S, auth: &Authenticate) -> InterceptedService<S, Authenticate> {
    InterceptedService::new(service, auth.clone())
}

/// SERVING only while a leader is known and this node's apply has caught up with its log;
/// NOT_SERVING for good once the Raft core stopped on an error.
/// Every service name health answers for: the whole node (""), and each service it serves.
pub const HEALTH_SERVICES: [&str; 6] = [
    "",
    "rampart.v1.Contracts",
    "rampart.v1.Signals",
    "rampart.v1.Gates",
    "rampart.v1.Overrides",
    "rampart.v1.Admin",
];

async fn report_every(
    reporter: &mut tonic_health::server::HealthReporter,
    services: &[&str],
    status: tonic_health::ServingStatus,
) {
    for service in services {
        reporter.set_service_status(service, status).await;
    }
}

/// Keeps `services`' health on `reporter` (one listener's) as this node's readiness.
pub(crate) async fn report_health(
    node: Arc<Node>,
    mut reporter: tonic_health::server::HealthReporter,
    services: &'static [&'static str],
) {
    let mut metrics = node.raft.metrics();
    let mut shutdown = node.shutdown_signal();
    let mut fatal = node.fatal_signal();
    let mut reported: Option<bool> = None;
    loop {
        if fatal.borrow().is_some() {
            let status = tonic_health::ServingStatus::NotServing;
            report_every(&mut reporter, services, status).await;
            return;
        }
        let serving = node.ready().is_ok();
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        if reported != Some(serving) {
            report_every(&mut reporter, services, status).await;
            reported = Some(serving);
        }
        // Raft metrics change with every append: look at most every 50ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() && fatal.borrow().is_none() { return },
            _ = fatal.changed() => {}
            _ = shutdown.changed() => {
                report_every(&mut reporter, services, tonic_health::ServingStatus::NotServing).await;
                return;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
