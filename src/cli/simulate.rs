//! `rampart simulate`: writes a synthetic signal trace (`crate::scenario`) as JSON lines, for
//! `rampart backtest`, `rampart signal push` or a notebook.

use anyhow::{bail, Context};
use clap::Args;

use crate::engine::contract::Span;
use crate::engine::signal::parse_time;
use crate::ids::GateKey;
use crate::scenario::{self, Scenario};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario (see --list).
    pub scenario: Option<String>,
    /// List the scenarios and what a sound contract concludes from each.
    #[arg(long)]
    pub list: bool,
    /// The same seed gives the same trace.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many windows the trace covers.
    #[arg(long, default_value_t = 16)]
    pub windows: i64,
    /// The window length (the contract's `window`).
    #[arg(long, default_value = "15m")]
    pub window: String,
    /// When the first window starts (RFC 3339; aligned to the window by the contract).
    #[arg(long, default_value = "2026-11-21T10:00:00Z")]
    pub start: String,
    /// The gate the signals are for.
    #[arg(long, default_value = "checkout-v2")]
    pub gate: String,
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let Some(name) = args.scenario.as_deref().filter(|_| !args.list) else {
        for s in Scenario::ALL {
            outln!("{:18} {}", s.name(), s.describe());
        }
        return Ok(());
    };
    let Some(scenario) = Scenario::from_name(name) else {
        bail!("scenario: {name:?} is not a scenario; `rampart simulate --list` shows them");
    };
    let window = Span::try_from(args.window.clone())
        .map_err(|reason| anyhow::anyhow!("--window: {reason}"))?;
    if window.0 < 1000 {
        bail!("--window: must be at least 1s");
    }
    if !(1..=10_000).contains(&args.windows) {
        bail!("--windows: must be between 1 and 10000");
    }
    let start = parse_time("start", &args.start).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let gate = GateKey::try_from(args.gate.as_str()).context("--gate")?;
    let trace = scenario::trace(scenario, args.seed, args.windows, start, window.0, gate);
    out!("{}", scenario::to_lines(&trace));
    Ok(())
}
