//! `rampart backtest`: replays a signal file against a contract with the same engine the
//! leader uses and prints the decisions it would have made; here, or with `--remote` on the
//! node at `--endpoint` (`Contracts/Backtest`), which prints the same.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::table::Output;
use crate::engine::backtest::{
    backtest_arrivals, parse_arrivals, render_json, render_table, BacktestReport,
};
use crate::engine::Contract;
use crate::proto::v1 as pb;
use crate::proto::v1::contracts_client::ContractsClient;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The contract (YAML).
    #[arg(long, value_parser = super::existing_file)]
    pub contract: PathBuf,
    /// The signals (JSON lines, the format of `rampart signal push`), in the order they
    /// arrived; a line's optional `received` time says when (lateness is judged by it).
    #[arg(long, value_parser = super::existing_file)]
    pub signals: PathBuf,
    /// Replay on the node at --endpoint (the Backtest RPC, reader role) instead of here: the
    /// same engine, the node's build of it.
    #[arg(long)]
    pub remote: bool,
}

/// Replays on the node at `target`; prints what a local replay prints.
pub async fn run_remote(
    target: &super::client::Target,
    out: Output,
    args: &BacktestArgs,
) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(&args.contract)
        .with_context(|| format!("reading {}", args.contract.display()))?;
    let jsonl = std::fs::read_to_string(&args.signals)
        .with_context(|| format!("reading {}", args.signals.display()))?;
    let client = ContractsClient::new(super::client::connect(target).await?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let request = pb::BacktestRequest {
        yaml,
        arrivals: Vec::new(),
        jsonl,
    };
    let r = super::client::repeatable(
        &client,
        request,
        |mut c, r| async move { c.backtest(r).await },
    )
    .await
    .with_context(|| {
        format!(
            "backtesting {} on {}",
            args.contract.display(),
            target.endpoint
        )
    })?;
    for rejected in &r.rejected {
        eprintln!(
            "{}:{}: {}: {}",
            args.signals.display(),
            rejected.index,
            rejected.field,
            rejected.reason
        );
    }
    let report: BacktestReport =
        serde_json::from_str(&r.report_json).context("the node's backtest report")?;
    if out.json {
        outln!("{}", render_json(&report));
    } else {
        out!("{}", render_table(&report));
    }
    Ok(())
}

pub fn run(out: Output, args: &BacktestArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.contract)
        .with_context(|| format!("reading {}", args.contract.display()))?;
    let contract =
        Contract::from_yaml(&text).with_context(|| format!("in {}", args.contract.display()))?;
    let signals = std::fs::read_to_string(&args.signals)
        .with_context(|| format!("reading {}", args.signals.display()))?;
    let (arrivals, errors) = parse_arrivals(&signals);
    for (line, e) in &errors {
        eprintln!("{}:{line}: {e}", args.signals.display());
    }
    let report = backtest_arrivals(&contract, &arrivals);
    if out.json {
        outln!("{}", render_json(&report));
    } else {
        out!("{}", render_table(&report));
    }
    Ok(())
}
