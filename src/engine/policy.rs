//! Policy: from a closed window's aggregates and a cohort's state to a verdict with evidence.
//!
//! `evaluate` is a pure function. Given the same input it returns the same judgement on
//! every node and in the backtester. It never reads a clock (time is the window's end), never
//! clears a kill switch, and never expands on unreliable evidence.
//!
//! # Decision semantics
//!
//! 1. Each metric is judged by [`judge::assess`](super::judge) (tests, reliability, rules
//!    met) and lands in a zone: the worst zone whose rule has held for its `windows`
//!    consecutive windows, or `unreliable` when a check it needs failed (a reliable kill stays
//!    a kill). A severe topic new in the treatment puts the cohort in `topics.on_new_severe`.
//! 2. Precedence: reliable **kill** > reliable **stop** > **unreliable** > **watch** >
//!    healthy. The zone's action applies (`actions`); unreliable evidence applies
//!    `on_unreliable` (manual review, or hold: stay without expanding).
//! 3. `Held` and `ManualReview` are sticky: only a kill changes them (an operator resumes).
//!    A kill switch that is on, or a rolled-back cohort, freezes the cohort: evidence is
//!    recorded, nothing changes.
//! 4. Healthy: expand one stage once the stage and the run of healthy windows have both lasted
//!    `stage_min_duration` (measured between window ends), unless the next stage is above the
//!    approval limit and not yet approved.
//!
//! Sequential evidence comes from `history` (cumulative aggregates since the gate began, or
//! since `evidence_since`), so no test state is stored in [`CohortState`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::contract::{Contract, MetricSpec};
use super::evidence::{MetricEvidence, TopicEvidence, Zone};
use super::judge::{self, MetricInput, MAX_SPAN};
use super::reason;
use super::reliability::srm_check;
use super::spans::{candidate_spans, EvidenceOrigin};
use super::topics;
use super::window::{CohortWindow, Window};
use crate::ids::{CohortName, MetricName, Millis};

/// Where a cohort's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortStatus {
    /// Climbing the ladder.
    Ramping,
    /// A watch zone: staying at the stage longer.
    Slowed,
    /// A stop zone: exposure kept until an operator resumes.
    Held,
    /// Healthy, but the next stage needs a human approval.
    AwaitingApproval,
    /// The evidence cannot be trusted: a human must look.
    ManualReview,
    /// Exposure at zero after a rollback.
    RolledBack,
    /// At 100%: nothing left to climb.
    Complete,
}

impl CohortStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CohortStatus::Ramping => "ramping",
            CohortStatus::Slowed => "slowed",
            CohortStatus::Held => "held",
            CohortStatus::AwaitingApproval => "awaiting_approval",
            CohortStatus::ManualReview => "manual_review",
            CohortStatus::RolledBack => "rolled_back",
            CohortStatus::Complete => "complete",
        }
    }
}

/// Consecutive windows a metric has met each zone's rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub watch: u32,
    pub stop: u32,
    pub kill: u32,
}

/// The rollout state of one cohort of a gate, as the state machine stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortState {
    /// Index into the ladder of the current stage.
    pub stage: usize,
    /// Exposure in percent (0 after a rollback; an operator may set any value).
    pub exposure: f64,
    pub status: CohortStatus,
    /// When the current stage began (a window end, or an operator's time).
    pub stage_since: Millis,
    pub streaks: BTreeMap<MetricName, Streak>,
    /// Highest stage index an operator has approved.
    pub approved_stage: Option<usize>,
    /// Start of the newest window decided for this cohort.
    pub last_window: Option<Millis>,
    /// Severe topics already acted upon, so one topic triggers once.
    #[serde(default)]
    pub severe_topics_seen: Vec<String>,
    /// Start of the first window of the current run of healthy windows (None after a window
    /// that was not healthy). A stage expands once both the stage and the healthy run have
    /// lasted `stage_min_duration`.
    #[serde(default)]
    pub healthy_since: Option<Millis>,
    /// Windows starting before this are left out of the sequential evidence. None: every
    /// window of the gate counts. The state machine may set it when an operator resumes a
    /// cohort so the test starts afresh on new data.
    #[serde(default)]
    pub evidence_since: Option<Millis>,
    /// Evidence restarts used so far (each spends a share of the error budget; at most
    /// `budget::max_restarts`).
    #[serde(default)]
    pub restarts: u32,
    /// Start of the cohort's first judged window: the origin of the change-detection grid.
    #[serde(default)]
    pub first_window: Option<Millis>,
}

