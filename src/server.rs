//! A running node: listeners bound, Raft started, gRPC (and HTTP and flagd, when configured)
//! served,
//! contract webhooks delivered while it leads,
//! stoppable. Used by `rampart serve`, `rampart dev` and the tests, so all three run the node
//! the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::node::{Node, NodeConfig};
use crate::tls::{Listener, ServerTls};

/// A node serving on its listener.
pub struct RunningNode {
    pub node: Arc<Node>,
    /// The address actually bound (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// The HTTP listener's address, when the config asked for one.
    pub http_addr: Option<SocketAddr>,
    /// The flagd listener's address, when the config asked for one.
    pub flagd_addr: Option<SocketAddr>,
    /// The server sides of TLS (gRPC, then HTTP), reloaded by [`Reloader::reload`].
    tls: Vec<ServerTls>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Binds `config.listen` (port 0 picks a free port, which then becomes the advertised
/// address), starts the node and serves it.
pub async fn start(config: NodeConfig) -> anyhow::Result<RunningNode> {
    start_with_clock(config, Arc::new(crate::node::timekeeper::SystemClock)).await
}

/// `start`, with the node reading wall-clock time from `clock` (tests: a skewed node).
pub async fn start_with_clock(
    mut config: NodeConfig,
    clock: Arc<dyn crate::node::timekeeper::WallClock>,
) -> anyhow::Result<RunningNode> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    if config.listen.port() == 0 {
        config.listen = addr;
    }
    let http = match config.http {
        Some(at) => {
            let listener = TcpListener::bind(at)
                .await
                .map_err(|e| anyhow::anyhow!("binding the HTTP listener {at}: {e}"))?;
            Some(listener)
        }
        None => None,
    };
    let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;
    let flagd = match config.flagd {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .map_err(|e| anyhow::anyhow!("binding the flagd listener {at}: {e}"))?,
        ),
        None => None,
    };
    let flagd_addr = flagd.as_ref().map(TcpListener::local_addr).transpose()?;
    let node = Node::start_with_clock(config, clock).await?;
    let grpc_tls = node.tls.as_ref().map(ServerTls::new).transpose()?;
    let (stop, _) = tokio::sync::watch::channel(false);
    let stopped = |stop: &tokio::sync::watch::Sender<bool>| {
        let mut rx = stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tls = Vec::new();
    let mut tasks = Vec::new();
    tls.extend(grpc_tls.clone());
    let serving = node.clone();
    let shutdown = stopped(&stop);
    tasks.push(tokio::spawn(async move {
        crate::api::serve(serving, listener, grpc_tls, shutdown).await
    }));
    tasks.push(tokio::spawn(crate::notify::run(node.clone())));
    if let Some(listener) = http {
        let http_tls = node
            .tls
            .as_ref()
            .map(|t| ServerTls::for_listener(t, Listener::Http))
            .transpose()?;
        tls.extend(http_tls.clone());
        let serving = node.clone();
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            crate::http::serve(serving, listener, http_tls, shutdown).await
        }));
    }
    if let Some(listener) = flagd {
        // Server TLS as the HTTP listener's (client certificates optional): flagd providers
        // bring none.
        let flagd_tls = node
            .tls
            .as_ref()
            .map(|t| ServerTls::for_listener(t, Listener::Http))
            .transpose()?;
        tls.extend(flagd_tls.clone());
        let serving = node.clone();
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            crate::flagd::serve(serving, listener, flagd_tls, shutdown).await
        }));
    }
    Ok(RunningNode {
        node,
        addr,
        http_addr,
        flagd_addr,
        tls,
        stop,
        tasks,
    })
}

impl RunningNode {
    /// The URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP listener's base URL, when there is one (`https` when the node serves TLS).
    pub fn http_url(&self) -> Option<String> {
        let scheme = if self.node.tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.http_addr.map(|a| format!("{scheme}://{a}"))
    }

    /// What reloads this node's certificate, key, CA and access file (see [`Reloader`]).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            node: self.node.clone(),
            tls: self.tls.clone(),
        }
    }

    /// Stops serving, then stops Raft (clean shutdown: storage flushed and closed).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.node.shutdown().await;
        let mut outcome = Ok(());
        for task in self.tasks {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => Err(e.into()),
            };
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

/// Reloads a node's TLS material and access file, what SIGHUP does.
#[derive(Clone)]
pub struct Reloader {
    node: Arc<Node>,
    tls: Vec<ServerTls>,
}

impl Reloader {
    /// Reads the node's certificate, key and CA and its access file again: new handshakes and
    /// calls use them, open connections go on. The parts reloaded; or, per part that cannot
    /// be used (which keeps its old material), the error; the other parts are reloaded all
    /// the same.
    pub fn reload(&self) -> Result<Vec<&'static str>, Vec<String>> {
        let mut reloaded = Vec::new();
        let mut errors = Vec::new();
        if let Some(files) = &self.node.config.tls {
            let results: Vec<_> = self.tls.iter().map(|tls| tls.reload(files)).collect();
            match results.into_iter().find_map(Result::err) {
                None if !self.tls.is_empty() => reloaded.push("tls"),
                None => {}
                Some(e) => errors.push(e.to_string()),
            }
        }
        if let Some(path) = &self.node.config.access {
            match self.node.access.reload(path) {
                Ok(()) => reloaded.push("access"),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            Ok(reloaded)
        } else {
            Err(errors)
        }
    }
}
