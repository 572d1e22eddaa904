//! One gate's replicated state: contract, cohorts, kill switch, window aggregates and its
//! decision log. Every change of a gate bumps its version and appends one `Decision`, so the
//! decision log is the gate's history with no gap: a watcher that saw version v needs exactly
//! the decisions after v.
//!
//! Pure and deterministic: the only time is the cluster time handed in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::command::{Override, OverrideKind, StateError};
use crate::engine::{
    CohortState, CohortStatus, CohortWindow, Contract, Judgement, MetricEvidence, TopicEvidence,
    Verdict, Window,
};
use crate::ids::{CohortName, GateKey, Millis, NodeId};

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The elected leader's evaluator.
    Leader { node: NodeId, term: u64 },
    /// A human, by name.
    Operator { actor: String },
}

/// What kind of change a decision was.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The engine's verdict on a window.
    Engine(Verdict),
    /// An operator's override.
    Override(OverrideKind),
    /// A contract version was applied.
    Contract,
    /// The contract was deleted.
    Deleted,
}

impl Action {
    pub fn label(&self) -> String {
        match self {
            Action::Engine(v) => v.as_str().to_owned(),
            Action::Override(k) => format!("override:{}", k.as_str()),
            Action::Contract => "contract".to_owned(),
            Action::Deleted => "deleted".to_owned(),
        }
    }
}

/// The change of one cohort in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortChange {
    pub cohort: CohortName,
    pub from_exposure: f64,
    pub to_exposure: f64,
    pub from_status: CohortStatus,
    pub to_status: CohortStatus,
}

/// An applied change of a gate, with its evidence. The gate's decision log is a list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The gate's version after this decision (1, 2, 3, ... with no gap).
    pub version: u64,
    pub gate: GateKey,
    /// The cohort judged or overridden; None for gate-wide changes.
    pub cohort: Option<CohortName>,
    pub window: Option<Window>,
    pub action: Action,
    pub changes: Vec<CohortChange>,
    pub kill_switch_before: bool,
    pub kill_switch: bool,
    pub reason: String,
    pub evidence: Vec<MetricEvidence>,
    /// The severe topics judged (engine decisions; absent in what older nodes wrote).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicEvidence>,
    pub contract_version: u64,
    pub decided_by: DecidedBy,
    /// Cluster time when applied.
    pub at: Millis,
}

impl Decision {
    /// Whether it changed anything (an exposure, a status, the kill switch, the contract) or
    /// was a person's act: what a reader of the log looks for among the windows judged quietly.
    pub fn changed_something(&self) -> bool {
        self.kill_switch != self.kill_switch_before
            || !matches!(self.action, Action::Engine(_))
            || self
                .changes
                .iter()
                .any(|c| c.from_exposure != c.to_exposure || c.from_status != c.to_status)
    }
}

/// Which variant a unit gets, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    pub variant: &'a str,
    pub treatment: bool,
    pub bucket: u32,
    pub exposure: f64,
    /// The exposure in force was set by an operator (set exposure, roll back), not climbed to
    /// by the engine: the unit's variant is an operator's targeting, not the ladder's split.
    pub operator_set: bool,
}

/// Why an evaluation names no cohort of the gate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CohortUnresolved {
    /// The gate has several cohorts and the evaluation named none.
    #[error("gate {gate} has cohorts {cohorts:?}; name one")]
    Ambiguous { gate: GateKey, cohorts: Vec<String> },
    /// The named cohort is not one of the gate's.
    #[error("gate {gate} has no cohort {cohort}")]
    Unknown { gate: GateKey, cohort: CohortName },
}

/// One gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub key: GateKey,
    pub contract: Contract,
    pub contract_version: u64,
    pub version: u64,
    pub kill_switch: bool,
    pub deleted: bool,
    /// Start of the first window the evaluator judges (the first full window after the
    /// contract was applied).
    pub first_window: Millis,
    pub cohorts: BTreeMap<CohortName, CohortState>,
    /// Aggregates per (cohort, window start): open windows and the last closed ones.
    pub windows: BTreeMap<(CohortName, Millis), CohortWindow>,
    pub decisions: Vec<Decision>,
    /// Signals accepted for this gate since it was created (retries counted once).
    #[serde(default)]
    pub signals_accepted: u64,
    /// Per webhook URL of the contract: the gate version through which every decision it
    /// wants was delivered (see `state::notify`).
    #[serde(default)]
    pub notified: BTreeMap<String, u64>,
    /// The cohorts whose exposure in force an operator set (see [`Assignment::operator_set`]),
    /// kept as decisions are recorded. None in what older nodes wrote: derived from the
    /// decision log until the next decision records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_exposure: Option<BTreeSet<CohortName>>,
}