impl CohortState {
    /// Whether the window starting at `start` has been judged (it, or a later one, was).
    pub fn judged(&self, start: Millis) -> bool {
        self.last_window.is_some_and(|last| last >= start)
    }

    /// A cohort at the first stage of the ladder, from `since`.
    pub fn start(contract: &Contract, since: Millis) -> Self {
        Self {
            stage: 0,
            exposure: contract.ladder.first().copied().unwrap_or(0.0),
            status: CohortStatus::Ramping,
            stage_since: since,
            streaks: BTreeMap::new(),
            approved_stage: None,
            last_window: None,
            severe_topics_seen: Vec::new(),
            healthy_since: None,
            evidence_since: None,
            restarts: 0,
            first_window: None,
        }
    }

    /// Restarts the sequential evidence at `from` (the first window of a new population),
    /// unless the cohort has used every restart its budget allows. Returns whether it did.
    pub fn restart_evidence(&mut self, contract: &Contract, from: Millis) -> bool {
        if self.restarts >= super::budget::max_restarts(contract) {
            return false;
        }
        self.restarts += 1;
        self.evidence_since = Some(from);
        true
    }
}

/// What the engine decided for a cohort's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Healthy long enough: one stage up.
    Expand,
    /// Nothing to change (healthy but not long enough, or already at the top).
    Stay,
    /// Watch zone: stay longer at this stage.
    Slow,
    /// Stop zone: hold exposure.
    Hold,
    /// Healthy, but the next stage needs an approval.
    AwaitApproval,
    /// Unreliable evidence: a human must look.
    ManualReview,
    /// Kill zone: this cohort to zero; the gate's kill switch goes on only when every cohort
    /// is then rolled back.
    Rollback,
    /// Kill zone with a gate-wide rollback: every cohort to zero, kill switch on.
    RollbackGate,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Expand => "expand",
            Verdict::Stay => "stay",
            Verdict::Slow => "slow",
            Verdict::Hold => "hold",
            Verdict::AwaitApproval => "await_approval",
            Verdict::ManualReview => "manual_review",
            Verdict::Rollback => "rollback",
            Verdict::RollbackGate => "rollback_gate",
        }
    }
}

/// Everything `evaluate` needs.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    pub contract: &'a Contract,
    pub cohort: &'a CohortName,
    /// The closed window being judged.
    pub window: Window,
    pub current: &'a CohortWindow,
    /// Earlier windows of this cohort, oldest first (for rolling baselines).
    pub history: &'a [CohortWindow],
    pub state: &'a CohortState,
    /// The gate's kill switch. When on, the engine records evidence and changes nothing.
    pub kill_switch: bool,
}

/// The engine's answer for one cohort's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The cohort's state after the verdict.
    pub next: CohortState,
    /// Whether the verdict asks for the gate's kill switch (every rollback does). It goes on
    /// only for a gate-wide rollback or when every cohort is then rolled back
    /// ([`apply_judgement`]); nothing here turns it off.
    pub kill_switch: bool,
    pub evidence: Vec<MetricEvidence>,
    /// One sentence a product manager understands.
    pub reason: String,
    /// Severe complaint topics seen in the treatment and not in control this window.
    #[serde(default)]
    pub topics: Vec<TopicEvidence>,
}

/// What the window's evidence adds up to, before the cohort's state is considered.
pub(crate) struct Outcome {
    /// Worst reliable zone (metrics and topics).
    pub(crate) worst: Zone,
    /// The evidence line behind `worst`, with its zone suffix.
    pub(crate) worst_text: String,
    /// First unreliable metric's line, when any metric is unreliable.
    pub(crate) unreliable: Option<String>,
    /// Why some metric cannot be judged yet (no rolling baseline), when nothing is worse.
    pub(crate) warming_up: Option<String>,
    pub(crate) metrics: usize,
}

