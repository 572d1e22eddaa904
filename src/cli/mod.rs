//! The command line: `rampart serve`, `rampart dev`, and client commands for people
//! (tables by default, `--json` for scripts). Async and IO live here, at the edge.

/// `println!` for command output: when stdout is closed (`rampart gate watch | head`), the
/// command ends quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output; see `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

mod backtest;
mod backup;
mod client;
mod demo;
mod dev;
mod remote;
mod secrets;
mod serve;
mod simulate;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rampart: a replicated release-gate cluster.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about)]
pub struct Cli {
    /// The node to talk to (any node: writes are forwarded to the leader).
    #[arg(
        long,
        global = true,
        env = "RAMPART_ENDPOINT",
        default_value = "http://127.0.0.1:7101"
    )]
    pub endpoint: String,
    /// Bearer token, when the cluster has an access file (see `rampart serve --access`).
    #[arg(long, global = true, env = "RAMPART_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) of a cluster serving mutual TLS; with --cert and --key. For
    /// `serve`, the node's own TLS material.
    #[arg(long, global = true, env = "RAMPART_CA", requires_all = ["cert", "key"])]
    pub ca: Option<PathBuf>,
    /// Certificate (PEM) shown to the cluster, signed by --ca.
    #[arg(long, global = true, env = "RAMPART_CERT", requires_all = ["ca", "key"])]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, global = true, env = "RAMPART_KEY", requires_all = ["ca", "cert"])]
    pub key: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log lines (stderr) as text or as one JSON object each (for log shippers). The level
    /// filter is RAMPART_LOG (e.g. `info,openraft=error`).
    #[arg(long, global = true, env = "RAMPART_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node.
    Serve(Box<serve::ServeArgs>),
    /// Run a local 3-node cluster on loopback with data under ./rampart-data.
    Dev(dev::DevArgs),
    /// Contracts: apply, get, list, delete.
    #[command(subcommand)]
    Contract(remote::ContractCmd),
    /// Signals: push a JSON-lines file.
    #[command(subcommand)]
    Signal(remote::SignalCmd),
    /// Gates: get, list, watch, evaluate.
    #[command(subcommand)]
    Gate(remote::GateCmd),
    /// The decision log of a gate, with evidence.
    Decisions(remote::DecisionsArgs),
    /// A human decision on a gate, with actor and reason.
    Override(remote::OverrideArgs),
    /// Cluster membership and status.
    #[command(subcommand)]
    Cluster(remote::ClusterCmd),
    /// Backups: save the whole cluster to a file, or check one.
    #[command(subcommand)]
    Snapshot(backup::SnapshotCmd),
    /// Restore a backup file into a fresh cluster (initialised, no gate, no signal).
    Restore(backup::RestoreArgs),
    /// Replay a signal file against a contract and print the decisions it would make.
    Backtest(backtest::BacktestArgs),
    /// Write a synthetic signal trace (healthy, regression, drift, ...) as JSON lines.
    Simulate(simulate::SimulateArgs),
    /// Exit 0 when the node at --endpoint reports SERVING on gRPC health (for healthchecks).
    Health,
    /// Make a CA and node and client certificates for mutual TLS (where the cluster runs).
    Certs(secrets::CertsArgs),
    /// Tokens: a new one, the hash of one for the access file, a whole access file.
    #[command(subcommand)]
    Token(secrets::TokenCmd),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG").unwrap_or_else(|_| {
        let default = match cli.command {
            Command::Serve(_) | Command::Dev(_) => "info,openraft=error,sled=warn",
            _ => "warn",
        };
        tracing_subscriber::EnvFilter::new(default)
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = table::Output { json: cli.json };
    let target = client::Target {
        endpoint: cli.endpoint.clone(),
        token: cli.token.clone(),
        tls: match (&cli.ca, &cli.cert, &cli.key) {
            (Some(ca), Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
    };
    match cli.command {
        Command::Serve(args) => serve::run(*args, target.tls).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Contract(cmd) => remote::contract(&target, out, cmd).await,
        Command::Signal(cmd) => remote::signal(&target, out, cmd).await,
        Command::Gate(cmd) => remote::gate(&target, out, cmd).await,
        Command::Decisions(args) => remote::decisions(&target, out, args).await,
        Command::Override(args) => remote::override_gate(&target, out, args).await,
        Command::Cluster(cmd) => remote::cluster(&target, out, cmd).await,
        Command::Snapshot(cmd) => backup::snapshot(&target, out, cmd).await,
        Command::Restore(args) => backup::restore(&target, out, args).await,
        Command::Backtest(args) if args.remote => backtest::run_remote(&target, out, &args).await,
        Command::Backtest(args) => backtest::run(out, &args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Health => remote::health(&target).await,
        Command::Certs(args) => secrets::certs(&args),
        Command::Token(cmd) => secrets::token(&cmd),
    }
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A path argument that must exist.
fn existing_file(path: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(path);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{path}: no such file"))
    }
}

/// Writes command output; exits 0 when the reader went away, 1 on any other write error.
pub(crate) fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}