/// The cohorts whose newest exposure change in `decisions` was an operator's override.
fn operator_exposure<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> BTreeSet<CohortName> {
    let mut set = BTreeSet::new();
    for d in decisions {
        note_exposure_changes(&mut set, d.action, &d.changes);
    }
    set
}

/// Updates `set` with the exposure changes of one decision.
fn note_exposure_changes(set: &mut BTreeSet<CohortName>, action: Action, changes: &[CohortChange]) {
    for change in changes.iter().filter(|c| c.from_exposure != c.to_exposure) {
        if matches!(action, Action::Override(_)) {
            set.insert(change.cohort.clone());
        } else {
            set.remove(&change.cohort);
        }
    }
}

impl Gate {
    /// A new gate at the first stage of its ladder.
    pub fn new(contract: Contract, now: Millis) -> Self {
        let first_window = contract.window_start(now) + contract.window.0;
        let cohorts = contract
            .cohort_names()
            .into_iter()
            .map(|c| (c, CohortState::start(&contract, first_window)))
            .collect();
        Self {
            key: contract.gate.clone(),
            contract,
            contract_version: 0,
            version: 0,
            kill_switch: false,
            deleted: false,
            first_window,
            cohorts,
            windows: BTreeMap::new(),
            decisions: Vec::new(),
            signals_accepted: 0,
            notified: BTreeMap::new(),
            operator_exposure: Some(BTreeSet::new()),
        }
    }

    /// The cohort an evaluation is for: the one it names, or the gate's only cohort.
    pub fn evaluated_cohort(
        &self,
        named: Option<CohortName>,
    ) -> Result<CohortName, CohortUnresolved> {
        match named {
            Some(cohort) if self.cohorts.contains_key(&cohort) => Ok(cohort),
            Some(cohort) => Err(CohortUnresolved::Unknown {
                gate: self.key.clone(),
                cohort,
            }),
            None if self.cohorts.len() == 1 => Ok(self
                .cohorts
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(CohortName::default_cohort)),
            None => Err(CohortUnresolved::Ambiguous {
                gate: self.key.clone(),
                cohorts: self.cohorts.keys().map(ToString::to_string).collect(),
            }),
        }
    }

