//! Backtest: replay a signal file against a contract, in arrival order, and say what the
//! engine would have decided — with the same `evaluate` the cluster's evaluator calls.
//!
//! Replay rules (the leader's, with the arrival clock standing in for cluster time):
//! - signals arrive in file order; the clock is the latest `received` time (when the line has
//!   one) or event time seen so far, so it never runs backwards;
//! - windows are aligned with `Contract::window_start`; the first window is the earliest
//!   signal's, the last is the latest signal's, and every window in between is judged, even an
//!   empty one (silence is evidence: it is stale);
//! - a window is judged once its end + grace has passed on the clock, and all remaining
//!   windows at the end of the file; a signal that arrives after its window was judged is
//!   refused as late, one more than `MAX_FUTURE_MS` ahead of the clock as from the future
//!   (both counted in `skipped`), as the leader refuses them;
//! - each window is judged once per cohort, cohorts in contract order, with `history` = that
//!   cohort's earlier windows (as many as a node keeps, `Contract::windows_kept`), starting from `CohortState::start(contract, first_window_start)`;
//! - a judgement's kill switch turns the gate's kill switch on for every later evaluation, and
//!   a gate-wide rollback sets every cohort to 0% (rolled back), as the state machine does;
//! - signals for another gate, an unknown metric or cohort, or of the wrong shape for their
//!   metric are counted as skipped, never silently dropped.
//!
//! Pure: no IO. The CLI reads the files and prints [`render_table`] or [`render_json`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::contract::Contract;
use super::evidence::{MetricEvidence, TopicEvidence};
use super::policy::{
    apply_judgement, evaluate, CohortState, CohortStatus, EvaluationInput, Verdict,
};
use super::signal::{format_time, Signal, SignalError, SignalLine};
use super::window::{CohortWindow, Window};
use crate::ids::{CohortName, Millis};

/// Signals the replay could not use, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub other_gate: u64,
    pub unknown_metric: u64,
    pub unknown_cohort: u64,
    /// The signal's shape does not fit its metric's kind (e.g. moments for a rate).
    pub wrong_kind: u64,
    /// Arrived after its window was judged (window end + grace had passed).
    #[serde(default)]
    pub late: u64,
    /// More than `MAX_FUTURE_MS` ahead of the clock when it arrived.
    #[serde(default)]
    pub future: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.other_gate
            + self.unknown_metric
            + self.unknown_cohort
            + self.wrong_kind
            + self.late
            + self.future
    }
}

/// A signal and when it reached the cluster (None: no later than the newest event seen).
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub signal: Signal,
    pub received: Option<Millis>,
}

/// One judged (cohort, window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestDecision {
    pub cohort: CohortName,
    pub window: Window,
    pub verdict: Verdict,
    pub from_exposure: f64,
    pub to_exposure: f64,
    pub status: CohortStatus,
    /// The gate's kill switch after this judgement, as a live decision's `kill_switch`: a
    /// rollback of one cohort leaves it off while another cohort still serves.
    pub kill_switch: bool,
    pub reason: String,
    pub evidence: Vec<MetricEvidence>,
    #[serde(default)]
    pub topics: Vec<TopicEvidence>,
}

/// The replay's timeline and where every cohort ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub gate: String,
    pub signals_used: u64,
    pub skipped: Skipped,
    pub windows: u64,
    /// One entry per cohort and window, in window order, cohorts in contract order.
    pub decisions: Vec<BacktestDecision>,
    pub final_states: BTreeMap<CohortName, CohortState>,
    pub kill_switch: bool,
}

impl BacktestReport {
    /// The decisions of one cohort, in window order.
    pub fn timeline<'a>(
        &'a self,
        cohort: &'a CohortName,
    ) -> impl Iterator<Item = &'a BacktestDecision> + 'a {
        self.decisions.iter().filter(move |d| &d.cohort == cohort)
    }
}

/// Parses a JSON-lines signal file: the signals, and each bad line's number (1-based) and
/// error. Blank lines and lines starting with `#` are ignored.
pub fn parse_signal_lines(text: &str) -> (Vec<Signal>, Vec<(usize, SignalError)>) {
    let (arrivals, errors) = parse_arrivals(text);
    (arrivals.into_iter().map(|a| a.signal).collect(), errors)
}

