//! The drills runner: `rampart-chaos drills` runs named drills against local processes or a
//! docker-compose cluster and checks each; `rampart-chaos check DIR` re-checks a recorded drill.
//! All the IO of the crate lives under this module.

pub mod client;
pub mod cluster;
pub mod collect;
pub mod disks;
pub mod docker;
pub mod drills;
pub mod faults;
pub mod observers;
pub mod ops;
pub mod plan;
pub mod report;
pub mod secure;
pub mod shell;
pub mod storage;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::check::{self, Options};
use crate::history::{self, Record};
use cluster::{Cluster, Loopback};
use plan::{Drill, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "rampart-chaos",
    about = "Chaos drills for rampart, and their checker"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Target {
    Loopback,
    Docker,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run drills; exits non-zero on any violation.
    Drills {
        #[arg(long, value_enum, default_value = "loopback")]
        target: Target,
        /// Every drill, short (the CI mode).
        #[arg(long, conflicts_with = "long")]
        quick: bool,
        /// Longer workload and a random fault schedule from --seed.
        #[arg(long)]
        long: bool,
        /// Only these drills (repeatable), e.g. --drill kill-leader.
        #[arg(long = "drill")]
        drills: Vec<Drill>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Faults in the random schedule of --long.
        #[arg(long, default_value_t = 12)]
        faults: u32,
        /// Where histories, final states and reports go.
        #[arg(long, default_value = "chaos-out")]
        out: PathBuf,
        /// The rampart binary (loopback target).
        #[arg(long, env = "RAMPART_BIN", default_value = "target/release/rampart")]
        rampart: PathBuf,
        /// An older rampart binary: the rolling-upgrade drill starts every node on it and
        /// replaces them one by one with --rampart (loopback target).
        #[arg(long)]
        upgrade_from: Option<PathBuf>,
        /// The docker image (docker target).
        #[arg(long, default_value = "rampart:local")]
        image: String,
        /// Mutual TLS and access tokens on every connection (nodes, peers and the drill's
        /// clients), with certificates and tokens made fresh per drill.
        #[arg(long)]
        secure: bool,
    },
    /// Check a recorded drill (a directory with history.jsonl and nodes.jsonl).
    Check { dir: PathBuf },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Cmd::Check { dir } => {
            let record = read_record(&dir)?;
            let report = check::check(&record, Options::default());
            for v in &report.violations {
                println!("{v}");
            }
            println!(
                "{} violations; coverage {:?}",
                report.violations.len(),
                report.coverage
            );
            Ok(report.ok())
        }
        Cmd::Drills {
            target,
            quick: _,
            long,
            drills,
            seed,
            faults,
            out,
            rampart,
            upgrade_from,
            image,
            secure,
        } => {
            let settings = if long {
                Settings {
                    warmup: Duration::from_secs(5),
                    fault: Duration::from_secs(5),
                    after: Duration::from_secs(10),
                    random_faults: faults,
                    seed,
                }
            } else {
                Settings {
                    warmup: Duration::from_secs(4),
                    fault: Duration::from_secs(3),
                    after: Duration::from_secs(4),
                    random_faults: 3,
                    seed,
                }
            };
            let list: Vec<Drill> = match (drills.is_empty(), long) {
                (false, _) => drills,
                (true, true) => vec![Drill::Random],
                (true, false) => Drill::QUICK.to_vec(),
            };
            // A drill that overruns this is a failure (a node that never came back, a hung call).
            let budget = Duration::from_secs(240 + 15 * u64::from(settings.random_faults));
            std::fs::create_dir_all(&out)?;
            let mut rows = Vec::new();
            let mut all_ok = true;
            println!("{}", report::header());
            for drill in list {
                let dir = out.join(drill.name());
                std::fs::create_dir_all(&dir)?;
                let mut cluster: Box<dyn Cluster> = match target {
                    Target::Loopback => Box::new(Loopback::new(
                        rampart.clone(),
                        upgrade_from
                            .clone()
                            .filter(|_| drill == Drill::RollingUpgrade),
                        dir.join("data"),
                        3,
                        secure,
                        drill == Drill::ClockSkew,
                    )?),
                    Target::Docker => Box::new(docker::Docker::new(
                        &image,
                        &dir.join("docker"),
                        3,
                        secure,
                        drill == Drill::ClockSkew,
                    )?),
                };
                let began = std::time::Instant::now();
                let result =
                    tokio::time::timeout(budget, drills::run(drill, cluster.as_mut(), &settings))
                        .await;
                cluster.teardown();
                let outcome = match result {
                    Ok(Ok(o)) => o,
                    Ok(Err(e)) => {
                        all_ok = false;
                        println!(
                            "{:<20} {:<8} ERROR: {e:#}",
                            drill.name(),
                            target_name(target)
                        );
                        continue;
                    }
                    Err(_) => {
                        all_ok = false;
                        println!(
                            "{:<20} {:<8} ERROR: drill timed out",
                            drill.name(),
                            target_name(target)
                        );
                        continue;
                    }
                };
                write_record(&dir, &outcome.record)?;
                let report = check::check(&outcome.record, Options::default());
                let row = report::row(
                    drill.name(),
                    target_name(target),
                    began.elapsed().as_secs(),
                    &outcome,
                    report,
                );
                println!("{}", report::line(&row));
                for v in &row.report.violations {
                    println!("    {v}");
                    for id in v.ops.iter().take(5) {
                        if let Some(op) = outcome.record.ops.iter().find(|o| o.id == *id) {
                            println!("        {}", describe(op));
                        }
                    }
                }
                all_ok &= row.ok();
                std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&row)?)?;
                rows.push(row);
            }
            std::fs::write(
                out.join("summary.json"),
                serde_json::to_string_pretty(&rows)?,
            )?;
            println!(
                "{}",
                if all_ok {
                    "all drills passed"
                } else {
                    "VIOLATIONS (see above)"
                }
            );
            Ok(all_ok)
        }
    }
}

/// One line about an operation, for a violation's readers.
fn describe(op: &history::Op) -> String {
    let start = op.start / 1000;
    format!(
        "#{} client {} node {} {} {:?} [{}ms +{}ms]{}",
        op.id,
        op.client,
        op.node.map_or("-".to_owned(), |n| n.to_string()),
        op.call.kind(),
        op.outcome,
        start,
        (op.end - op.start) / 1000,
        op.error
            .as_ref()
            .map_or(String::new(), |e| format!(" error: {e}"))
    )
}

fn target_name(t: Target) -> &'static str {
    match t {
        Target::Loopback => "loopback",
        Target::Docker => "docker",
    }
}

fn write_record(dir: &Path, record: &Record) -> anyhow::Result<()> {
    std::fs::write(dir.join("history.jsonl"), history::to_lines(&record.ops)?)?;
    std::fs::write(dir.join("nodes.jsonl"), history::to_lines(&record.nodes)?)?;
    Ok(())
}

fn read_record(dir: &Path) -> anyhow::Result<Record> {
    let ops = std::fs::read_to_string(dir.join("history.jsonl")).context("history.jsonl")?;
    let nodes = std::fs::read_to_string(dir.join("nodes.jsonl")).context("nodes.jsonl")?;
    Ok(Record {
        ops: history::parse_ops(&ops)?,
        nodes: history::parse_nodes(&nodes)?,
    })
}
