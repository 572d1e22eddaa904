//! A running node: listener bound, Raft started, gRPC served, stoppable. Used by `rampart
//! serve`, `rampart dev` and the tests, so all three run the node the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::node::{Node, NodeConfig};
use crate::tls::ServerTls;

/// A node serving on its listener.
pub struct RunningNode {
    pub node: Arc<Node>,
    /// The address actually bound (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// The server side of TLS, reloaded by [`RunningNode::reload`].
    tls: Option<ServerTls>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
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
    let node = Node::start_with_clock(config, clock).await?;
    let tls = node.tls.as_ref().map(ServerTls::new).transpose()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = node.clone();
    let server_tls = tls.clone();
    let task = tokio::spawn(async move {
        crate::api::serve(serving, listener, server_tls, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningNode {
        node,
        addr,
        tls,
        stop,
        task,
    })
}

impl RunningNode {
    /// The URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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
        let _ = self.stop.send(());
        self.node.shutdown().await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(e.into()),
        }
    }
}

/// Reloads a node's TLS material and access file, what SIGHUP does.
#[derive(Clone)]
pub struct Reloader {
    node: Arc<Node>,
    tls: Option<ServerTls>,
}

impl Reloader {
    /// Reads the node's certificate, key and CA and its access file again: new handshakes and
    /// calls use them, open connections go on. The parts reloaded; or, per part that cannot
    /// be used (which keeps its old material), the error; the other parts are reloaded all
    /// the same.
    pub fn reload(&self) -> Result<Vec<&'static str>, Vec<String>> {
        let mut reloaded = Vec::new();
        let mut errors = Vec::new();
        if let (Some(tls), Some(files)) = (&self.tls, &self.node.config.tls) {
            match tls.reload(files) {
                Ok(()) => reloaded.push("tls"),
                Err(e) => errors.push(e.to_string()),
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