/// Judges one closed window of one cohort (see the module docs for the semantics).
pub fn evaluate(input: EvaluationInput<'_>) -> Judgement {
    let contract = input.contract;
    let frozen = input.kill_switch || input.state.status == CohortStatus::RolledBack;
    let mut next = input.state.clone();
    next.last_window = Some(input.window.start);
    next.first_window.get_or_insert(input.window.start);

    let history = &input.history[input.history.len().saturating_sub(MAX_SPAN)..];
    let budget = Budget::of(contract);
    let origin = EvidenceOrigin {
        evidence_since: next.evidence_since,
        first_window: next.first_window,
    };
    let spans = candidate_spans(contract, origin, input.window, &budget);
    let restart_from = spans.first().map_or(input.window.start, |s| s.from);
    let srm = srm_check(
        contract,
        input.current,
        history,
        restart_from,
        budget.srm.max(f64::MIN_POSITIVE),
    );
    let srm_mismatch = srm.as_ref().and_then(|s| s.mismatch.clone());

    let mut streaks = next.streaks.clone();
    let mut evidence = Vec::with_capacity(contract.metrics.len());
    let mut outcome = Outcome {
        worst: Zone::Healthy,
        worst_text: String::new(),
        unreliable: None,
        warming_up: None,
        metrics: contract.metrics.len(),
    };
    for spec in &contract.metrics {
        let mut assessed = judge::assess(&MetricInput {
            contract,
            spec,
            window: input.window,
            current: input.current,
            history,
            baseline_history: input.history,
            spans: &spans,
            budget: &budget,
            srm_mismatch: srm_mismatch.as_deref(),
        });
        assessed.figures.srm_p_value = srm.as_ref().map(|s| s.p_value);
        let streak = streaks.entry(spec.name.clone()).or_default();
        let bump = |count: u32, met: bool| if met { count.saturating_add(1) } else { 0 };
        streak.watch = bump(streak.watch, assessed.met[0]);
        streak.stop = bump(streak.stop, assessed.met[1]);
        streak.kill = bump(streak.kill, assessed.met[2]);
        let [watch, stop, kill] = judge::rules(spec);
        let reached = |rule: Option<&super::contract::ZoneRule>, count: u32| {
            rule.is_some_and(|r| count >= r.windows)
        };
        let (mut zone, mut zone_streak) = if reached(kill, streak.kill) {
            (Zone::Kill, streak.kill)
        } else if reached(stop, streak.stop) {
            (Zone::Stop, streak.stop)
        } else if reached(watch, streak.watch) {
            (Zone::Watch, streak.watch)
        } else {
            (Zone::Healthy, 0)
        };
        if assessed.unreliable.is_some() && zone != Zone::Kill {
            zone = Zone::Unreliable;
            zone_streak = 0;
        }
        if zone == Zone::Healthy {
            if let Some(why) = &assessed.warming_up {
                outcome.warming_up.get_or_insert(why.clone());
            }
        }
        let mut e = to_evidence(input, spec, assessed, zone, zone_streak);
        e.summary = reason::metric_summary(spec, &e);
        let line = format!("{}{}", e.summary, reason::zone_suffix(zone, zone_streak));
        if zone == Zone::Unreliable {
            outcome.unreliable.get_or_insert(line);
        } else if zone > outcome.worst {
            outcome.worst = zone;
            outcome.worst_text = line;
        }
        evidence.push(e);
    }

    let topics = topics::scan(&topics::TopicInput {
        contract,
        cohort: input.cohort,
        window: input.window,
        current: input.current,
        history,
        spans: &spans,
        budget: &budget,
        seen: &input.state.severe_topics_seen,
        unreliable: srm_mismatch.is_some(),
    });
    for t in &topics {
        if t.any_mention && t.zone != Zone::Healthy && !frozen {
            next.severe_topics_seen.push(t.topic.clone());
        }
        if t.zone > outcome.worst {
            outcome.worst = t.zone;
            outcome.worst_text = format!("{}, severe topic", t.summary);
        }
    }

    if frozen {
        // Evidence and streaks are recorded (the audit trail stays true); exposure, status
        // and the rest of the cohort's state do not move.
        let mut still = input.state.clone();
        still.last_window = Some(input.window.start);
        still.first_window = next.first_window;
        still.streaks = streaks;
        let why = if input.kill_switch {
            "the kill switch is on"
        } else {
            "the cohort is rolled back"
        };
        let reason = format!(
            "{} stays at {}: {why}; evidence recorded, nothing changed",
            input.cohort,
            reason::exposure(still.exposure)
        );
        return Judgement {
            verdict: Verdict::Stay,
            next: still,
            kill_switch: false,
            evidence,
            reason,
            topics,
        };
    }
    next.streaks = streaks;
    let from = next.exposure;
    let (verdict, reason) = super::decide::decide(contract, input, &mut next, &outcome, from);
    if next.exposure != from && next.exposure > 0.0 {
        // A new population from the next window on: its evidence starts afresh.
        next.restart_evidence(contract, input.window.end);
    }
    Judgement {
        verdict,
        kill_switch: matches!(verdict, Verdict::Rollback | Verdict::RollbackGate),
        next,
        evidence,
        reason,
        topics,
    }
}

