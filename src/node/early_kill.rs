//! Kill rules checked on every committed batch, not only at the window's close.
//!
//! After signals are applied, the leader's evaluator asks the engine whether the open window
//! of each cohort whose gate received signals since the last look already meets a kill rule
//! ([`engine::early_kill`](crate::engine::early_kill)); if so it proposes that judgement as
//! the window's one decision, fenced by the gate's version like any other. A flash
//! regression then rolls back within the time of a commit, not at the window's end + grace.
//!
//! Owns only the bookkeeping of which gates changed; never decides anything itself.

use std::collections::BTreeMap;

use crate::engine::{early_kill, CohortWindow, EvaluationInput};
use crate::ids::GateKey;
use crate::state::{Command, State};

/// The gates' accepted-signal counts at the last look.
#[derive(Debug, Default)]
pub struct Watermarks {
    seen: BTreeMap<GateKey, u64>,
}

impl Watermarks {
    /// Decide commands for every open window that a kill rule already condemns, among the
    /// gates that accepted signals since the last call.
    pub fn rollbacks(&mut self, state: &State, leader: u64, term: u64) -> Vec<Command> {
        let now = state.cluster_time;
        let mut out = Vec::new();
        for gate in state.gates.values().filter(|g| !g.deleted) {
            let seen = self.seen.insert(gate.key.clone(), gate.signals_accepted);
            if seen == Some(gate.signals_accepted) || gate.kill_switch {
                continue;
            }
            for (cohort, cohort_state) in &gate.cohorts {
                let Some(window) = gate.next_window(cohort) else {
                    continue;
                };
                if gate.window_closed(window, now) {
                    continue; // the regular round judges it
                }
                let Some(current) = gate.windows.get(&(cohort.clone(), window.start)) else {
                    continue;
                };
                let history: Vec<CohortWindow> = gate.history(cohort, window.start);
                let judgement = early_kill(EvaluationInput {
                    contract: &gate.contract,
                    cohort,
                    window,
                    current,
                    history: &history,
                    state: cohort_state,
                    kill_switch: gate.kill_switch,
                });
                if let Some(judgement) = judgement {
                    out.push(Command::Decide {
                        gate: gate.key.clone(),
                        cohort: cohort.clone(),
                        window,
                        based_on: gate.version,
                        judgement: Box::new(judgement),
                        leader,
                        term,
                    });
                    break; // one decision per gate per look: it moves the gate's version
                }
            }
        }
        out
    }
}
