//! Turning a window's outcome into a verdict and the cohort's next state: zone actions,
//! unreliable evidence, sticky states, the healthy clock, approvals. Called by
//! [`evaluate`](super::policy::evaluate) only; never looks at raw data.

use super::contract::{Contract, OnUnreliable, ZoneAction};
use super::evidence::Zone;
use super::policy::{CohortState, CohortStatus, EvaluationInput, Outcome, Verdict};
use super::reason;
use crate::ids::CohortName;

/// Applies the outcome to the cohort's state; returns the verdict and its sentence.
pub(crate) fn decide(
    contract: &Contract,
    input: EvaluationInput<'_>,
    next: &mut CohortState,
    outcome: &Outcome,
    from: f64,
) -> (Verdict, String) {
    let cohort = input.cohort;
    let at = reason::exposure(from);
    let sticky = matches!(next.status, CohortStatus::Held | CohortStatus::ManualReview);
    if outcome.worst != Zone::Healthy
        || outcome.unreliable.is_some()
        || outcome.warming_up.is_some()
    {
        next.healthy_since = None;
    }
    let zone_action = match outcome.worst {
        Zone::Kill => Some(contract.actions.kill),
        Zone::Stop => Some(contract.actions.stop),
        _ => None,
    };
    let watch_action = (outcome.worst == Zone::Watch).then_some(contract.actions.watch);
    let text = &outcome.worst_text;
    if let Some(action) = zone_action {
        return apply(action, next, sticky, cohort, &at, text);
    }
    if let Some(why) = &outcome.unreliable {
        if sticky {
            return (Verdict::Stay, stays_sticky(cohort, next.status, &at));
        }
        return match contract.on_unreliable {
            OnUnreliable::ManualReview => {
                next.status = CohortStatus::ManualReview;
                (
                    Verdict::ManualReview,
                    format!("{cohort} sent to manual review at {at}: {why}"),
                )
            }
            OnUnreliable::Hold => (
                Verdict::Stay,
                format!("{cohort} holds at {at} without expanding: {why}"),
            ),
        };
    }
    if let Some(action) = watch_action {
        return apply(action, next, sticky, cohort, &at, text);
    }
    if let Some(why) = &outcome.warming_up {
        if sticky {
            return (Verdict::Stay, stays_sticky(cohort, next.status, &at));
        }
        return (
            Verdict::Stay,
            format!("{cohort} stays at {at} without expanding while it warms up: {why}"),
        );
    }
    healthy(contract, input, next, outcome.metrics, &at)
}

/// The configured action of a reliable zone.
fn apply(
    action: ZoneAction,
    next: &mut CohortState,
    sticky: bool,
    cohort: &CohortName,
    at: &str,
    text: &str,
) -> (Verdict, String) {
    match action {
        ZoneAction::Rollback | ZoneAction::RollbackGate => {
            next.exposure = 0.0;
            next.status = CohortStatus::RolledBack;
            next.healthy_since = None;
            if action == ZoneAction::RollbackGate {
                (
                    Verdict::RollbackGate,
                    format!("{cohort} rolled back the whole gate from {at} to 0%: {text}"),
                )
            } else {
                (
                    Verdict::Rollback,
                    format!("{cohort} rolled back from {at} to 0%: {text}"),
                )
            }
        }
        _ if sticky => (Verdict::Stay, stays_sticky(cohort, next.status, at)),
        ZoneAction::Hold => {
            next.status = CohortStatus::Held;
            (Verdict::Hold, format!("{cohort} held at {at}: {text}"))
        }
        ZoneAction::ManualReview => {
            next.status = CohortStatus::ManualReview;
            (
                Verdict::ManualReview,
                format!("{cohort} sent to manual review at {at}: {text}"),
            )
        }
        ZoneAction::Slow => {
            if next.status != CohortStatus::Complete {
                next.status = CohortStatus::Slowed;
            }
            (Verdict::Slow, format!("{cohort} slowed at {at}: {text}"))
        }
    }
}

fn stays_sticky(cohort: &CohortName, status: CohortStatus, at: &str) -> String {
    let what = if status == CohortStatus::Held {
        "held"
    } else {
        "in manual review"
    };
    format!("{cohort} stays {what} at {at}: waiting for an operator to resume")
}

/// Every metric healthy: expand when the stage and the healthy run are old enough.
fn healthy(
    contract: &Contract,
    input: EvaluationInput<'_>,
    next: &mut CohortState,
    metrics: usize,
    at: &str,
) -> (Verdict, String) {
    let cohort = input.cohort;
    let end = input.window.end;
    let run_start = *next.healthy_since.get_or_insert(input.window.start);
    let all = format!("all {metrics} metrics healthy");
    match next.status {
        CohortStatus::Held | CohortStatus::ManualReview => {
            return (Verdict::Stay, stays_sticky(cohort, next.status, at));
        }
        CohortStatus::Slowed => next.status = CohortStatus::Ramping,
        _ => {}
    }
    let Some(&upper) = contract.ladder.get(next.stage + 1) else {
        next.status = CohortStatus::Complete;
        return (
            Verdict::Stay,
            format!("{cohort} stays at {at}: rollout complete, {all}"),
        );
    };
    let since = next.stage_since.max(run_start);
    let needed = contract.stage_min_duration.0;
    if end.saturating_sub(since) < needed {
        return (
            Verdict::Stay,
            format!(
                "{cohort} stays at {at}: {all} for {} of the {} a stage needs",
                whole_seconds(end.saturating_sub(since)),
                whole_seconds(needed)
            ),
        );
    }
    let to = reason::exposure(upper);
    let needs_approval = contract.approval.is_some_and(|a| upper > a.above);
    if needs_approval && next.approved_stage.is_none_or(|s| s < next.stage + 1) {
        if next.status == CohortStatus::AwaitingApproval {
            return (
                Verdict::Stay,
                format!("{cohort} still waits at {at} for an approval to go to {to}: {all}"),
            );
        }
        next.status = CohortStatus::AwaitingApproval;
        return (
            Verdict::AwaitApproval,
            format!("{cohort} waits at {at} for an approval to go to {to}: {all}"),
        );
    }
    next.stage += 1;
    next.exposure = upper;
    next.stage_since = end;
    next.status = if next.stage + 1 == contract.ladder.len() {
        CohortStatus::Complete
    } else {
        CohortStatus::Ramping
    };
    (
        Verdict::Expand,
        format!("{cohort} expanded from {at} to {to}: {all}"),
    )
}

/// A duration as the contract language writes it, to the second: `40s`, `14m 30s`, `2h`
/// (whole minutes printed `0 of the 0 min` for the demo's 10-second stages).
fn whole_seconds(ms: i64) -> String {
    String::from(super::contract::Span(ms / 1000 * 1000))
}

#[cfg(test)]
mod tests {
    use super::whole_seconds;

    #[test]
    fn stage_progress_reads_in_the_contracts_units() {
        assert_eq!(whole_seconds(4_312), "4s");
        assert_eq!(whole_seconds(870_000), "14m 30s");
        assert_eq!(whole_seconds(0), "0s");
    }
}
