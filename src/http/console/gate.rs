//! A gate's page (`/console/gates/{gate}`): its cohorts on the ladder, exposure over time with
//! every decision marked, treatment against baseline per window for each metric and cohort
//! (from the decisions' evidence), the latest window's figures and warnings, the decisions that
//! changed something, the contract, and the actions the visitor may take.

use std::collections::BTreeMap;

use axum::extract::RawQuery;
use maud::{html, Markup};

use super::chart::{self, DecisionMark, ExposureLine, Unit, WindowPoint};
use super::{actions, lag_banner, read, show, PageResult, Visitor};
use crate::auth::Role;
use crate::engine::contract::{Contract, MetricKind, MetricSpec};
use crate::http::call::Segment;
use crate::http::error::HttpError;
use crate::http::routes::params;
use crate::proto::v1 as pb;
use crate::proto::v1::contracts_server::Contracts;
use crate::proto::v1::gates_server::Gates;

/// How many of the latest decisions the page reads (the API's most per call).
const DECISIONS: u64 = 1000;
/// How many windows each metric's chart draws (a day of 15-minute windows).
const WINDOWS: usize = 96;

/// What the page is drawn from, all read at the same consistency.
struct View {
    gate: pb::GateState,
    decisions: Vec<pb::Decision>,
    contract: pb::ContractInfo,
}

async fn view(visitor: &Visitor, gate: &str) -> Result<super::Read<View>, HttpError> {
    read(|consistency| async move {
        let api = &visitor.edge.api;
        let state = Gates::get_gate(
            api,
            visitor.request(pb::GetGateRequest {
                gate: gate.to_owned(),
                consistency,
            })?,
        )
        .await?
        .into_inner();
        let decisions = Gates::list_decisions(
            api,
            visitor.request(pb::ListDecisionsRequest {
                gate: gate.to_owned(),
                after_version: state.version.saturating_sub(DECISIONS),
                limit: DECISIONS as u32,
                consistency,
            })?,
        )
        .await?
        .into_inner()
        .decisions;
        let contract = Contracts::get_contract(
            api,
            visitor.request(pb::GetContractRequest {
                gate: gate.to_owned(),
                consistency,
            })?,
        )
        .await?
        .into_inner();
        Ok(View {
            gate: state,
            decisions,
            contract,
        })
    })
    .await
}

/// `GET /console/gates/{gate}`; `?done=<version>` after an action names the decision it wrote.
pub async fn page(visitor: Visitor, Segment(gate): Segment, RawQuery(raw): RawQuery) -> PageResult {
    let p = params(raw.as_deref(), &["done"])?;
    let done = p
        .get("done")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| HttpError::invalid("done", format!("`{v}` is not a version")))
        })
        .transpose()?;
    let read = view(&visitor, &gate).await?;
    let v = read.value;
    // The contract as stored parses (the leader validated it); a page that cannot read it
    // still shows the gate, without thresholds.
    let contract = Contract::from_yaml(&v.contract.yaml).ok();
    let now = crate::node::wall_clock_ms();
    let g = &v.gate;
    // A local read (no leader) also says how long ago this node last applied a change.
    let lag = lag_banner(g.read.as_ref());
    let banner = read
        .banner
        .map(|b| html! { (b) @if let Some(lag) = &lag { " " (lag) } });
    let body = html! {
        h1 { "Gate " (g.gate) " " (show::kill_switch(g.kill_switch)) }
        p.summary data-events=(format!("/console/events?gate={}", g.gate)) data-every-decision {
            "Version " (g.version) " · contract version " (g.contract_version)
            " · " (g.signals_accepted) " signals accepted"
            @if !v.contract.owner.is_empty() { " · owner " (v.contract.owner) }
            @if !v.contract.description.is_empty() { " · " (v.contract.description) }
        }
        @if let Some(version) = done {
            p.flash role="status" {
                "Done: "
                a href=(decision_href(&g.gate, version)) { "decision " (version) }
                " is in the log on a quorum."
            }
        }
        @if visitor.may(Role::Operator) {
            (actions::form(&visitor, g))
        }
        (ladder(g, contract.as_ref()))
        (exposure(g, &v.decisions, now))
        (metrics(&cohort_names(g), &judged(judgements(&v.decisions)), contract.as_ref()))
        (decisions(g, &v.decisions, now))
        (contract_section(&v.contract, &v.decisions))
    };
    Ok(visitor.page(&format!("Gate {}", g.gate), banner, body))
}

