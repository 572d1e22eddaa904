//! The leader's evaluator: finds closed windows and proposes the engine's judgement of each.
//!
//! Runs on every node but acts only on the leader, and only after a read barrier
//! (`ensure_linearizable`), i.e. once the leader has applied everything committed before its
//! term. Windows close by *cluster time* (carried in the log), never by this node's clock: when
//! the bounded time (the lower median of a majority of the voters' clocks, see `super::clock`)
//! has passed a window's end + grace but no entry carried that time yet, the
//! evaluator proposes a `Tick`, and judges the window once the tick is applied. So a signal
//! applied after the judgement was computed is always refused as late, and the decision, the
//! backtest and every node agree on what the window held.
//!
//! Every decision carries the gate version it was computed from; the state machine drops it
//! if the version moved (a deposed leader's late proposal, an override in between).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Node;
use crate::engine::{evaluate, EvaluationInput};
use crate::ids::{CohortName, GateKey};
use crate::state::{Command, Response, State};

/// One window ready to be judged, with everything the engine needs.
struct Job {
    gate: GateKey,
    cohort: CohortName,
    /// When the window closed (end + grace), for the close → decision latency.
    closed_at: i64,
    command: Command,
}

/// The evaluator loop; returns when `shutdown` turns true.
pub async fn run(node: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(node.config.evaluate_every_ms);
    // The term in which this node last passed the read barrier as leader.
    let mut caught_up_in: Option<u64> = None;
    let mut watermarks = super::early_kill::Watermarks::default();
    loop {
        // Wake at the next window close (end + grace) if it comes before the next tick.
        // Followers just poll; a closed window that is still undecided waits 5ms, not 0.
        let next_close = if node.is_leader() {
            next_close(&node.state.read().state)
        } else {
            None
        };
        let until_close =
            next_close.map(|at| u64::try_from(at - node.bounded_now()).unwrap_or(0).max(5));
        let wait = until_close.map_or(every, |ms| every.min(Duration::from_millis(ms)));
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(wait) => {}
            () = node.state.commands_applied().notified() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        if !node.is_leader() {
            caught_up_in = None;
            continue;
        }
        let term = node.raft.metrics().borrow().current_term;
        if caught_up_in != Some(term) {
            // Once per term: apply everything committed before this leader's term.
            if let Err(e) = node.read_barrier().await {
                tracing::debug!(error = %e, "leader read barrier");
                continue;
            }
            caught_up_in = Some(term);
        }
        if let Err(e) = evaluate_round(&node, term).await {
            // A leader that is being deposed stops its round as a matter of course.
            if node.is_leader() && !e.retryable() {
                tracing::warn!(error = %e, term, "evaluation round failed; retried next tick");
            } else {
                tracing::debug!(error = %e, "evaluation round stopped");
            }
        }
        let rollbacks = if node.config.early_kill {
            let applied = node.state.read();
            watermarks.rollbacks(&applied.state, node.id, term)
        } else {
            Vec::new()
        };
        for command in rollbacks {
            if let Err(e) = node.write(command).await {
                tracing::debug!(error = %e, "early rollback not written");
                break;
            }
        }
    }
}

/// Judges every closed window, one decision per gate at a time, until none is left.
async fn evaluate_round(node: &Node, term: u64) -> Result<(), super::NodeError> {
    let started = std::time::Instant::now();
    let mut judged = 0u64;
    let outcome = judge_closed(node, term, &mut judged).await;
    if judged > 0 {
        node.metrics
            .evaluation_round_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    outcome
}

async fn judge_closed(node: &Node, term: u64, judged: &mut u64) -> Result<(), super::NodeError> {
    loop {
        let bounded = node.bounded_now();
        let (jobs, needs_tick) = {
            let applied = node.state.read();
            plan(&applied.state, bounded, node.id, term)
        };
        if jobs.is_empty() {
            if needs_tick {
                node.write(Command::Tick).await?;
                continue;
            }
            return Ok(());
        }
        for job in jobs {
            if !node.is_leader() {
                return Ok(());
            }
            let written = node.write(job.command).await?;
            match written.response {
                Response::Decided {
                    applied: false,
                    skipped,
                    ..
                } => {
                    tracing::info!(gate = %job.gate, cohort = %job.cohort, why = ?skipped, "decision not applied");
                }
                Response::Decided { applied: true, .. } => {
                    *judged += 1;
                    node.metrics.windows_judged.inc();
                    let latency_ms = node.bounded_now().saturating_sub(job.closed_at).max(0);
                    node.metrics
                        .decision_latency_seconds
                        .observe(latency_ms as f64 / 1000.0);
                }
                _ => {}
            }
        }
    }
}

/// When the earliest window not yet judged closes (its end + grace), if any gate is live.
fn next_close(state: &State) -> Option<i64> {
    state
        .gates
        .values()
        .filter(|g| !g.deleted)
        .flat_map(|g| {
            g.cohorts
                .keys()
                .filter_map(|c| g.next_window(c))
                .map(|w| w.end + g.contract.grace.0)
        })
        .min()
}

/// The next closed window of each gate (one per gate: a decision moves the gate's version),
/// and whether a tick is needed to close windows the bounded time has passed.
fn plan(state: &State, wall: i64, leader: u64, term: u64) -> (Vec<Job>, bool) {
    let now = state.cluster_time;
    let mut jobs = Vec::new();
    let mut needs_tick = false;
    for gate in state.gates.values().filter(|g| !g.deleted) {
        let mut earliest: Option<(CohortName, crate::engine::Window)> = None;
        for cohort in gate.cohorts.keys() {
            let Some(window) = gate.next_window(cohort) else {
                continue;
            };
            if gate.window_closed(window, now) {
                if earliest
                    .as_ref()
                    .is_none_or(|(_, w)| window.start < w.start)
                {
                    earliest = Some((cohort.clone(), window));
                }
            } else if gate.window_closed(window, wall.max(now)) {
                needs_tick = true;
            }
        }
        let Some((cohort, window)) = earliest else {
            continue;
        };
        let Some(state) = gate.cohorts.get(&cohort) else {
            continue;
        };
        let current = gate
            .windows
            .get(&(cohort.clone(), window.start))
            .cloned()
            .unwrap_or_else(|| crate::engine::CohortWindow::new(window));
        let history = gate.history(&cohort, window.start);
        let judgement = evaluate(EvaluationInput {
            contract: &gate.contract,
            cohort: &cohort,
            window,
            current: &current,
            history: &history,
            state,
            kill_switch: gate.kill_switch,
        });
        jobs.push(Job {
            gate: gate.key.clone(),
            cohort: cohort.clone(),
            closed_at: window.end + gate.contract.grace.0,
            command: Command::Decide {
                gate: gate.key.clone(),
                cohort,
                window,
                based_on: gate.version,
                judgement: Box::new(judgement),
                leader,
                term,
            },
        });
    }
    (jobs, needs_tick)
}
