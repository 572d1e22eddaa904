//! Severe complaint topics: is the treatment's share of confident observations that mention
//! a topic higher than the control's?
//!
//! - `topics.severe` topics are **compared**: the mention share of the treatment (mentions /
//!   confident observations, pooled over the contract's observation metrics) against the
//!   control's, with the same one-sided test and evidence spans as a metric, at the topic's
//!   share of the error budget. A topic present at the same rate in both arms is no signal.
//!   The zone (`on_new_severe`) applies when the treatment's share is significantly higher
//!   and at least `min_increase` above the control's. The mixing sd is twice the control's
//!   share (the pooled share when control never mentions it), at least 0.5 points.
//! - `topics.any_mention` phrases act on `min_mentions` confident treatment mentions in a
//!   window, whatever the control says; each once per cohort (`severe_topics_seen`).
//!
//! Only confident observations count (the window aggregate leaves low-confidence ones out).

use super::budget::{compared_topics, Budget};
use super::contract::{Contract, MetricKind, TopicZone};
use super::evidence::{TopicEvidence, Zone};
use super::judge::{test_harm, Tested};
use super::spans::{pool, EvidenceSpan};
use super::stats::Moments;
use super::window::{CohortWindow, MetricWindow, Window};
use crate::ids::CohortName;

/// The zone a topic puts a cohort in.
pub fn zone_of(zone: TopicZone) -> Zone {
    match zone {
        TopicZone::Watch => Zone::Watch,
        TopicZone::Stop => Zone::Stop,
        TopicZone::Kill => Zone::Kill,
    }
}

/// Everything a topic scan needs.
pub struct TopicInput<'a> {
    pub contract: &'a Contract,
    pub cohort: &'a CohortName,
    pub window: Window,
    pub current: &'a CohortWindow,
    pub history: &'a [CohortWindow],
    pub spans: &'a [EvidenceSpan],
    pub budget: &'a Budget,
    /// `any_mention` phrases already acted upon.
    pub seen: &'a [String],
    /// The comparison cannot be trusted (sample-ratio mismatch).
    pub unreliable: bool,
}

/// Mentions and observations of one topic in both arms of one span.
#[derive(Default, Clone, Copy)]
struct Counts {
    treated: u64,
    treated_n: u64,
    control: u64,
    control_n: u64,
}

fn counts(windows: &[MetricWindow], key: &str) -> Counts {
    let mut c = Counts::default();
    for m in windows {
        c.treated += m.treatment.topics.get(key).copied().unwrap_or(0);
        c.control += m.control.topics.get(key).copied().unwrap_or(0);
        c.treated_n += m.treatment.n;
        c.control_n += m.control.n;
    }
    c
}

#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
fn share(mentions: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| mentions as f64 / n as f64)
}