/// Judges an **open** window's data so far, for a rollback only. The sequential tests are
/// always valid — their guarantee holds at any look, also in the middle of a window — so a
/// kill rule that is met on the data so far may roll the cohort back before the window
/// closes. The judgement is returned only when it rolls back; it is then the window's one
/// decision for the cohort (the state machine refuses a second one; the window still takes
/// its later on-time signals, which its aggregate holds beyond the decision's evidence).
/// Fixed-horizon tests are valid at the window's close only, so a
/// `test: fixed` contract never kills early.
pub fn early_kill(input: EvaluationInput<'_>) -> Option<Judgement> {
    if input.kill_switch
        || input.state.status == CohortStatus::RolledBack
        || input.contract.test != super::contract::TestKind::Sequential
        || !input.contract.metrics.iter().any(|m| m.kill.is_some())
    {
        return None;
    }
    let mut judgement = evaluate(input);
    if !matches!(judgement.verdict, Verdict::Rollback | Verdict::RollbackGate) {
        return None;
    }
    judgement.reason = format!("{} (before the window closed)", judgement.reason);
    Some(judgement)
}

fn to_evidence(
    input: EvaluationInput<'_>,
    spec: &MetricSpec,
    a: judge::Assessment,
    zone: Zone,
    streak: u32,
) -> MetricEvidence {
    MetricEvidence {
        metric: spec.name.clone(),
        cohort: input.cohort.clone(),
        window: input.window,
        figures: a.figures,
        zone,
        streak,
        unreliable_reason: a.unreliable,
        summary: String::new(),
    }
}

/// The gate-level consequences of a judgement, shared by the state machine and the backtest
/// so both apply verdicts the same way: the cohort takes `judgement.next`; a gate-wide
/// rollback sets every cohort to 0% and rolled back; the gate's kill switch goes on with a
/// gate-wide rollback or when every cohort has been rolled back, and is never turned off here.
pub fn apply_judgement(
    cohorts: &mut BTreeMap<CohortName, CohortState>,
    kill_switch: &mut bool,
    cohort: &CohortName,
    judgement: &Judgement,
) {
    if judgement.verdict == Verdict::RollbackGate {
        for s in cohorts.values_mut() {
            s.exposure = 0.0;
            s.status = CohortStatus::RolledBack;
        }
    }
    cohorts.insert(cohort.clone(), judgement.next.clone());
    let all_rolled_back = cohorts
        .values()
        .all(|s| s.status == CohortStatus::RolledBack);
    let gate_wide =
        judgement.verdict == Verdict::RollbackGate || (judgement.kill_switch && all_rolled_back);
    *kill_switch = *kill_switch || gate_wide;
}