    /// The variant of `unit` in `cohort`: sticky bucketing against the cohort's exposure; the
    /// fallback for everyone while the kill switch is on. None for an unknown cohort.
    pub fn assign(&self, cohort: &CohortName, unit: &str) -> Option<Assignment<'_>> {
        let state = self.cohorts.get(cohort)?;
        let bucket = crate::engine::bucket::bucket(self.key.as_str(), unit);
        let treatment = !self.kill_switch && crate::engine::bucket::exposed(bucket, state.exposure);
        let variants = &self.contract.variants;
        let variant = if treatment {
            &variants.treatment
        } else {
            &variants.fallback
        };
        let operator_set = match &self.operator_exposure {
            Some(set) => set.contains(cohort),
            None => operator_exposure(&self.decisions).contains(cohort),
        };
        Some(Assignment {
            variant,
            treatment,
            bucket,
            exposure: state.exposure,
            operator_set,
        })
    }

    /// The next window the evaluator must judge for a cohort.
    pub fn next_window(&self, cohort: &CohortName) -> Option<Window> {
        let state = self.cohorts.get(cohort)?;
        let w = self.contract.window.0;
        let start = state.last_window.map_or(self.first_window, |s| s + w);
        Some(Window {
            start,
            end: start + w,
        })
    }

    /// Whether a window is past its grace period at cluster time `now`.
    pub fn window_closed(&self, window: Window, now: Millis) -> bool {
        window.end + self.contract.grace.0 <= now
    }

    /// The closed windows of a cohort before `start`, oldest first.
    pub fn history(&self, cohort: &CohortName, start: Millis) -> Vec<CohortWindow> {
        self.windows
            .range((cohort.clone(), Millis::MIN)..(cohort.clone(), start))
            .map(|(_, w)| w.clone())
            .collect()
    }

    fn snapshot_cohorts(&self) -> BTreeMap<CohortName, (f64, CohortStatus)> {
        self.cohorts
            .iter()
            .map(|(c, s)| (c.clone(), (s.exposure, s.status)))
            .collect()
    }

    /// Appends a decision for the changes since `before` and bumps the version.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        before: BTreeMap<CohortName, (f64, CohortStatus)>,
        kill_before: bool,
        cohort: Option<CohortName>,
        window: Option<Window>,
        action: Action,
        reason: String,
        (evidence, topics): (Vec<MetricEvidence>, Vec<TopicEvidence>),
        decided_by: DecidedBy,
        now: Millis,
    ) -> &Decision {
        let mut changes = Vec::new();
        for (name, state) in &self.cohorts {
            let (from_exposure, from_status) = before
                .get(name)
                .copied()
                .unwrap_or((0.0, CohortStatus::Ramping));
            let touched = cohort.as_ref().is_none_or(|c| c == name);
            if touched || from_exposure != state.exposure || from_status != state.status {
                changes.push(CohortChange {
                    cohort: name.clone(),
                    from_exposure,
                    to_exposure: state.exposure,
                    from_status,
                    to_status: state.status,
                });
            }
        }
        let mut operator_set = self
            .operator_exposure
            .take()
            .unwrap_or_else(|| operator_exposure(&self.decisions));
        note_exposure_changes(&mut operator_set, action, &changes);
        self.operator_exposure = Some(operator_set);
        self.version += 1;
        self.decisions.push(Decision {
            version: self.version,
            gate: self.key.clone(),
            cohort,
            window,
            action,
            changes,
            kill_switch_before: kill_before,
            kill_switch: self.kill_switch,
            reason,
            evidence,
            topics,
            contract_version: self.contract_version,
            decided_by,
            at: now,
        });
        self.decisions.last().expect("just pushed")
    }

    /// Applies a new contract version, keeping the rollout state of cohorts that remain.
    pub fn put_contract(&mut self, contract: Contract, now: Millis) -> &Decision {
        let before = self.snapshot_cohorts();
        let kill_before = self.kill_switch;
        if contract.window != self.contract.window {
            self.windows.clear();
        }
        let mut cohorts = BTreeMap::new();
        for name in contract.cohort_names() {
            let state = match self.cohorts.remove(&name) {
                Some(mut s) if !self.deleted => {
                    if contract.ladder != self.contract.ladder {
                        // Stages are indices into the ladder: map them by percentage, or a
                        // cohort at 10% of [1, 5, 10, 25, ..] would be at stage 2 of a new
                        // [5, 25, 50, 100] and expand from "25%" straight to 100%.
                        let step = |i: usize| self.contract.ladder.get(i).copied();
                        s.stage = stage_at_or_below(&contract.ladder, s.exposure);
                        s.approved_stage = s
                            .approved_stage
                            .and_then(step)
                            .and_then(|pct| floor_stage(&contract.ladder, pct));
                    }
                    s
                }
                _ => {
                    CohortState::start(&contract, self.first_window.max(contract.window_start(now)))
                }
            };
            cohorts.insert(name, state);
        }
        self.windows.retain(|(c, _), _| cohorts.contains_key(c));
        self.cohorts = cohorts;
        self.deleted = false;
        self.sync_receivers(&contract);
        self.contract = contract;
        self.contract_version += 1;
        let reason = format!("contract version {} applied", self.contract_version);
        let by = DecidedBy::Operator {
            actor: "contract".to_owned(),
        };
        self.record(
            before,
            kill_before,
            None,
            None,
            Action::Contract,
            reason,
            (Vec::new(), Vec::new()),
            by,
            now,
        )
    }

    /// Marks the gate deleted.
    pub fn delete(&mut self, now: Millis) -> &Decision {
        let before = self.snapshot_cohorts();
        self.deleted = true;
        self.windows.clear();
        let by = DecidedBy::Operator {
            actor: "contract".to_owned(),
        };
        let kill = self.kill_switch;
        self.record(
            before,
            kill,
            None,
            None,
            Action::Deleted,
            "contract deleted".into(),
            (Vec::new(), Vec::new()),
            by,
            now,
        )
    }

    /// Applies the leader's judgement if it was computed from the current version and the
    /// window is not decided yet. Returns why not otherwise.
    pub fn decide(
        &mut self,
        cohort: &CohortName,
        window: Window,
        based_on: u64,
        judgement: Judgement,
        decided_by: DecidedBy,
        now: Millis,
    ) -> Result<&Decision, String> {
        if self.deleted {
            return Err("gate deleted".into());
        }
        if based_on != self.version {
            return Err(format!(
                "stale: computed from version {based_on}, gate is at {}",
                self.version
            ));
        }
        let Some(state) = self.cohorts.get(cohort) else {
            return Err(format!("no cohort {cohort}"));
        };
        if state.judged(window.start) {
            return Err(format!("window starting {} already decided", window.start));
        }
        let before = self.snapshot_cohorts();
        let kill_before = self.kill_switch;
        crate::engine::policy::apply_judgement(
            &mut self.cohorts,
            &mut self.kill_switch,
            cohort,
            &judgement,
        );
        // A decided window stays in the history even when no signal arrived, as in the backtest.
        self.windows
            .entry((cohort.clone(), window.start))
            .or_insert_with(|| CohortWindow::new(window));
        self.prune_windows(cohort, window.start);
        let action = Action::Engine(judgement.verdict);
        let scope = Some(cohort.clone());
        Ok(self.record(
            before,
            kill_before,
            scope,
            Some(window),
            action,
            judgement.reason,
            (judgement.evidence, judgement.topics),
            decided_by,
            now,
        ))
    }

    fn prune_windows(&mut self, cohort: &CohortName, decided: Millis) {
        // For rolling baselines, the sequential spans and the audit trail of aggregates.
        let kept = i64::try_from(self.contract.windows_kept()).unwrap_or(i64::MAX);
        let keep_from = decided.saturating_sub(self.contract.window.0.saturating_mul(kept));
        self.windows
            .retain(|(c, start), _| c != cohort || *start >= keep_from);
    }

    /// Applies an operator's override.
    pub fn apply_override(&mut self, ov: &Override, now: Millis) -> Result<&Decision, StateError> {
        let targets: Vec<CohortName> = match &ov.cohort {
            Some(c) if self.cohorts.contains_key(c) => vec![c.clone()],
            Some(c) => {
                return Err(StateError::UnknownCohort {
                    gate: self.key.clone(),
                    cohort: c.clone(),
                })
            }
            None => self.cohorts.keys().cloned().collect(),
        };
        let before = self.snapshot_cohorts();
        let kill_before = self.kill_switch;
        let ladder = self.contract.ladder.clone();
        let contract = self.contract.clone();
        // A new population begins with the first window after the override.
        let fresh_from = contract.window_start(now) + contract.window.0;
        for name in &targets {
            let Some(s) = self.cohorts.get_mut(name) else {
                continue;
            };
            match ov.kind {
                OverrideKind::Hold => s.status = CohortStatus::Held,
                OverrideKind::Resume => {
                    if s.status == CohortStatus::RolledBack || s.exposure <= 0.0 {
                        s.stage = 0;
                        s.exposure = ladder.first().copied().unwrap_or(0.0);
                    }
                    s.status = if s.stage + 1 >= ladder.len() {
                        CohortStatus::Complete
                    } else {
                        CohortStatus::Ramping
                    };
                    s.stage_since = now;
                    s.streaks.clear();
                    s.restart_evidence(&contract, fresh_from);
                }
                OverrideKind::Approve => {
                    s.approved_stage = Some(s.stage + 1);
                    if s.status == CohortStatus::AwaitingApproval {
                        s.status = CohortStatus::Ramping;
                    }
                }
                OverrideKind::Rollback => {
                    s.exposure = 0.0;
                    s.status = CohortStatus::RolledBack;
                }
                OverrideKind::Kill => {}
                OverrideKind::SetExposure(pct) => {
                    if !(0.0..=100.0).contains(&pct) || !pct.is_finite() {
                        return Err(StateError::Invalid {
                            field: "exposure".into(),
                            reason: format!("{pct} is not a percentage in [0, 100]"),
                        });
                    }
                    if s.exposure != pct {
                        s.restart_evidence(&contract, fresh_from);
                    }
                    s.exposure = pct;
                    s.stage = stage_at_or_below(&ladder, pct);
                    s.stage_since = now;
                    if s.status == CohortStatus::RolledBack && pct > 0.0 {
                        s.status = CohortStatus::Held;
                    }
                }
            }
        }
        match ov.kind {
            OverrideKind::Kill => self.kill_switch = true,
            // Only an operator's resume turns the kill switch off (invariant 4).
            OverrideKind::Resume => self.kill_switch = false,
            _ => {}
        }
        let reason = format!("{} by {}: {}", ov.kind.as_str(), ov.actor, ov.reason);
        let by = DecidedBy::Operator {
            actor: ov.actor.clone(),
        };
        let action = Action::Override(ov.kind);
        Ok(self.record(
            before,
            kill_before,
            ov.cohort.clone(),
            None,
            action,
            reason,
            (Vec::new(), Vec::new()),
            by,
            now,
        ))
    }
}

/// The highest stage of `ladder` at or below `pct`, if any.
fn floor_stage(ladder: &[f64], pct: f64) -> Option<usize> {
    ladder.iter().rposition(|stage| *stage <= pct)
}

/// The stage a cohort exposed to `pct` is at under `ladder` (the first below its first step).
fn stage_at_or_below(ladder: &[f64], pct: f64) -> usize {
    floor_stage(ladder, pct).unwrap_or(0)
}
