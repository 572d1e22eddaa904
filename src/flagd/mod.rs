//! The flagd edge: flagd's evaluation protocol (`flagd.evaluation.v1` and `v2`) on its own
//! listener (`--flagd`, flagd's port 8013 by convention), so unmodified OpenFeature flagd
//! providers in RPC mode evaluate rampart gates; with gRPC health and reflection.
//!
//! Evaluate-only and open, as flagd is: those providers send no bearer token and no client
//! certificate, so this listener serves nothing that writes or reads beyond an evaluation.
//! With TLS configured it serves TLS with the node's certificate, client certificates optional.
//!
//! `resolve` answers one flag from the applied state, `service` speaks both versions of the
//! protocol, `events` feeds `EventStream` from the applied decisions. This module never touches
//! storage and never decides anything.

pub mod events;
pub mod resolve;
mod service;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::node::Node;
use crate::proto::flagd::{v1, v2};
use crate::tls::ServerTls;
use resolve::ResolveError;

/// How long a node may know no leader and still answer: after that it answers
/// `UNAVAILABLE` (providers retry) and ends its event streams, as `Watch` does.
pub const LEADERLESS: Duration = Duration::from_secs(3);

/// Every service name health answers for on this listener.
pub const HEALTH_SERVICES: [&str; 3] = [
    "",
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
];

/// Whether this node may answer evaluations: its Raft core running and a leader known now or
/// within [`LEADERLESS`]. A task per listener notes when a leader was last known; a call looks
/// at the node's Raft metrics first, so a leader known now is never missed.
#[derive(Clone)]
pub struct Availability {
    node: Arc<Node>,
    last_leader: Arc<Mutex<Option<Instant>>>,
}

impl Availability {
    /// Ok, or why the node cannot answer.
    pub fn check(&self) -> Result<(), ResolveError> {
        if self.node.is_fatal() {
            return Err(ResolveError::Unavailable(
                "this node's raft core stopped; ask another node".into(),
            ));
        }
        if self.node.leader_id().is_some() {
            return Ok(());
        }
        let last = *self
            .last_leader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last {
            Some(at) if at.elapsed() < LEADERLESS => Ok(()),
            Some(_) => Err(ResolveError::Unavailable(format!(
                "this node has known no leader for {}s; retry, or ask another node",
                LEADERLESS.as_secs()
            ))),
            None => Err(ResolveError::Unavailable(
                "this node knows no leader yet; retry, or ask another node".into(),
            )),
        }
    }

    /// Starts noting when `node` last knew a leader (until it shuts down).
    fn keep(node: Arc<Node>) -> Availability {
        let availability = Availability {
            node: node.clone(),
            last_leader: Arc::new(Mutex::new(None)),
        };
        let last_leader = availability.last_leader.clone();
        tokio::spawn(async move {
            let mut shutdown = node.shutdown_signal();
            loop {
                if node.leader_id().is_some() {
                    *last_leader
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
        availability
    }
}

/// Serves flagd's evaluation service (both versions), health and reflection on `listener`
/// until `shutdown` resolves, then drains.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let service = service::Flagd {
        node: node.clone(),
        availability: Availability::keep(node.clone()),
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(crate::api::report_health(
        node.clone(),
        reporter,
        &HEALTH_SERVICES,
    ));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::flagd::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let incoming = TcpIncoming::from_listener(listener, true, Some(Duration::from_secs(30)))
        .map_err(|e| anyhow::anyhow!("flagd listener: {e}"))?;
    let router = Server::builder()
        .layer(crate::api::metered::MeteredLayer(node.clone()))
        .timeout(node.config.request_timeout() + Duration::from_secs(1))
        .concurrency_limit_per_connection(512)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .add_service(health)
        .add_service(reflection)
        .add_service(v1::service_server::ServiceServer::new(service.clone()))
        .add_service(v2::service_server::ServiceServer::new(service));
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(crate::api::tls_incoming(incoming, tls), shutdown)
                .await?;
        }
        None => {
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    Ok(())
}