/// Parses a JSON-lines signal file with each line's optional `received` time.
pub fn parse_arrivals(text: &str) -> (Vec<Arrival>, Vec<(usize, SignalError)>) {
    let mut arrivals = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = SignalLine::read(trimmed).and_then(|l| {
            let received = l
                .received
                .as_deref()
                .map(|r| super::signal::parse_time("received", r))
                .transpose()?;
            Ok(Arrival {
                signal: l.into_signal()?,
                received,
            })
        });
        match parsed {
            Ok(a) => arrivals.push(a),
            Err(e) => errors.push((i + 1, e)),
        }
    }
    (arrivals, errors)
}

/// Replays `signals`, arriving in slice order, against `contract`.
pub fn backtest(contract: &Contract, signals: &[Signal]) -> BacktestReport {
    let arrivals: Vec<Arrival> = signals
        .iter()
        .map(|s| Arrival {
            signal: s.clone(),
            received: None,
        })
        .collect();
    backtest_arrivals(contract, &arrivals)
}

/// Replays `arrivals` against `contract` (see the module docs for the rules).
pub fn backtest_arrivals(contract: &Contract, arrivals: &[Arrival]) -> BacktestReport {
    let cohorts = contract.cohort_names();
    let mut clock = Millis::MIN;
    let sorted: Vec<(&Signal, Millis)> = arrivals
        .iter()
        .map(|a| {
            clock = clock.max(a.received.unwrap_or(a.signal.at));
            (&a.signal, clock)
        })
        .collect();
    let mut skipped = Skipped::default();
    let mut used = 0u64;
    let mut report = BacktestReport {
        gate: contract.gate.to_string(),
        signals_used: 0,
        skipped: Skipped::default(),
        windows: 0,
        decisions: Vec::new(),
        final_states: BTreeMap::new(),
        kill_switch: false,
    };
    let relevant = |s: &Signal, skipped: &mut Skipped| -> bool {
        if s.gate != contract.gate {
            skipped.other_gate += 1;
            false
        } else if contract.metric(&s.metric).is_none() {
            skipped.unknown_metric += 1;
            false
        } else if !cohorts.contains(&s.cohort) {
            skipped.unknown_cohort += 1;
            false
        } else {
            true
        }
    };
    let first = sorted
        .iter()
        .filter(|(s, _)| relevant(s, &mut Skipped::default()))
        .map(|(s, _)| s.at)
        .min();
    let Some(first) = first else {
        for (s, _) in &sorted {
            relevant(s, &mut skipped);
        }
        report.skipped = skipped;
        return report;
    };
    let first_start = contract.window_start(first);
    let width = contract.window.0;
    let mut replay = Replay {
        contract,
        cohorts: &cohorts,
        states: cohorts
            .iter()
            .map(|c| (c.clone(), CohortState::start(contract, first_start)))
            .collect(),
        history: cohorts.iter().map(|c| (c.clone(), Vec::new())).collect(),
        open: BTreeMap::new(),
        next_start: first_start,
        kill_switch: false,
        decisions: Vec::new(),
    };
    for (s, now) in sorted {
        if !relevant(s, &mut skipped) {
            continue;
        }
        // Judge every window whose end + grace has passed by this signal's arrival.
        while replay.next_start + width + contract.grace.0 <= now {
            replay.judge_next();
        }
        if s.at > now.saturating_add(super::signal::MAX_FUTURE_MS) {
            skipped.future += 1;
            continue;
        }
        let start = contract.window_start(s.at);
        if start < replay.next_start {
            skipped.late += 1;
            continue;
        }
        let Some(spec) = contract.metric(&s.metric) else {
            continue;
        };
        let window = Window {
            start,
            end: start + width,
        };
        let agg = replay
            .open
            .entry((start, s.cohort.clone()))
            .or_insert_with(|| CohortWindow::new(window));
        match agg.add(spec, s) {
            Ok(()) => used += 1,
            Err(_) => skipped.wrong_kind += 1,
        }
    }
    let last_start = replay.open.keys().map(|(start, _)| *start).max();
    while last_start.is_some_and(|last| replay.next_start <= last) {
        replay.judge_next();
    }
    report.signals_used = used;
    report.skipped = skipped;
    report.windows = u64::try_from((replay.next_start - first_start) / width).unwrap_or(0);
    report.kill_switch = replay.kill_switch;
    report.decisions = replay.decisions;
    report.final_states = replay.states;
    report
}

