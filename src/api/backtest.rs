//! `Contracts/Backtest`: the engine the leader uses, replayed over the request's signals
//! against the request's contract. Touches no replicated state and writes nothing; any node
//! answers. Bounded: at most [`MAX_SIGNALS`] signals and [`MAX_WINDOWS`] windows per cohort,
//! run off the async workers (`spawn_blocking`) so a long replay holds up no other call.

use tonic::Request;

use super::convert::{self, timestamp};
use super::error::{ApiError, ApiResult};
use crate::auth::{authorize, Role};
use crate::engine::backtest::{backtest_arrivals, parse_arrivals, render_json, Arrival};
use crate::engine::backtest::{BacktestDecision, BacktestReport};
use crate::engine::Contract;
use crate::proto::v1 as pb;

/// Most signals one backtest replays.
pub const MAX_SIGNALS: usize = 1_000_000;
/// Most windows per cohort one backtest judges (from the earliest signal to the latest).
pub const MAX_WINDOWS: i64 = 100_000;

/// The request's signals, with the ones that could not be read.
fn arrivals(request: &pb::BacktestRequest) -> Result<(Vec<Arrival>, Vec<pb::Rejection>), ApiError> {
    match (request.arrivals.is_empty(), request.jsonl.trim().is_empty()) {
        (false, false) => Err(ApiError::invalid(
            "jsonl",
            "give the signals either as arrivals or as jsonl, not both",
        )),
        (true, true) => Err(ApiError::invalid("arrivals", "no signals to replay")),
        (true, false) => {
            let (arrivals, errors) = parse_arrivals(&request.jsonl);
            let rejected = errors
                .into_iter()
                .map(|(line, e)| pb::Rejection {
                    index: u32::try_from(line).unwrap_or(u32::MAX),
                    field: e.field,
                    reason: e.reason,
                })
                .collect();
            Ok((arrivals, rejected))
        }
        (false, true) => {
            let mut arrivals = Vec::with_capacity(request.arrivals.len());
            let mut rejected = Vec::new();
            for (i, a) in request.arrivals.iter().enumerate() {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                let Some(raw) = &a.signal else {
                    rejected.push(pb::Rejection {
                        index,
                        field: format!("arrivals[{i}].signal"),
                        reason: "missing".into(),
                    });
                    continue;
                };
                match convert::signal(raw) {
                    Ok(signal) => arrivals.push(Arrival {
                        signal,
                        received: a.received.as_ref().map(convert::millis),
                    }),
                    Err(e) => rejected.push(pb::Rejection {
                        index,
                        field: format!("arrivals[{i}].signal.{}", e.field),
                        reason: e.reason,
                    }),
                }
            }
            Ok((arrivals, rejected))
        }
    }
}

/// Refuses a replay beyond the limits, naming the field.
fn check_limits(contract: &Contract, arrivals: &[Arrival], field: &str) -> Result<(), ApiError> {
    if arrivals.len() > MAX_SIGNALS {
        return Err(ApiError::invalid(
            field,
            format!("{} signals; at most {MAX_SIGNALS}", arrivals.len()),
        ));
    }
    let times = arrivals.iter().map(|a| a.signal.at);
    if let (Some(first), Some(last)) = (times.clone().min(), times.max()) {
        let windows =
            (contract.window_start(last) - contract.window_start(first)) / contract.window.0 + 1;
        if windows > MAX_WINDOWS {
            return Err(ApiError::invalid(
                field,
                format!(
                    "the signals span {windows} windows of the contract; at most {MAX_WINDOWS}"
                ),
            ));
        }
    }
    Ok(())
}

fn decision(d: &BacktestDecision) -> pb::BacktestDecision {
    pb::BacktestDecision {
        cohort: d.cohort.to_string(),
        window_start: Some(timestamp(d.window.start)),
        window_end: Some(timestamp(d.window.end)),
        verdict: d.verdict.as_str().to_owned(),
        from_exposure: d.from_exposure,
        to_exposure: d.to_exposure,
        status: d.status.as_str().to_owned(),
        kill_switch: d.kill_switch,
        reason: d.reason.clone(),
        evidence: d.evidence.iter().map(convert::evidence).collect(),
        topics: d.topics.iter().map(convert::topic).collect(),
    }
}

fn response(report: &BacktestReport, rejected: Vec<pb::Rejection>) -> pb::BacktestResponse {
    let s = &report.skipped;
    pb::BacktestResponse {
        gate: report.gate.clone(),
        signals_used: report.signals_used,
        skipped: Some(pb::BacktestSkipped {
            other_gate: s.other_gate,
            unknown_metric: s.unknown_metric,
            unknown_cohort: s.unknown_cohort,
            wrong_kind: s.wrong_kind,
            late: s.late,
            future: s.future,
        }),
        windows: report.windows,
        decisions: report.decisions.iter().map(decision).collect(),
        final_cohorts: report
            .final_states
            .iter()
            .map(|(cohort, state)| pb::BacktestCohort {
                cohort: cohort.to_string(),
                exposure: state.exposure,
                status: state.status.as_str().to_owned(),
                stage: u32::try_from(state.stage).unwrap_or(u32::MAX),
            })
            .collect(),
        kill_switch: report.kill_switch,
        rejected,
        report_json: render_json(report),
    }
}

/// The handler (`Contracts/Backtest`).
pub async fn backtest(request: Request<pb::BacktestRequest>) -> ApiResult<pb::BacktestResponse> {
    authorize(&request, Role::Reader, "backtesting a contract")?;
    let request = request.into_inner();
    if request.yaml.len() > super::MAX_CONTRACT_BYTES {
        return Err(ApiError::invalid(
            "yaml",
            format!(
                "{} bytes; at most {}",
                request.yaml.len(),
                super::MAX_CONTRACT_BYTES
            ),
        )
        .into());
    }
    let contract = Contract::from_yaml(&request.yaml)
        .map_err(|e| ApiError::invalid("contract", e.to_string()))?;
    let (arrivals, rejected) = arrivals(&request)?;
    let field = if request.arrivals.is_empty() {
        "jsonl"
    } else {
        "arrivals"
    };
    check_limits(&contract, &arrivals, field)?;
    let report = tokio::task::spawn_blocking(move || backtest_arrivals(&contract, &arrivals))
        .await
        .map_err(|e| tonic::Status::internal(format!("the backtest stopped: {e}")))?;
    Ok(tonic::Response::new(response(&report, rejected)))
}
