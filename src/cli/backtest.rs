//! `rampart backtest`: replays a signal file against a contract with the same engine the
//! leader uses and prints the decisions it would have made.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::table::Output;
use crate::engine::backtest::{backtest_arrivals, parse_arrivals, render_json, render_table};
use crate::engine::Contract;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The contract (YAML).
    #[arg(long, value_parser = super::existing_file)]
    pub contract: PathBuf,
    /// The signals (JSON lines, the format of `rampart signal push`), in the order they
    /// arrived; a line's optional `received` time says when (lateness is judged by it).
    #[arg(long, value_parser = super::existing_file)]
    pub signals: PathBuf,
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
