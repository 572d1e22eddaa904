//! `rampart dev --demo`: a synthetic producer for a demo gate with 10-second windows
//! (`examples/demo.yaml`), so a newcomer watches cohorts expand stage by stage and a
//! regression in mobile roll back with its evidence within about a minute. The traffic is
//! `crate::scenario`'s `regression-mobile`, pushed live in 2-second slices.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::engine::{Contract, Signal};
use crate::ids::{GateKey, Millis};
use crate::node::Node;
use crate::scenario::{Generator, Scenario};
use crate::state::Command;

/// The demo's contract.
pub const DEMO_CONTRACT: &str = include_str!("../../examples/demo.yaml");
/// How often the producer pushes what the last slice of traffic made.
const SLICE_MS: i64 = 2_000;
/// The demo's traffic, in windows of the scenario's: a busy checkout (2,400 reviews per arm
/// and 10-second window), so a regression is found in a window or two.
const TRAFFIC: f64 = 4.0;

/// Applies the demo contract (a new version if it exists) and returns its gate.
pub async fn apply(node: &Node) -> anyhow::Result<GateKey> {
    let contract = Contract::from_yaml(DEMO_CONTRACT).context("the demo contract")?;
    let gate = contract.gate.clone();
    node.write(Command::PutContract {
        contract: Box::new(contract),
    })
    .await?;
    Ok(gate)
}

/// The signals of the slice that starts at `slice_start`, in the gate's window of that time.
fn slice(
    generator: &mut Generator,
    first_window: Millis,
    window: Millis,
    slice_start: Millis,
) -> Vec<Signal> {
    let w = (slice_start - first_window).div_euclid(window);
    let share = TRAFFIC * SLICE_MS as f64 / window as f64;
    generator
        .window(w, slice_start, SLICE_MS, share)
        .into_iter()
        .map(|a| a.signal)
        .collect()
}

/// Pushes the demo's traffic until the task is dropped: from the gate's first window on,
/// every slice's signals, stamped within the slice, through `node` (forwarded to the leader).
pub async fn produce(node: Arc<Node>, gate: GateKey, seed: u64) {
    let (first_window, window) = {
        let applied = node.state.read();
        match applied.state.gates.get(&gate) {
            Some(g) => (g.first_window, g.contract.window.0),
            None => return,
        }
    };
    let mut generator = Generator::new(Scenario::RegressionMobile, seed, gate);
    let mut slice_start = first_window;
    let mut batch = 0u64;
    loop {
        let slice_end = slice_start + SLICE_MS;
        let wait = slice_end - crate::node::wall_clock_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let signals = slice(&mut generator, first_window, window, slice_start);
        batch += 1;
        let command = Command::Ingest {
            idempotency_key: format!("demo-{seed}-{slice_start}-{batch}"),
            signals,
        };
        if let Err(e) = node.write(command).await {
            tracing::warn!(error = %e, "demo signals not pushed");
        }
        slice_start = slice_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::backtest::backtest;
    use crate::engine::{CohortStatus, Verdict};
    use crate::ids::CohortName;

    /// What a newcomer sees, replayed: both cohorts expand, mobile rolls back on negative
    /// reviews, desktop reaches 100%, all within the first minute and a half.
    #[test]
    fn the_demo_traffic_expands_then_rolls_mobile_back() {
        let contract = Contract::from_yaml(DEMO_CONTRACT).expect("demo contract");
        let window = contract.window.0;
        let first = 1_763_719_200_000;
        for seed in 1..=5 {
            let mut generator =
                Generator::new(Scenario::RegressionMobile, seed, contract.gate.clone());
            let signals: Vec<Signal> = (0..10 * window / SLICE_MS)
                .flat_map(|i| slice(&mut generator, first, window, first + i * SLICE_MS))
                .collect();
            let report = backtest(&contract, &signals);
            let mobile = CohortName::try_from("mobile").unwrap();
            let desktop = CohortName::try_from("desktop").unwrap();
            let rollback = report
                .timeline(&mobile)
                .find(|d| d.verdict == Verdict::Rollback)
                .unwrap_or_else(|| panic!("seed {seed}: mobile not rolled back"));
            assert!(
                rollback.reason.contains("negative review rate"),
                "{}",
                rollback.reason
            );
            assert!(
                rollback.from_exposure > 5.0,
                "seed {seed}: it expanded first"
            );
            assert!(
                rollback.window.start < first + 9 * window,
                "seed {seed}: rolled back late"
            );
            assert!(matches!(
                report.final_states[&desktop].status,
                CohortStatus::Ramping | CohortStatus::Complete
            ));
            let top = report
                .timeline(&desktop)
                .map(|d| d.to_exposure)
                .fold(0.0, f64::max);
            assert_eq!(top, 100.0, "seed {seed}: desktop reached {top}%");
        }
    }
}
