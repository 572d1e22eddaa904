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
    /// Address the flagd listener binds, e.g. 127.0.0.1:8013 (flagd's port, which providers
    /// assume): flagd's evaluation protocol for OpenFeature flagd providers in RPC mode;
    /// evaluation, health and reflection only, no tokens (config key flagd; default: none).
    #[arg(long)]
    pub flagd: Option<SocketAddr>,
    /// Address peers and clients reach this node at (default: --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Access file: cluster token and client tokens with roles (default: no access control).
    #[arg(long, value_parser = super::existing_file)]
    pub access: Option<PathBuf>,
    /// How far a clock may be from the voters' median before it is reported as skewed, in ms
    /// (the leader proposes the median either way; config key max_clock_skew_ms; default 5000).
    #[arg(long)]
    pub max_clock_skew_ms: Option<u64>,
    #[command(flatten)]
    pub timing: Timing,
}

/// Timing settings; each is also a config key of the same name (underscores), and each
/// default is the one `NodeConfig::new` holds (shown by `rampart serve --help`).
#[derive(Debug, Default, Args)]
pub struct Timing {
    /// Leader heartbeat interval, ms (heartbeat_ms; default 100).
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Shortest election timeout, ms; more than twice the heartbeat; the spread up to the
    /// longest keeps candidates apart (election_timeout_min_ms; default 500).
    #[arg(long)]
    pub election_timeout_min_ms: Option<u64>,
    /// Longest election timeout, ms: also the leader lease, for which a voter that heard from
    /// a leader refuses votes (election_timeout_max_ms; default 1000).
    #[arg(long)]
    pub election_timeout_max_ms: Option<u64>,
    /// Build a snapshot after this many log entries (snapshot_every; default 20000).
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// How often the leader looks for closed windows, ms (evaluate_every_ms; default 250).
    #[arg(long)]
    pub evaluate_every_ms: Option<u64>,
    /// Longest a request may take before DEADLINE_EXCEEDED, ms (request_timeout_ms; default
    /// 10000).
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Most signals in one ingest batch (max_batch_signals; default 5000).
    #[arg(long)]
    pub max_batch_signals: Option<usize>,
    /// Roll back on a breaching batch before its window closes (early_kill; default true).
    #[arg(long, value_name = "BOOL")]
    pub early_kill: Option<bool>,
    /// First wait before a failed webhook delivery is retried, ms (notify_retry_ms; default
    /// 1000); it doubles up to --notify-retry-max-ms.
    #[arg(long)]
    pub notify_retry_ms: Option<u64>,
    /// Longest wait between webhook retries, ms (notify_retry_max_ms; default 300000).
    #[arg(long)]
    pub notify_retry_max_ms: Option<u64>,
    /// How long one webhook POST may take, ms (notify_timeout_ms; default 5000).
    #[arg(long)]
    pub notify_timeout_ms: Option<u64>,
}

impl Timing {
    /// Overrides the config's values with the flags given.
    fn apply(&self, c: &mut NodeConfig) {
        let set = |flag: Option<u64>, key: &mut u64| {
            if let Some(v) = flag {
                *key = v;
            }
        };
        set(self.heartbeat_ms, &mut c.heartbeat_ms);
        set(self.election_timeout_min_ms, &mut c.election_timeout_min_ms);
        set(self.election_timeout_max_ms, &mut c.election_timeout_max_ms);
        set(self.snapshot_every, &mut c.snapshot_every);
        set(self.evaluate_every_ms, &mut c.evaluate_every_ms);
        set(self.request_timeout_ms, &mut c.request_timeout_ms);
        set(self.notify_retry_ms, &mut c.notify_retry_ms);
        set(self.notify_retry_max_ms, &mut c.notify_retry_max_ms);
        set(self.notify_timeout_ms, &mut c.notify_timeout_ms);
        if let Some(v) = self.max_batch_signals {
            c.max_batch_signals = v;
        }
        if let Some(v) = self.early_kill {
            c.early_kill = v;
        }
    }
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
    if args.flagd.is_some() {
        config.flagd = args.flagd;
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
    args.timing.apply(&mut config);
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
    tracing::info!(id = running.node.id, addr = %running.addr, http = ?running.http_addr, flagd = ?running.flagd_addr, "serving; initialise a new cluster with `rampart cluster init`");
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::super::{Cli, Command};
    use crate::node::NodeConfig;

    fn serve(extra: &[&str]) -> anyhow::Result<NodeConfig> {
        let mut argv = vec![
            "rampart",
            "serve",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:7101",
        ];
        argv.extend_from_slice(&["--data", "d"]);
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(args) => super::config(&args),
            _ => unreachable!(),
        }
    }

    #[test]
    fn timing_flags_set_the_config_and_are_validated() {
        let c =
            serve(&["--heartbeat-ms", "50", "--election-timeout-min-ms", "200"]).expect("config");
        assert_eq!((c.heartbeat_ms, c.election_timeout_min_ms), (50, 200));
        let e = serve(&["--election-timeout-min-ms", "150"]).expect_err("too short");
        assert!(e.to_string().contains("election_timeout_min_ms"), "{e}");
        assert!(serve(&[]).expect("config").early_kill);
        assert!(
            !serve(&["--early-kill", "false"])
                .expect("config")
                .early_kill
        );
    }

    /// The defaults `serve --help` states are the ones the node runs with.
    #[test]
    fn help_states_the_real_defaults() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let d = NodeConfig::new(1, "127.0.0.1:1".parse().unwrap(), "d".into());
        for (key, value) in [
            ("heartbeat_ms", d.heartbeat_ms),
            ("election_timeout_min_ms", d.election_timeout_min_ms),
            ("election_timeout_max_ms", d.election_timeout_max_ms),
            ("snapshot_every", d.snapshot_every),
            ("evaluate_every_ms", d.evaluate_every_ms),
            ("request_timeout_ms", d.request_timeout_ms),
            ("max_batch_signals", d.max_batch_signals as u64),
            ("notify_retry_ms", d.notify_retry_ms),
            ("notify_retry_max_ms", d.notify_retry_max_ms),
            ("notify_timeout_ms", d.notify_timeout_ms),
            ("max_clock_skew_ms", d.max_clock_skew_ms),
        ] {
            let stated = format!("{key}; default {value}");
            assert!(help.contains(&stated), "serve --help lacks {stated:?}");
        }
    }
}
