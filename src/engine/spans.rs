//! Evidence spans: the stretches of windows a cohort's tests are judged on.
//!
//! A regression may begin at any window, and evidence pooled since the gate began dilutes one
//! that begins late. So every sequential test is judged on several spans that end at the
//! window being judged, and a rule is met when the test on **any** of them shows harm at that
//! span's level:
//!
//! - the **restart span**, from the cohort's latest evidence restart (`evidence_since`): the
//!   evidence restarts whenever the cohort's exposure changes (a new population) or an
//!   operator resumes it, so a regression that comes with a stage is judged on that stage's
//!   data alone;
//! - **grid spans**, from every `span`-th window since the cohort's first window
//!   (`first_window + k · span · window`, k = 1, 2, … [`GRID_STARTS`]) that lies after the
//!   restart: a change inside a long stage (waiting for approval, at 100%) is judged on data
//!   that begins at most `span` windows before it.
//!
//! This is a windowed mixture-CUSUM (a "max over starts" e-detector, Shin, Ramdas & Rinaldo
//! 2023): each start's mixture ratio is an e-process from that start on, and the union bound
//! over every start that can ever exist is paid for in [`budget`](super::budget). The fixed
//! test has one span: the window alone.
//!
//! This module chooses spans and pools windows; it never judges.

use super::budget::{Budget, GRID_STARTS};
use super::contract::Contract;
use super::window::{CohortWindow, MetricWindow, Window};
use crate::ids::{MetricName, Millis};

/// Where a span starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStart {
    /// At the cohort's latest evidence restart (or the gate's first window).
    Restart,
    /// On the change-detection grid.
    Grid,
    /// The window alone (fixed test).
    Window,
}

/// One span a test is judged on: windows starting at or after `from`, up to the judged one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvidenceSpan {
    pub from: Millis,
    pub start: SpanStart,
}

impl EvidenceSpan {
    /// The level of this span for a test whose whole level is `of`.
    pub fn level(&self, budget: &Budget, of: f64) -> f64 {
        match self.start {
            SpanStart::Restart => budget.restart_span(of),
            SpanStart::Grid => budget.grid_span(of),
            SpanStart::Window => of,
        }
    }
}

/// Where a cohort's evidence begins: its latest restart and its first judged window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceOrigin {
    pub evidence_since: Option<Millis>,
    pub first_window: Option<Millis>,
}

/// The spans the cohort's tests are judged on for `window`, the restart span first.
pub fn candidate_spans(
    contract: &Contract,
    state: EvidenceOrigin,
    window: Window,
    budget: &Budget,
) -> Vec<EvidenceSpan> {
    if !budget.sequential {
        return vec![EvidenceSpan {
            from: window.start,
            start: SpanStart::Window,
        }];
    }
    let restart = state
        .evidence_since
        .unwrap_or(Millis::MIN)
        .min(window.start);
    let mut spans = vec![EvidenceSpan {
        from: restart,
        start: SpanStart::Restart,
    }];
    let first = state.first_window.unwrap_or(window.start);
    let step = contract
        .window
        .0
        .saturating_mul(i64::from(contract.span.max(1)));
    for k in 1..=i64::from(GRID_STARTS) {
        let from = first.saturating_add(step.saturating_mul(k));
        if from > window.start {
            break;
        }
        if from > restart {
            spans.push(EvidenceSpan {
                from,
                start: SpanStart::Grid,
            });
        }
    }
    spans
}

/// One metric pooled over each span: the aggregates and the number of windows pooled, in the
/// order of `spans`. `history` holds the earlier windows, oldest first.
pub fn pool(
    history: &[CohortWindow],
    current: &CohortWindow,
    window: Window,
    name: &MetricName,
    spans: &[EvidenceSpan],
) -> Vec<(MetricWindow, u32)> {
    // Walk from the newest window back, handing out the running sum at each span's start.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(spans[i].from));
    let mut out = vec![(MetricWindow::default(), 0u32); spans.len()];
    let mut running = current.metric(name);
    let mut count = 1u32;
    let mut older = history
        .iter()
        .rev()
        .filter(|w| w.window.is_some_and(|x| x.start < window.start));
    let mut next = older.next();
    for i in order {
        let from = spans[i].from;
        while let Some(w) = next {
            if w.window.is_none_or(|x| x.start < from) {
                break;
            }
            let m = w.metric(name);
            running.treatment.merge(&m.treatment);
            running.control.merge(&m.control);
            count += 1;
            next = older.next();
        }
        out[i] = (running.clone(), count);
    }
    out
}
