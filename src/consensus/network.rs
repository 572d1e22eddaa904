//! openraft's network over tonic: one reused channel per peer, payloads in the store's
//! versioned MessagePack encoding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::TypeConfig;
use crate::auth::{Access, AccessError, Bearer};
use crate::ids::NodeId;
use crate::proto::internal::raft_internal_client::RaftInternalClient;
use crate::proto::internal::Blob;
use crate::store::codec::{decode, encode_wire};

/// A client of another node's internal service, showing the cluster token.
pub type InternalClient = RaftInternalClient<InterceptedService<Channel, Bearer>>;

/// Channels to peers, one per (node, address), created lazily and reused for every RPC.
#[derive(Debug)]
pub struct Peers {
    channels: Mutex<HashMap<NodeId, (String, Channel)>>,
    bearer: Bearer,
    tls: Option<ClientTlsConfig>,
}

impl Peers {
    /// Peers reached with `access`'s cluster token (none when access control is off), over
    /// TLS when `tls` is given.
    pub fn new(access: &Access, tls: Option<ClientTlsConfig>) -> Result<Self, AccessError> {
        Ok(Peers {
            channels: Mutex::default(),
            bearer: Bearer::new(access.cluster_token())?,
            tls,
        })
    }

    /// The channel to `id` at `addr` (a new one only when the address changed).
    pub fn channel(&self, id: NodeId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((known, channel)) = channels.get(&id) {
            if known == addr {
                return Ok(channel.clone());
            }
        }
        let channel = endpoint(addr, self.tls.as_ref())?.connect_lazy();
        channels.insert(id, (addr.to_owned(), channel.clone()));
        Ok(channel)
    }

    /// A client of the internal service of `id`.
    pub fn client(
        &self,
        id: NodeId,
        addr: &str,
    ) -> Result<InternalClient, tonic::transport::Error> {
        let channel = self.channel(id, addr)?;
        Ok(
            RaftInternalClient::with_interceptor(channel, self.bearer.clone())
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        )
    }
}

/// An endpoint with the timeouts rampart uses between nodes; over TLS when `tls` is given
/// (an `http://` address then becomes `https://`).
pub fn endpoint(
    addr: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<Endpoint, tonic::transport::Error> {
    let host = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let scheme = match (tls, addr.starts_with("https://")) {
        (Some(_), _) | (None, true) => "https",
        (None, false) => "http",
    };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{host}"))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    match tls {
        Some(config) => endpoint.tls_config(config.clone()),
        None => Ok(endpoint),
    }
}

/// The factory openraft asks for a client per target.
#[derive(Debug, Clone)]
pub struct Network {
    pub peers: Arc<Peers>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            client: self
                .peers
                .client(target, &node.addr)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The network to one peer.
pub struct PeerClient {
    target: NodeId,
    client: Result<InternalClient, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

type Rpc<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: Kind,
        req: &Req,
        option: &RPCOption,
    ) -> Rpc<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                    e.clone(),
                ))))
            }
        };
        let data = encode_wire(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(Blob { data });
        request.set_timeout(option.hard_ttl());
        let mut client = client;
        let reply = match kind {
            Kind::Vote => client.vote(request).await,
            Kind::Append => client.append_entries(request).await,
            Kind::Snapshot => client.install_snapshot(request).await,
        };
        let blob = reply.map_err(|status| match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => RPCError::Unreachable(
                Unreachable::new(&TransportError(status.message().to_owned())),
            ),
            _ => RPCError::Network(NetworkError::new(&TransportError(
                status.message().to_owned(),
            ))),
        })?;
        let result: Result<Resp, E> = decode(&blob.into_inner().data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Vote,
    Append,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(Kind::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(Kind::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(Kind::Vote, &rpc, &option).await
    }
}
