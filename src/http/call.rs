//! From an HTTP request to an authenticated `rampart.v1` call: the bearer token and peer
//! address go through the node's `Authenticate` exactly as a gRPC call's do.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use tonic::service::Interceptor;
use tonic::transport::server::TcpConnectInfo;

use super::error::HttpError;
use super::Edge;
use crate::proto::v1 as pb;

/// What every handler starts from: the node, and who is calling (their headers and address).
pub struct Door {
    pub edge: Edge,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
}

#[axum::async_trait]
impl FromRequestParts<Edge> for Door {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, edge: &Edge) -> Result<Self, HttpError> {
        Ok(Door {
            edge: edge.clone(),
            headers: parts.headers.clone(),
            peer: peer(parts),
        })
    }
}

/// The address a request came from (unspecified when the listener did not record it).
pub fn peer(parts: &Parts) -> SocketAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The one parameter of a route's path (`{gate}`, `{hook}`), decoded; one that is not UTF-8
/// once percent-decoded is a 400 naming the parameter.
pub struct Segment(pub String);

#[axum::async_trait]
impl FromRequestParts<Edge> for Segment {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, edge: &Edge) -> Result<Self, HttpError> {
        match Path::<String>::from_request_parts(parts, edge).await {
            Ok(Path(value)) => Ok(Segment(value)),
            Err(e) => {
                let name = parts
                    .extensions
                    .get::<MatchedPath>()
                    .and_then(|p| p.as_str().split('/').find_map(|s| s.strip_prefix(':')))
                    .unwrap_or("path")
                    .to_owned();
                Err(HttpError::invalid(name, e.body_text()))
            }
        }
    }
}

impl Door {
    /// `message` as an authenticated gRPC request from this caller; 401 or 429 as the gRPC
    /// edge would answer.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, HttpError> {
        self.edge.request(&self.headers, self.peer, message)
    }

    /// See [`Edge::probe_allowed`].
    pub fn probe_allowed(&self) -> Result<(), HttpError> {
        self.edge.probe_allowed(&self.headers, self.peer)
    }
}

impl Edge {
    /// `message` as an authenticated gRPC request from the caller of `headers`; 401 or 429 as
    /// the gRPC edge would answer.
    pub fn request<T>(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        message: T,
    ) -> Result<tonic::Request<T>, HttpError> {
        let mut request = tonic::Request::new(());
        if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
            let value = value
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    HttpError::unauthenticated("authorization: the header is not ASCII")
                })?;
            request.metadata_mut().insert("authorization", value);
        }
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(peer),
        });
        let request = self.node.authenticate.clone().call(request)?;
        let (metadata, extensions, ()) = request.into_parts();
        Ok(tonic::Request::from_parts(metadata, extensions, message))
    }

    /// Whether `/metrics`, `/healthz` and `/readyz` may be read by this caller: always, unless
    /// the access file protects them (then any known token will do).
    pub fn probe_allowed(&self, headers: &HeaderMap, peer: SocketAddr) -> Result<(), HttpError> {
        if self.node.access.probes_open() {
            return Ok(());
        }
        self.request(headers, peer, ()).map(|_| ())
    }
}

/// `?consistency=local|linearizable` as the proto's enum (absent: the call's default);
/// anything else, an empty value included, names the field.
pub fn consistency(value: Option<&str>) -> Result<i32, HttpError> {
    match value {
        None => Ok(pb::Consistency::Unspecified as i32),
        Some("local") => Ok(pb::Consistency::Local as i32),
        Some("linearizable") => Ok(pb::Consistency::Linearizable as i32),
        Some(other) => Err(HttpError::invalid(
            "consistency",
            format!("`{other}`: expected local or linearizable"),
        )),
    }
}
