//! A running node: listener bound, Raft started, gRPC served, stoppable. Used by `rampart
//! serve`, `rampart dev` and the tests, so all three run the node the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::node::{Node, NodeConfig};

/// A node serving on its listener.
pub struct RunningNode {
    pub node: Arc<Node>,
    /// The address actually bound (useful when the config asked for port 0).
    pub addr: SocketAddr,
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
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = node.clone();
    let task = tokio::spawn(async move {
        crate::api::serve(serving, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningNode {
        node,
        addr,
        stop,
        task,
    })
}

impl RunningNode {
    /// The URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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
