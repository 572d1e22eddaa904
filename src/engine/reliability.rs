//! Reliability checks of one metric in one window: enough samples, fresh signals, few enough
//! low-confidence observations. (Sample-ratio mismatch is a property of the assignment, not
//! of a metric: the policy checks it once per cohort, see [`srm_check`].)
//!
//! The checks are split by what they protect: the *comparison* with the baseline (both arms)
//! and the treatment's own *level* (what ceilings and floors are judged on), so a guardrail's
//! ceiling can still be trusted when the control arm is not. Never judges zones.

use super::contract::{Baseline, MetricKind};
use super::judge::MetricInput;
use super::stats::srm;
use super::window::CohortWindow;
use super::window::{ArmAggregate, MetricWindow};
use crate::ids::Millis;

/// What the reliability checks found, per part of the metric.
pub struct Reliability {
    /// Why the comparison with the baseline cannot be trusted.
    pub comparison: Option<String>,
    /// Why the treatment's own level cannot be trusted.
    pub level: Option<String>,
    pub low_confidence_share: Option<f64>,
}

#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn check_reliability(
    input: &MetricInput<'_>,
    now: &MetricWindow,
    baseline_samples: u64,
) -> Reliability {
    let spec = input.spec;
    let kind = spec.kind;
    let min = spec.min_samples;
    let uses_control = !matches!(input.contract.baseline, Baseline::Fixed(_));
    let mut level = Vec::new();
    let mut comparison = Vec::new();

    let st = now.treatment.samples(kind);
    let sc = now.control.samples(kind);
    if st < min {
        level.push(format!("too few samples in treatment ({st}; need {min})"));
    }
    let baseline_short = match input.contract.baseline {
        Baseline::Control => sc < min,
        Baseline::Rolling(_) => baseline_samples < min,
        Baseline::Fixed(_) => false,
    };
    if st < min || baseline_short {
        let control_count = if matches!(input.contract.baseline, Baseline::Rolling(_)) {
            baseline_samples
        } else {
            sc
        };
        comparison.push(format!(
            "too few samples ({st} treatment, {control_count} control; need {min})"
        ));
    }

    if let Some(max) = spec.max_staleness {
        let newest = |pick: fn(&MetricWindow) -> &ArmAggregate| {
            input
                .history
                .iter()
                .map(|w| pick(&w.metric(&spec.name)).newest_at)
                .chain(std::iter::once(pick(now).newest_at))
                .max()
                .flatten()
        };
        let age = |at: Option<Millis>| at.map(|t| input.window.end.saturating_sub(t));
        let stale = |at: Option<Millis>| age(at).is_none_or(|a| a > max.0);
        let t_new = newest(|m| &m.treatment);
        if stale(t_new) {
            let text = stale_text(age(t_new), max.0);
            level.push(format!("treatment {text}"));
            comparison.push(format!("treatment {text}"));
        }
        let c_new = newest(|m| &m.control);
        if uses_control && stale(c_new) {
            comparison.push(format!("control {}", stale_text(age(c_new), max.0)));
        }
    }

    let mut low_confidence_share = None;
    if kind == MetricKind::Observations {
        let share = |arm: &ArmAggregate| {
            let total = arm.low_confidence + arm.n;
            (total > 0).then(|| arm.low_confidence as f64 / total as f64)
        };
        let max = spec.max_low_confidence_share.0;
        let t_share = share(&now.treatment);
        let c_share = share(&now.control);
        let low = now.treatment.low_confidence + now.control.low_confidence;
        let total = low + now.treatment.n + now.control.n;
        if total > 0 {
            low_confidence_share = Some(low as f64 / total as f64);
        }
        if let Some(s) = t_share.filter(|s| *s > max) {
            let text = format!(
                "{:.0}% of treatment observations under the confidence floor",
                s * 100.0
            );
            level.push(text.clone());
            comparison.push(text);
        }
        if let Some(s) = c_share.filter(|s| *s > max && uses_control) {
            comparison.push(format!(
                "{:.0}% of control observations under the confidence floor",
                s * 100.0
            ));
        }
    }

    Reliability {
        comparison: (!comparison.is_empty()).then(|| comparison.join("; ")),
        level: (!level.is_empty()).then(|| level.join("; ")),
        low_confidence_share,
    }
}

fn stale_text(age: Option<Millis>, max: Millis) -> String {
    match age {
        Some(a) => format!(
            "is stale: newest signal {} min old (max {} min)",
            a / 60_000,
            max / 60_000
        ),
        None => "is stale: no signal yet".to_owned(),
    }
}

/// The sample-ratio check of one cohort: the arms' units (samples of the metric `srm.units`
/// names) pooled from `from` through the judged window, tested with the anytime-valid
/// Bayes factor of [`srm::log_bayes_factor`] at level `alpha`.
#[derive(Debug, Clone, PartialEq)]
pub struct SrmCheck {
    /// The anytime-valid p-value min(1, 1/BF).
    pub p_value: f64,
    /// Why the assignment cannot be trusted, when BF ≥ 1/α.
    pub mismatch: Option<String>,
}

#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn srm_check(
    contract: &super::contract::Contract,
    current: &CohortWindow,
    history: &[CohortWindow],
    from: Millis,
    alpha: f64,
) -> Option<SrmCheck> {
    let spec = contract.metric(&contract.srm.as_ref()?.units)?;
    let units = |arm: &ArmAggregate| arm.samples(spec.kind) + arm.low_confidence;
    let (mut t, mut c) = {
        let m = current.metric(&spec.name);
        (units(&m.treatment), units(&m.control))
    };
    let before = current.window.map_or(Millis::MAX, |w| w.start);
    for w in history {
        if w.window
            .is_some_and(|x| x.start >= from && x.start < before)
        {
            let m = w.metric(&spec.name);
            t += units(&m.treatment);
            c += units(&m.control);
        }
    }
    if t + c == 0 {
        return None;
    }
    let log_bf = srm::log_bayes_factor(
        t,
        c,
        contract.treatment_share,
        super::budget::SRM_CONCENTRATION,
    )?;
    let p_value = (-log_bf).exp().min(1.0);
    let mismatch = (log_bf >= (1.0 / alpha).ln()).then(|| {
        let share = t as f64 / (t + c) as f64;
        format!(
            "sample-ratio mismatch: {t} treatment vs {c} control units of {} ({:.1}% treatment, expected {:.1}%; anytime-valid p = {p_value:.2e})",
            spec.name,
            share * 100.0,
            contract.treatment_share * 100.0
        )
    });
    Some(SrmCheck { p_value, mismatch })
}
