//! A decision's page (`/console/gates/{gate}/decisions/{version}`): the reason sentence, what
//! it changed, who decided (the engine on a leader in a term, or an operator and their token),
//! the contract version and window, and every metric's and topic's evidence.

use axum::extract::Path;
use maud::{html, Markup};

use super::chart::{self, Unit};
use super::gate::{changes, decision_href};
use super::{read, show, PageResult, Visitor};
use crate::http::error::HttpError;
use crate::proto::v1 as pb;
use crate::proto::v1::gates_server::Gates;

/// `GET /console/gates/{gate}/decisions/{version}`.
pub async fn page(visitor: Visitor, Path((gate, version)): Path<(String, String)>) -> PageResult {
    let version: u64 = version
        .parse()
        .map_err(|_| HttpError::invalid("version", format!("`{version}` is not a version")))?;
    let read = read(|consistency| {
        let (visitor, gate) = (&visitor, &gate);
        async move {
            let request = visitor.request(pb::ListDecisionsRequest {
                gate: gate.clone(),
                after_version: version.saturating_sub(1),
                limit: 1,
                consistency,
            })?;
            Ok(Gates::list_decisions(&visitor.edge.api, request)
                .await?
                .into_inner()
                .decisions)
        }
    })
    .await?;
    let d = read
        .value
        .into_iter()
        .find(|d| d.version == version)
        .ok_or_else(|| {
            HttpError::from(tonic::Status::not_found(format!(
                "gate {gate} has no decision {version}"
            )))
        })?;
    let body = html! {
        p.crumbs { a href=(format!("/console/gates/{gate}")) { "Gate " (gate) } " › decision " (version) }
        h1 { "Decision " (d.version) ": " (d.action) }
        p.reason { (d.reason) }
        dl.facts {
            dt { "Decided by" } dd { (show::decided_by(&d.decided_by)) }
            dt { "At" } dd { (show::time(d.at.as_ref())) }
            dt { "Cohort" } dd { @if d.cohort.is_empty() { "every cohort" } @else { (d.cohort) } }
            dt { "Changed" } dd { @if show::changed(&d) { (changes(&d)) } @else { "nothing" } }
            dt { "Kill switch" } dd { (show::kill_switch(d.kill_switch)) @if !d.kill_switch { "off" } }
            dt { "Contract version" } dd { (d.contract_version) }
            @if d.window_start.is_some() {
                dt { "Window" } dd { (show::time(d.window_start.as_ref())) " – " (show::time(d.window_end.as_ref())) }
            }
        }
        p.nav {
            @if d.version > 1 { a href=(decision_href(&gate, d.version - 1)) { "← decision " (d.version - 1) } " " }
            a href=(decision_href(&gate, d.version + 1)) { "decision " (d.version + 1) " →" }
        }
        @if !d.evidence.is_empty() { (evidence(&d.evidence)) }
        @if !d.topics.is_empty() { (topics(&d.topics)) }
    };
    Ok(visitor.page(&format!("Decision {version} of {gate}"), read.banner, body))
}

fn value(v: Option<f64>) -> String {
    v.map(|v| Unit::AsSent.show(v))
        .unwrap_or_else(|| "—".into())
}

fn interval(i: Option<&pb::Interval>) -> String {
    i.map(|i| format!("[{}, {}]", chart::figure(i.low), chart::figure(i.high)))
        .unwrap_or_else(|| "—".into())
}

fn evidence(evidence: &[pb::MetricEvidence]) -> Markup {
    html! {
        section {
            h2 { "Evidence per metric" }
            table.evidence {
                thead { tr {
                    th { "Cohort" } th { "Metric" } th { "Zone" } th.num { "Treatment" } th.num { "Baseline" }
                    th.num { "Δ and interval (treatment's)" } th { "Test" } th.num { "p / e" } th.num { "Samples (t / c)" }
                    th.num { "SRM p" } th { "Summary" }
                } }
                tbody {
                    @for e in evidence {
                        tr data-metric=(e.metric) data-cohort=(e.cohort) data-zone=(e.zone) {
                            td { (e.cohort) } td { (e.metric) }
                            td { (show::zone(&e.zone)) @if e.streak > 1 { " ×" (e.streak) } }
                            td.num { (value(e.treatment)) }
                            td.num { (value(e.baseline.or(e.control))) @if !e.baseline_source.is_empty() { br; small { (e.baseline_source) } } }
                            td.num {
                                (value(e.delta)) " " (interval(e.delta_interval.as_ref()))
                                @if let Some(t) = &e.treatment_interval { br; small { "treatment " (interval(Some(t))) } }
                            }
                            td { (e.test) @if e.span_windows > 1 { ", " (e.span_windows) " windows" } }
                            td.num {
                                @if let Some(p) = e.p_value { "p " (chart::figure(p)) }
                                @if let Some(ev) = e.e_value { "e " (chart::figure(ev)) }
                                @if let Some(a) = e.alpha { br; small { "level " (chart::figure(a)) } }
                            }
                            td.num { (e.samples_treatment) " / " (e.samples_control) }
                            td.num { (value(e.srm_p_value)) }
                            td {
                                (e.summary)
                                @if !e.unreliable_reason.is_empty() { br; span.warning { "unreliable: " (e.unreliable_reason) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn topics(topics: &[pb::TopicEvidence]) -> Markup {
    html! {
        section {
            h2 { "Severe topics" }
            table.topics {
                thead { tr { th { "Cohort" } th { "Topic" } th { "Metric" } th { "Zone" } th.num { "Mentions (t / c)" } th { "Summary" } } }
                tbody {
                    @for t in topics {
                        tr data-topic=(t.topic) {
                            td { (t.cohort) } td { (t.topic) } td { (t.metric) } td { (show::zone(&t.zone)) }
                            td.num { (t.treatment_mentions) " / " (t.control_mentions) }
                            td { (t.summary) }
                        }
                    }
                }
            }
        }
    }
}