/// Severe topics this window: compared topics with their test, `any_mention` phrases seen.
pub fn scan(input: &TopicInput<'_>) -> Vec<TopicEvidence> {
    let contract = input.contract;
    let Some(topics) = &contract.topics else {
        return Vec::new();
    };
    let observation_metrics: Vec<_> = contract
        .metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Observations)
        .collect();
    let Some(carrier) = observation_metrics.first() else {
        return Vec::new();
    };
    // Each observation metric pooled over each span.
    let pooled: Vec<Vec<(MetricWindow, u32)>> = observation_metrics
        .iter()
        .map(|m| {
            pool(
                input.history,
                input.current,
                input.window,
                &m.name,
                input.spans,
            )
        })
        .collect();
    let per_span = |i: usize| -> (Vec<MetricWindow>, u32) {
        let windows = pooled.iter().map(|p| p[i].0.clone()).collect();
        (windows, pooled.first().map_or(1, |p| p[i].1))
    };
    let now: Vec<MetricWindow> = observation_metrics
        .iter()
        .map(|m| input.current.metric(&m.name))
        .collect();
    let label = super::reason::metric_label(&carrier.name);
    let mut found = Vec::new();

    for key in compared_topics(contract) {
        if topics.any_mention.iter().any(|p| p.to_lowercase() == key) {
            continue;
        }
        let mut shown: Option<(i32, f64, Counts, u32, Option<Tested>)> = None;
        for (i, span) in input.spans.iter().enumerate() {
            let (windows, span_windows) = per_span(i);
            let c = counts(&windows, &key);
            let tested = compare_shares(input, topics.min_increase.0, c, span);
            let met = tested.as_ref().is_some_and(|(_, met)| *met);
            let rank = i32::from(met);
            let margin = tested.as_ref().map_or(f64::NEG_INFINITY, |(t, _)| t.margin);
            if shown
                .as_ref()
                .is_none_or(|s| rank > s.0 || (rank == s.0 && margin > s.1))
            {
                shown = Some((rank, margin, c, span_windows, tested.map(|t| t.0)));
            }
        }
        let Some((rank, _, c, span_windows, tested)) = shown else {
            continue;
        };
        if c.treated == 0 && c.control == 0 {
            continue;
        }
        let met = rank > 0 && !input.unreliable;
        let zone = if met {
            zone_of(topics.on_new_severe)
        } else {
            Zone::Healthy
        };
        let (ts, cs) = (share(c.treated, c.treated_n), share(c.control, c.control_n));
        let pct = |x: Option<f64>| x.map_or("-".to_owned(), super::reason::percent);
        let strength = match &tested {
            Some(t) if t.significant => "significantly more often than",
            _ => "not significantly more often than",
        };
        found.push(TopicEvidence {
            topic: key.clone(),
            metric: carrier.name.clone(),
            cohort: input.cohort.clone(),
            window: input.window,
            treatment_mentions: c.treated,
            control_mentions: c.control,
            zone,
            summary: format!(
                "{label}: treatment mentions \"{key}\" in {} of observations, {strength} control ({}){}",
                pct(ts),
                pct(cs),
                if span_windows > 1 {
                    format!(", over {span_windows} windows")
                } else {
                    String::new()
                }
            ),
            treatment_share: ts,
            control_share: cs,
            e_value: tested.and_then(|t| t.e_value),
            p_value: tested.and_then(|t| t.p_value),
            alpha: tested.map(|t| t.alpha),
            span_windows,
            any_mention: false,
        });
    }

    for phrase in &topics.any_mention {
        let key = phrase.to_lowercase();
        let c = counts(&now, &key);
        if c.treated < topics.min_mentions {
            continue;
        }
        let already = input.seen.iter().any(|s| s == &key);
        let zone = if already {
            Zone::Healthy
        } else {
            zone_of(topics.on_new_severe)
        };
        let times = if c.treated == 1 { "time" } else { "times" };
        found.push(TopicEvidence {
            topic: key.clone(),
            metric: carrier.name.clone(),
            cohort: input.cohort.clone(),
            window: input.window,
            treatment_mentions: c.treated,
            control_mentions: c.control,
            zone,
            summary: format!(
                "{label}: treatment mentions \"{key}\" {} {times} (a phrase that acts on any mention; control {}){}",
                c.treated,
                c.control,
                if already { " (already acted upon)" } else { "" }
            ),
            treatment_share: share(c.treated, c.treated_n),
            control_share: share(c.control, c.control_n),
            e_value: None,
            p_value: None,
            alpha: None,
            span_windows: 1,
            any_mention: true,
        });
    }
    found
}

/// The one-sided test of "the treatment mentions the topic no more often than control" on
/// one span, and whether the practical threshold is met too.
fn compare_shares(
    input: &TopicInput<'_>,
    min_increase: f64,
    c: Counts,
    span: &EvidenceSpan,
) -> Option<(Tested, bool)> {
    let a = Moments::rate(c.treated, c.treated_n)?;
    let b = Moments::rate(c.control, c.control_n)?;
    let v = a.var_of_mean() + b.var_of_mean();
    if !super::stats::positive(v) {
        return None;
    }
    let pooled = share(c.treated + c.control, c.treated_n + c.control_n)?;
    let reference = if b.mean > 0.0 { b.mean } else { pooled };
    // Severe topics matter as multiples of their usual share: the mixture weighs increases
    // of about twice control's share (at least half a percentage point).
    let tau = (2.0 * reference).max(5e-3);
    let alpha = span.level(input.budget, input.budget.topic);
    let sequential = input.budget.sequential;
    let t = test_harm(a.mean - b.mean, 1.0, v, Some(tau), None, alpha, sequential)?;
    let practical = a.mean >= b.mean * (1.0 + min_increase) && a.mean > b.mean;
    let met = t.significant && practical;
    Some((t, met))
}
