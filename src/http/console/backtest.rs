//! The backtest page (`/console/backtest`): paste a contract, upload (or paste) a signal file,
//! and see what the engine would decide before the contract goes live: every cohort's exposure
//! over the replay, the same window charts as a gate's page, the decisions that changed
//! something, where each cohort ended, and the signals the replay could not use. Runs the
//! `Backtest` call (nothing is stored); `?gate=` starts from a gate's contract in force.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::RawQuery;
use axum::http::StatusCode;
use maud::{html, Markup};

use super::chart::{self, DecisionMark, ExposureLine};
use super::gate::{judged, metrics};
use super::session::CSRF_FIELD;
use super::{show, PageResult, Visitor};
use crate::engine::contract::Contract;
use crate::http::error::HttpError;
use crate::http::routes::params;
use crate::proto::v1 as pb;
use crate::proto::v1::contracts_server::Contracts;

/// What the form was sent with, kept to show it again.
#[derive(Default)]
struct Inputs {
    contract: String,
    signals: String,
}

fn form(visitor: &Visitor, inputs: &Inputs) -> Markup {
    html! {
        form.backtest method="post" action="/console/backtest" enctype="multipart/form-data" {
            input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf());
            label.wide { "Contract (YAML, as " code { "rampart contract apply" } " takes it)"
                textarea name="contract" rows="14" required spellcheck="false" { (inputs.contract) }
            }
            label { "Signal file (JSON lines, as " code { "rampart signal push" } " reads; a " code { "received" } " per line is optional) "
                input type="file" name="signals" accept=".jsonl,.json,.ndjson,text/plain,application/x-ndjson";
            }
            label.wide { "… or paste the lines"
                textarea name="signals_text" rows="6" spellcheck="false" { (inputs.signals) }
            }
            button type="submit" { "Run the backtest" }
        }
    }
}

/// `GET /console/backtest`.
pub async fn page(visitor: Visitor, RawQuery(raw): RawQuery) -> PageResult {
    let p = params(raw.as_deref(), &["gate"])?;
    let mut inputs = Inputs::default();
    if let Some(gate) = p.get("gate").filter(|g| !g.is_empty()) {
        let request = visitor.request(pb::GetContractRequest {
            gate: gate.clone(),
            consistency: pb::Consistency::Local as i32,
        })?;
        inputs.contract = Contracts::get_contract(&visitor.edge.api, request)
            .await?
            .into_inner()
            .yaml;
    }
    let body = html! {
        h1 { "Backtest" }
        p { "Replays the signals through the contract as the leader would, window by window. Nothing is stored." }
        (form(&visitor, &inputs))
    };
    Ok(visitor.page("Backtest", None, body))
}

/// The form's fields into `inputs` (kept to show again, whatever fails): the contract, and
/// the signals from the file or the text area (not both); the CSRF token is returned.
async fn read_form(
    mut multipart: Multipart,
    inputs: &mut Inputs,
) -> Result<Option<String>, HttpError> {
    let mut csrf = None;
    let mut file = String::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| HttpError::invalid("form", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| HttpError::invalid(name.clone(), e.body_text()))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| HttpError::invalid(name.clone(), format!("is not UTF-8: {e}")))?;
        match name.as_str() {
            CSRF_FIELD => csrf = Some(text),
            "contract" => inputs.contract = text,
            "signals" => file = text,
            "signals_text" => inputs.signals = text,
            other => {
                return Err(HttpError::invalid(
                    other,
                    "is not a field of this form (expected csrf, contract, signals, signals_text)",
                ))
            }
        }
    }
    match (file.trim().is_empty(), inputs.signals.trim().is_empty()) {
        (false, false) => {
            return Err(HttpError::invalid(
                "signals",
                "give the signals as a file or pasted, not both",
            ))
        }
        (false, true) => inputs.signals = file,
        (true, true) => {
            return Err(HttpError::invalid(
                "signals",
                "is required: a signal file or pasted lines",
            ))
        }
        (true, false) => {}
    }
    if inputs.contract.trim().is_empty() {
        return Err(HttpError::invalid("contract", "is required"));
    }
    Ok(csrf)
}

/// `POST /console/backtest`: the report, with the form to change and run again; a refused
/// form or backtest comes back with its error and what was sent.
pub async fn run(visitor: Visitor, multipart: Result<Multipart, MultipartRejection>) -> PageResult {
    let multipart = multipart.map_err(|e| HttpError::invalid("form", e.body_text()))?;
    let mut inputs = Inputs::default();
    let csrf = match read_form(multipart, &mut inputs).await {
        Ok(csrf) => csrf,
        Err(e) => return Ok(refused(&visitor, &inputs, e)),
    };
    visitor.check_csrf(csrf.as_deref())?;
    let request = visitor.request(pb::BacktestRequest {
        yaml: inputs.contract.clone(),
        arrivals: Vec::new(),
        jsonl: inputs.signals.clone(),
    })?;
    let report = match Contracts::backtest(&visitor.edge.api, request).await {
        Ok(r) => r.into_inner(),
        Err(status) => return Ok(refused(&visitor, &inputs, status.into())),
    };
    let contract = Contract::from_yaml(&inputs.contract).ok();
    let body = html! {
        h1 { "Backtest of " (report.gate) }
        (report_markup(&report, contract.as_ref()))
        h2 { "Change and run again" }
        (form(&visitor, &inputs))
    };
    Ok(visitor.page(&format!("Backtest of {}", report.gate), None, body))
}