fn cohort_names(g: &pb::GateState) -> Vec<&str> {
    g.cohorts.iter().map(|c| c.cohort.as_str()).collect()
}

pub fn decision_href(gate: &str, version: u64) -> String {
    format!("/console/gates/{gate}/decisions/{version}")
}

fn ladder(g: &pb::GateState, contract: Option<&Contract>) -> Markup {
    let stages: Vec<f64> = contract.map(|c| c.ladder.clone()).unwrap_or_default();
    html! {
        section {
            h2 { "Ladder" }
            table.ladder {
                thead { tr {
                    th { "Cohort" } th { "Status" } th.num { "Exposure" }
                    @for (i, s) in stages.iter().enumerate() { th.num { "stage " (i) ": " (show::exposure(*s)) } }
                    th { "On this stage since" } th { "Last window" }
                } }
                tbody {
                    @for c in &g.cohorts {
                        tr data-cohort=(c.cohort) {
                            td { (c.cohort) }
                            td { (show::status(&c.status)) }
                            td.num { (show::exposure(c.exposure)) }
                            @for i in 0..stages.len() {
                                @let here = i == c.stage as usize;
                                td.stage.here[here] { @if here { "●" span.sr { " current stage" } } @else if i < c.stage as usize { "✓" } }
                            }
                            td { (show::time(c.stage_since.as_ref())) }
                            td { (show::time(c.last_window.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}

/// Each cohort's exposure as steps through the decisions read, the decisions marked.
fn exposure(g: &pb::GateState, decisions: &[pb::Decision], now: i64) -> Markup {
    let start = decisions
        .first()
        .and_then(|d| show::ms(d.at.as_ref()))
        .unwrap_or(now - 3_600_000);
    let lines: Vec<ExposureLine> = g
        .cohorts
        .iter()
        .map(|c| exposure_line(&c.cohort, c.exposure, decisions, start))
        .collect();
    let marks: Vec<DecisionMark> = decisions
        .iter()
        .filter_map(|d| {
            Some(DecisionMark {
                at: show::ms(d.at.as_ref())?,
                version: d.version,
                action: d.action.clone(),
                changed: show::changed(d),
                href: decision_href(&g.gate, d.version),
            })
        })
        .collect();
    html! {
        section {
            h2 { "Exposure over time" }
            @if decisions.is_empty() { p { "No decision yet." } }
            @else { (chart::exposure(&lines, &marks, (start, now.max(start + 1)))) }
        }
    }
}

/// A cohort's steps: where it stood before the first change read, then each change.
fn exposure_line(
    cohort: &str,
    current: f64,
    decisions: &[pb::Decision],
    start: i64,
) -> ExposureLine {
    let changes: Vec<(i64, &pb::CohortChange)> = decisions
        .iter()
        .filter_map(|d| Some((show::ms(d.at.as_ref())?, d)))
        .flat_map(|(at, d)| {
            d.changes
                .iter()
                .filter(|c| c.cohort == cohort)
                .map(move |c| (at, c))
        })
        .collect();
    let first = changes.first().map_or(current, |(_, c)| c.from_exposure);
    let mut steps = vec![(start, first)];
    steps.extend(changes.iter().map(|(at, c)| (*at, c.to_exposure)));
    ExposureLine {
        cohort: cohort.to_owned(),
        steps,
    }
}

/// The judged windows of each (metric, cohort), oldest first.
pub type Judged<'a> = BTreeMap<(String, String), Vec<&'a pb::MetricEvidence>>;

/// The judged windows of one metric in one cohort, oldest first, from the decisions' evidence.
/// A window judged twice (early, by a kill rule on a committed batch, then on time) keeps the
/// judgement that changed something, else its last.
/// `judgements` are each decision's (whether it changed something, its evidence), in order.
pub fn judged<'a>(
    judgements: impl IntoIterator<Item = (bool, &'a [pb::MetricEvidence])>,
) -> Judged<'a> {
    type Windows<'a> = BTreeMap<i64, (bool, &'a pb::MetricEvidence)>;
    let mut by: BTreeMap<(String, String), Windows> = BTreeMap::new();
    for (acted, evidence) in judgements {
        for e in evidence {
            let Some(start) = show::ms(e.window_start.as_ref()) else {
                continue;
            };
            let windows = by.entry((e.metric.clone(), e.cohort.clone())).or_default();
            match windows.get(&start) {
                Some((true, _)) if !acted => {}
                _ => {
                    windows.insert(start, (acted, e));
                }
            }
        }
    }
    by.into_iter()
        .map(|(k, windows)| {
            let all: Vec<&pb::MetricEvidence> = windows.into_values().map(|(_, e)| e).collect();
            let keep = all.len().saturating_sub(WINDOWS);
            (k, all[keep..].to_vec())
        })
        .collect()
}

fn unit(spec: Option<&MetricSpec>) -> Unit {
    match spec.map(|s| s.kind) {
        Some(MetricKind::Rate) => Unit::Share,
        _ => Unit::AsSent,
    }
}

/// A window as the chart draws it: the treatment over the judged span, the interval it was
/// decided on, the baseline, and where the zones start against that baseline.
pub fn point(e: &pb::MetricEvidence, spec: Option<&MetricSpec>) -> WindowPoint {
    let baseline = e.baseline.or(e.control);
    let latency = spec.is_some_and(|s| s.kind == MetricKind::Latency);
    let around_baseline = match (&e.delta_interval, baseline) {
        (Some(i), Some(b)) if !latency => Some((b + i.low, b + i.high)),
        _ => None,
    };
    let interval = around_baseline
        .or_else(|| e.treatment_interval.as_ref().map(|i| (i.low, i.high)))
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
    let thresholds = match spec {
        Some(s) => s
            .zone_rules()
            .map(|rule| rule.and_then(|r| s.threshold(r, baseline))),
        None => [None; 3],
    };
    WindowPoint {
        start: show::ms(e.window_start.as_ref()).unwrap_or(0),
        end: show::ms(e.window_end.as_ref()).unwrap_or(0),
        treatment: e.treatment,
        interval,
        baseline,
        thresholds,
        zone: e.zone.clone(),
    }
}

/// The charts and the latest window's table.
/// A gate's decisions as judgements for [`judged`].
fn judgements(decisions: &[pb::Decision]) -> impl Iterator<Item = (bool, &[pb::MetricEvidence])> {
    decisions
        .iter()
        .map(|d| (show::changed(d), d.evidence.as_slice()))
}

/// The window charts of every metric in each of `cohorts`, and the latest window's table.
pub fn metrics(cohorts: &[&str], windows: &Judged, contract: Option<&Contract>) -> Markup {
    let spec =
        |name: &str| contract.and_then(|c| c.metrics.iter().find(|m| m.name.as_str() == name));
    // The contract's metric order, then any metric only old evidence names.
    let mut order: Vec<String> = contract
        .map(|c| {
            c.metrics
                .iter()
                .map(|m| m.name.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    for (metric, _) in windows.keys() {
        if !order.contains(metric) {
            order.push(metric.clone());
        }
    }
    html! {
        section {
            h2 { "Treatment against baseline, per window" }
            (chart::windows_legend())
            @if windows.is_empty() { p { "No window judged yet." } }
            @for metric in &order {
                @let spec = spec(metric);
                div.metric data-metric=(metric) {
                    h3 { (metric) @if let Some(s) = spec { " " small { (describe(s)) } } }
                    div.charts {
                        @for cohort in cohorts {
                            @if let Some(evidence) = windows.get(&(metric.clone(), (*cohort).to_owned())) {
                                @let points: Vec<WindowPoint> = evidence.iter().map(|e| point(e, spec)).collect();
                                (chart::windows(&format!("{metric} · {cohort}"), unit(spec), &points))
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Latest window" }
            table.latest {
                thead { tr {
                    th { "Cohort" } th { "Metric" } th { "Zone" } th.num { "Treatment" } th.num { "Baseline" }
                    th.num { "Samples (treatment / control)" } th { "Warnings" } th { "Summary" }
                } }
                tbody {
                    @for ((metric, cohort), evidence) in windows {
                        @if let Some(e) = evidence.last() {
                            @let spec = spec(metric);
                            @let u = unit(spec);
                            tr data-cohort=(cohort) data-metric=(metric) {
                                td { (cohort) } td { (metric) } td { (show::zone(&e.zone)) }
                                td.num { (e.treatment.map(|v| u.show(v)).unwrap_or_else(|| "—".into())) }
                                td.num { (e.baseline.or(e.control).map(|v| u.show(v)).unwrap_or_else(|| "—".into())) }
                                td.num { (e.samples_treatment) " / " (e.samples_control) }
                                td.warnings { @for w in warnings(e, spec, contract) { span.warning { (w) } " " } }
                                td { (e.summary) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a metric is judged, in a few words.
fn describe(s: &MetricSpec) -> String {
    let kind = match s.kind {
        MetricKind::Rate => "rate",
        MetricKind::Mean => "mean",
        MetricKind::Observations => "observations (mean score)",
        MetricKind::Latency => "latency",
    };
    let better = match s.better {
        crate::engine::contract::Better::Lower => "lower is better",
        crate::engine::contract::Better::Higher => "higher is better",
    };
    let mut out = format!("{kind}, {better}");
    if let Some(q) = s.quantile {
        out.push_str(&format!(", p{}", chart::figure(q * 100.0)));
    }
    if s.guardrail {
        out.push_str(", guardrail");
    }
    out
}

/// What a reader should be wary of in a window's evidence.
pub fn warnings(
    e: &pb::MetricEvidence,
    spec: Option<&MetricSpec>,
    contract: Option<&Contract>,
) -> Vec<String> {
    let mut out = Vec::new();
    if !e.unreliable_reason.is_empty() {
        out.push(format!("unreliable: {}", e.unreliable_reason));
    }
    if let Some(s) = spec {
        let fewest = e.window_samples_treatment.min(e.window_samples_control);
        if fewest < s.min_samples {
            out.push(format!(
                "few samples: {fewest} in this window, the contract asks {}",
                s.min_samples
            ));
        }
        if let Some(share) = e.low_confidence_share {
            if share > s.max_low_confidence_share.0 {
                out.push(format!(
                    "low confidence: {}% of observations under the floor (at most {}%)",
                    chart::figure(share * 100.0),
                    chart::figure(s.max_low_confidence_share.0 * 100.0)
                ));
            }
        }
    }
    if let (Some(p), Some(c)) = (e.srm_p_value, contract) {
        if p < c.srm_alpha {
            out.push(format!(
                "sample ratio mismatch: p = {} (level {})",
                chart::figure(p),
                chart::figure(c.srm_alpha)
            ));
        }
    }
    out
}

/// The decisions that changed something, newest first; how many quiet ones there were.
fn decisions(g: &pb::GateState, decisions: &[pb::Decision], now: i64) -> Markup {
    let changed: Vec<&pb::Decision> = decisions
        .iter()
        .rev()
        .filter(|d| show::changed(d))
        .collect();
    let quiet = decisions.len() - changed.len();
    html! {
        section {
            h2 { "Decisions" }
            p { (changed.len()) " changed something; " (quiet) " kept things as they were (their evidence is in the charts)." }
            table.decisions {
                thead { tr { th.num { "Version" } th { "When" } th { "Action" } th { "Cohort" } th { "Changes" } th { "By" } th { "Reason" } } }
                tbody {
                    @for d in changed {
                        tr data-version=(d.version) data-action=(d.action) {
                            td.num { a href=(decision_href(&g.gate, d.version)) { (d.version) } }
                            td { (show::age(d.at.as_ref(), now)) }
                            td { (d.action) }
                            td { @if d.cohort.is_empty() { "every cohort" } @else { (d.cohort) } }
                            td { (changes(d)) }
                            td { (show::decided_by(&d.decided_by)) }
                            td { (d.reason) }
                        }
                    }
                }
            }
        }
    }
}

/// A decision's changes in words.
pub fn changes(d: &pb::Decision) -> Markup {
    html! {
        @if d.kill_switch != d.kill_switch_before {
            span.change { "kill switch " (if d.kill_switch { "on" } else { "off" }) } " "
        }
        @for c in &d.changes {
            span.change {
                (c.cohort) ": " (show::exposure(c.from_exposure)) " → " (show::exposure(c.to_exposure))
                @if c.from_status != c.to_status { ", " (c.from_status) " → " (c.to_status) }
            } " "
        }
    }
}

/// The contract in force and the versions the decisions read name.
fn contract_section(info: &pb::ContractInfo, decisions: &[pb::Decision]) -> Markup {
    let mut versions: BTreeMap<u64, i64> = BTreeMap::new();
    for d in decisions {
        if let Some(at) = show::ms(d.at.as_ref()) {
            versions.entry(d.contract_version).or_insert(at);
        }
    }
    html! {
        section {
            h2 { "Contract, version " (info.contract_version) }
            @if versions.len() > 1 {
                p { "Versions the decisions above were judged under: "
                    @for (v, at) in &versions { span.version { (v) " (from " (show_ms(*at)) ")" } " " }
                }
            }
            pre.yaml { code { (info.yaml) } }
        }
    }
}

fn show_ms(at: i64) -> String {
    show::time(Some(&crate::api::convert::timestamp(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::convert::timestamp;

    const CONTRACT: &str = r#"
gate: big
variants: { treatment: new, fallback: old }
ladder: [5, 25, 50, 100]
stage_min_duration: 1h
window: 15m
cohorts: [ios, android, web, tv]
metrics:
  - { name: error_rate, kind: rate, better: lower, guardrail: true, watch: { above: 0.02 }, kill: { above: 0.05 } }
  - { name: conversion, kind: rate, better: higher, watch: { relative: 0.05 }, stop: { relative: 0.1 }, kill: { relative: 0.3 } }
  - { name: csat, kind: mean, better: higher, watch: { absolute: 0.1 }, stop: { absolute: 0.3 } }
  - { name: negative_review_rate, kind: rate, better: lower, watch: { relative: 0.2 }, stop: { relative: 0.5 } }
"#;

    /// A day of 15-minute windows judged in 4 cohorts on 4 metrics: one decision per cohort
    /// and window, its evidence complete.
    fn day() -> (pb::GateState, Vec<pb::Decision>, Contract) {
        let contract = Contract::from_yaml(CONTRACT).expect("contract");
        let cohorts = ["ios", "android", "web", "tv"];
        let mut decisions = Vec::new();
        let t0 = 1_800_000_000_000_i64;
        for w in 0..WINDOWS as i64 {
            for (k, cohort) in cohorts.iter().enumerate() {
                let (start, end) = (t0 + w * 900_000, t0 + (w + 1) * 900_000);
                let evidence = contract
                    .metrics
                    .iter()
                    .map(|m| pb::MetricEvidence {
                        metric: m.name.as_str().to_owned(),
                        cohort: (*cohort).to_owned(),
                        window_start: Some(timestamp(start)),
                        window_end: Some(timestamp(end)),
                        treatment: Some(0.3 + 0.001 * w as f64),
                        control: Some(0.3),
                        baseline: Some(0.3),
                        delta: Some(0.001 * w as f64),
                        delta_interval: Some(pb::Interval { low: -0.02, high: 0.03 }),
                        treatment_interval: Some(pb::Interval { low: 0.28, high: 0.33 }),
                        samples_treatment: 12_000,
                        samples_control: 12_000,
                        window_samples_treatment: 3_000,
                        window_samples_control: 3_000,
                        srm_p_value: Some(0.5),
                        zone: if w % 7 == 0 { "watch" } else { "healthy" }.into(),
                        summary: "conversion 30.1% vs 30% in control (+0.3%, always-valid 99.9% CI -6%..+10%, over 4 windows)".into(),
                        ..Default::default()
                    })
                    .collect();
                decisions.push(pb::Decision {
                    gate: "big".into(),
                    version: (w as u64) * 4 + k as u64 + 1,
                    cohort: (*cohort).to_owned(),
                    action: if w % 24 == 23 { "expand" } else { "stay" }.into(),
                    changes: vec![pb::CohortChange {
                        cohort: (*cohort).to_owned(),
                        from_exposure: 5.0,
                        to_exposure: if w % 24 == 23 { 25.0 } else { 5.0 },
                        from_status: "ramping".into(),
                        to_status: "ramping".into(),
                    }],
                    reason: "ios stays at 5%: every metric healthy, waiting out the stage".into(),
                    evidence,
                    decided_by: "leader:1@3".into(),
                    at: Some(timestamp(end + 2_000)),
                    window_start: Some(timestamp(start)),
                    window_end: Some(timestamp(end)),
                    ..Default::default()
                });
            }
        }
        let gate = pb::GateState {
            gate: "big".into(),
            version: decisions.len() as u64,
            cohorts: cohorts
                .iter()
                .map(|c| pb::CohortState {
                    cohort: (*c).to_owned(),
                    exposure: 25.0,
                    stage: 1,
                    status: "ramping".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        (gate, decisions, contract)
    }

    #[test]
    fn a_day_of_four_metrics_in_four_cohorts_stays_under_500_kb() {
        let (gate, decisions, contract) = day();
        let info = pb::ContractInfo {
            yaml: CONTRACT.into(),
            contract_version: 1,
            ..Default::default()
        };
        let now = 1_800_000_000_000 + 97 * 900_000;
        let parts = [
            ladder(&gate, Some(&contract)),
            exposure(&gate, &decisions, now),
            metrics(
                &cohort_names(&gate),
                &judged(judgements(&decisions)),
                Some(&contract),
            ),
            super::decisions(&gate, &decisions, now),
            contract_section(&info, &decisions),
        ];
        let html: String = parts.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            html.matches("<svg class=\"windows\"").count(),
            16,
            "4 metrics × 4 cohorts"
        );
        assert_eq!(
            html.match_indices("<use href=\"#m-")
                .filter(|(i, _)| html[*i..]
                    .split('>')
                    .next()
                    .is_some_and(|t| t.contains(" x=")))
                .count(),
            16 * WINDOWS,
            "every window drawn once"
        );
        assert!(html.len() < 500_000, "{} bytes", html.len());
    }

    #[test]
    fn a_window_point_reads_the_interval_around_the_baseline_and_the_zone_lines() {
        let (_, decisions, contract) = day();
        let spec = contract
            .metrics
            .iter()
            .find(|m| m.name.as_str() == "conversion");
        let p = point(&decisions[0].evidence[1], spec);
        assert_eq!(p.baseline, Some(0.3));
        let (lo, hi) = p.interval.expect("interval");
        assert!(
            (lo - 0.28).abs() < 1e-12 && (hi - 0.33).abs() < 1e-12,
            "{lo} {hi}"
        );
        // Higher is better: watch 5% below the baseline, stop 10%, kill 30%.
        let [watch, stop, kill] = p.thresholds.map(|t| t.expect("threshold"));
        assert!(
            (watch - 0.285).abs() < 1e-12
                && (stop - 0.27).abs() < 1e-12
                && (kill - 0.21).abs() < 1e-12
        );
        // A guardrail is judged on its ceiling alone.
        let guardrail = contract
            .metrics
            .iter()
            .find(|m| m.name.as_str() == "error_rate");
        let p = point(&decisions[0].evidence[0], guardrail);
        assert_eq!(p.thresholds, [Some(0.02), None, Some(0.05)]);
    }
}