/// The replay's running state.
struct Replay<'a> {
    contract: &'a Contract,
    cohorts: &'a [CohortName],
    states: BTreeMap<CohortName, CohortState>,
    history: BTreeMap<CohortName, Vec<CohortWindow>>,
    open: BTreeMap<(Millis, CohortName), CohortWindow>,
    next_start: Millis,
    kill_switch: bool,
    decisions: Vec<BacktestDecision>,
}

impl Replay<'_> {
    /// Judges the window starting at `next_start` for every cohort, then moves on.
    fn judge_next(&mut self) {
        let window = Window {
            start: self.next_start,
            end: self.next_start + self.contract.window.0,
        };
        for cohort in self.cohorts {
            let current = self
                .open
                .remove(&(window.start, cohort.clone()))
                .unwrap_or_else(|| CohortWindow::new(window));
            let Some(state) = self.states.get(cohort).cloned() else {
                continue;
            };
            let history = self.history.entry(cohort.clone()).or_default();
            let judgement = evaluate(EvaluationInput {
                contract: self.contract,
                cohort,
                window,
                current: &current,
                history,
                state: &state,
                kill_switch: self.kill_switch,
            });
            history.push(current);
            // As many closed windows as a node keeps (what the judgement can reach).
            let kept = self.contract.windows_kept();
            if history.len() > kept {
                history.drain(..history.len() - kept);
            }
            apply_judgement(&mut self.states, &mut self.kill_switch, cohort, &judgement);
            let next = &judgement.next;
            self.decisions.push(BacktestDecision {
                cohort: cohort.clone(),
                window,
                verdict: judgement.verdict,
                from_exposure: state.exposure,
                to_exposure: next.exposure,
                status: next.status,
                kill_switch: self.kill_switch,
                reason: judgement.reason,
                evidence: judgement.evidence,
                topics: judgement.topics,
            });
        }
        self.next_start = window.end;
    }
}

/// The decision timeline as a table, one line per cohort and window.
pub fn render_table(report: &BacktestReport) -> String {
    let mut out = format!(
        "backtest of {}: {} windows, {} signals used, {} skipped{}\n",
        report.gate,
        report.windows,
        report.signals_used,
        report.skipped.total(),
        skipped_detail(&report.skipped)
    );
    out.push_str(&format!(
        "{:<20}  {:<10}  {:<14}  {:>8}  {:<17}  reason\n",
        "window", "cohort", "verdict", "exposure", "status"
    ));
    for d in &report.decisions {
        out.push_str(&format!(
            "{:<20}  {:<10}  {:<14}  {:>8}  {:<17}  {}\n",
            format_time(d.window.start),
            d.cohort.as_str(),
            d.verdict.as_str(),
            format!("{}→{}", trim_pct(d.from_exposure), trim_pct(d.to_exposure)),
            d.status.as_str(),
            d.reason
        ));
    }
    out.push_str("final:");
    for (cohort, state) in &report.final_states {
        out.push_str(&format!(
            " {cohort} {} at {}%;",
            state.status.as_str(),
            trim_pct(state.exposure)
        ));
    }
    out.push_str(&format!(
        " kill switch {}\n",
        if report.kill_switch { "on" } else { "off" }
    ));
    out
}

fn trim_pct(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn skipped_detail(s: &Skipped) -> String {
    if s.total() == 0 {
        return String::new();
    }
    format!(
        " (other gate {}, unknown metric {}, unknown cohort {}, wrong kind {}, late {}, from the future {})",
        s.other_gate, s.unknown_metric, s.unknown_cohort, s.wrong_kind, s.late, s.future
    )
}

/// The whole report as pretty JSON.
pub fn render_json(report: &BacktestReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}