/// The form again, under the error that refused it (400 or what the backtest answered).
fn refused(visitor: &Visitor, inputs: &Inputs, e: HttpError) -> axum::response::Response {
    let status = if e.status == StatusCode::OK {
        StatusCode::BAD_REQUEST
    } else {
        e.status
    };
    let body = html! {
        h1 { "Backtest" }
        p.error data-code=(e.code) data-field=[e.field.as_deref()] {
            @if let Some(field) = &e.field { strong { (field) } ": " }
            (e.message)
        }
        (form(visitor, inputs))
    };
    visitor.page_with(status, "Backtest", None, body)
}

/// Whether a replayed decision changed a cohort's exposure or acted.
fn acted(d: &pb::BacktestDecision) -> bool {
    (d.from_exposure - d.to_exposure).abs() > f64::EPSILON || d.verdict != "stay"
}

fn report_markup(r: &pb::BacktestResponse, contract: Option<&Contract>) -> Markup {
    let cohorts: Vec<&str> = r.final_cohorts.iter().map(|c| c.cohort.as_str()).collect();
    let windows = judged(
        r.decisions
            .iter()
            .map(|d| (acted(d), d.evidence.as_slice())),
    );
    let skipped = r.skipped.unwrap_or_default();
    let skips = [
        ("for another gate", skipped.other_gate),
        ("naming no metric of the contract", skipped.unknown_metric),
        ("naming no cohort of the contract", skipped.unknown_cohort),
        ("of the wrong kind for their metric", skipped.wrong_kind),
        ("arriving after their window was judged", skipped.late),
        ("from the future", skipped.future),
    ];
    let changed: Vec<(usize, &pb::BacktestDecision)> = r
        .decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| acted(d))
        .collect();
    html! {
        p.summary {
            (r.signals_used) " signals used over " (r.windows) " windows · "
            (r.decisions.len()) " judgements, " (changed.len()) " of them acting"
            @if r.kill_switch { " · " (show::kill_switch(true)) " at the end" }
        }
        @if skips.iter().any(|(_, n)| *n > 0) || !r.rejected.is_empty() {
            section {
                h2 { "Signals not replayed" }
                ul {
                    @for (why, n) in skips { @if n > 0 { li { (n) " " (why) } } }
                }
                @if !r.rejected.is_empty() {
                    table.rejected {
                        thead { tr { th.num { "Line" } th { "Field" } th { "Reason" } } }
                        tbody {
                            @for x in r.rejected.iter().take(100) {
                                tr data-line=(x.index) { td.num { (x.index) } td { code { (x.field) } } td { (x.reason) } }
                            }
                        }
                    }
                    @if r.rejected.len() > 100 { p { "… and " (r.rejected.len() - 100) " more." } }
                }
            }
        }
        section {
            h2 { "Where each cohort ended" }
            table.final {
                thead { tr { th { "Cohort" } th.num { "Exposure" } th { "Status" } th.num { "Stage" } } }
                tbody {
                    @for c in &r.final_cohorts {
                        tr data-cohort=(c.cohort) data-status=(c.status) {
                            td { (c.cohort) } td.num { (show::exposure(c.exposure)) } td { (show::status(&c.status)) } td.num { (c.stage) }
                        }
                    }
                }
            }
        }
        (exposure(r))
        (metrics(&cohorts, &windows, contract))
        section {
            h2 { "Decisions that acted" }
            table.decisions {
                thead { tr { th { "Window" } th { "Cohort" } th { "Verdict" } th { "Exposure" } th { "Status" } th { "Reason" } } }
                tbody {
                    @for (i, d) in &changed {
                        tr id=(format!("d-{i}")) data-verdict=(d.verdict) data-cohort=(d.cohort) {
                            td { (show::time(d.window_start.as_ref())) }
                            td { (d.cohort) }
                            td { (d.verdict) }
                            td { (show::exposure(d.from_exposure)) " → " (show::exposure(d.to_exposure)) }
                            td { (show::status(&d.status)) @if d.kill_switch { " " (show::kill_switch(true)) } }
                            td { (d.reason) }
                        }
                    }
                }
            }
        }
    }
}

/// Each cohort's exposure over the replay, its acting decisions marked (linked to their row).
fn exposure(r: &pb::BacktestResponse) -> Markup {
    let at = |t: Option<&prost_types::Timestamp>| show::ms(t).unwrap_or(0);
    let (Some(first), Some(last)) = (r.decisions.first(), r.decisions.last()) else {
        return html! {};
    };
    let span = (
        at(first.window_start.as_ref()),
        at(last.window_end.as_ref()),
    );
    let lines: Vec<ExposureLine> = r
        .final_cohorts
        .iter()
        .map(|c| {
            let mine: Vec<&pb::BacktestDecision> = r
                .decisions
                .iter()
                .filter(|d| d.cohort == c.cohort)
                .collect();
            let start = mine.first().map_or(c.exposure, |d| d.from_exposure);
            let mut steps = vec![(span.0, start)];
            steps.extend(
                mine.iter()
                    .filter(|d| (d.from_exposure - d.to_exposure).abs() > f64::EPSILON)
                    .map(|d| (at(d.window_end.as_ref()), d.to_exposure)),
            );
            ExposureLine {
                cohort: c.cohort.clone(),
                steps,
            }
        })
        .collect();
    let marks: Vec<DecisionMark> = r
        .decisions
        .iter()
        .enumerate()
        .map(|(i, d)| DecisionMark {
            at: at(d.window_end.as_ref()),
            version: i as u64 + 1,
            action: d.verdict.clone(),
            changed: acted(d),
            href: format!("#d-{i}"),
        })
        .collect();
    html! {
        section {
            h2 { "Exposure over the replay" }
            (chart::exposure(&lines, &marks, span))
        }
    }
}
