//! `rampart serve`: one node from a config file and/or flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use futures::FutureExt;

use crate::node::NodeConfig;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file with the node's configuration (flags override it).
    #[arg(long, value_parser = super::existing_file)]
    pub config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    pub id: Option<u64>,
    /// Address to bind, e.g. 127.0.0.1:7101.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address the HTTP listener binds, e.g. 127.0.0.1:7201: /metrics, /healthz, /readyz, the
    /// JSON API under /v1/ and the Argo Rollouts and Flagger hooks (config key http; default:
    /// none).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Address peers and clients reach this node at (default: --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Access file: cluster token and client tokens with roles (default: no access control).
    #[arg(long, value_parser = super::existing_file)]
    pub access: Option<PathBuf>,
    /// How far the cluster time this node proposes as leader may be from the median of the
    /// voters' clocks, in ms (config key max_clock_skew_ms; default 5000).
    #[arg(long)]
    pub max_clock_skew_ms: Option<u64>,
}

/// Builds the configuration: file first, then flags; validated.
pub fn config(args: &ServeArgs) -> anyhow::Result<NodeConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<NodeConfig>(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => {
            let id = args.id.context("--id is required (or --config)")?;
            let listen = args.listen.context("--listen is required (or --config)")?;
            let data = args
                .data
                .clone()
                .context("--data is required (or --config)")?;
            NodeConfig::new(id, listen, data)
        }
    };
    if let Some(id) = args.id {
        config.id = id;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data) = &args.data {
        config.data.clone_from(data);
    }
    if args.http.is_some() {
        config.http = args.http;
    }
    if args.access.is_some() {
        config.access.clone_from(&args.access);
    }
    if args.advertise.is_some() {
        config.advertise.clone_from(&args.advertise);
    }
    if let Some(skew) = args.max_clock_skew_ms {
        config.max_clock_skew_ms = skew;
    }
    config.validate()?;
    Ok(config)
}

/// Reloads the node's TLS material and access file on every SIGHUP, until dropped.
async fn reload_on_hangup(reloader: crate::server::Reloader) {
    {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hangup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; reloading is off");
                return;
            };
            while hangup.recv().await.is_some() {
                match reloader.reload() {
                    Ok(parts) => tracing::info!(?parts, "SIGHUP: reloaded"),
                    Err(errors) => {
                        for e in errors {
                            tracing::error!(error = %e, "SIGHUP: not reloaded, the old material stays");
                        }
                    }
                }
            }
        }
    }
}

/// Runs a node; `tls` (the global --ca/--cert/--key) overrides the config file's `tls`.
pub async fn run(args: ServeArgs, tls: Option<crate::tls::TlsFiles>) -> anyhow::Result<()> {
    let mut config = config(&args)?;
    if tls.is_some() {
        config.tls = tls;
    }
    let running = crate::server::start(config).await?;
    tracing::info!(id = running.node.id, addr = %running.addr, http = ?running.http_addr, "serving; initialise a new cluster with `rampart cluster init`");
    let mut fatal = running.node.fatal_signal();
    tokio::spawn(reload_on_hangup(running.reloader()));
    tokio::select! {
        () = super::shutdown_signal() => {
            tracing::info!("stopping");
            running.stop().await
        }
        Ok(reason) = fatal.wait_for(Option::is_some).map(|r| r.map(|f| f.clone().unwrap_or_default())) => {
            // Health already says NOT_SERVING; stop serving (bounded: the core is gone) and
            // exit non-zero so a supervisor restarts the node, which then re-checks its disk.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), running.stop()).await;
            anyhow::bail!("raft stopped on this node: {reason}; exiting")
        }
    }
}
