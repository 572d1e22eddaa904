//! Reliability checks of one metric in one window: enough samples, fresh signals, arms in
//! the expected ratio (sample-ratio mismatch), few enough low-confidence observations.
//!
//! The checks are split by what they protect: the *comparison* with the baseline (both arms,
//! SRM) and the treatment's own *level* (what ceilings and floors are judged on), so a
//! guardrail's ceiling can still be trusted when the control arm is not. Never judges zones.

use super::contract::{Baseline, MetricKind};
use super::judge::MetricInput;
use super::stats::srm;
use super::window::{ArmAggregate, MetricWindow};
use crate::ids::Millis;

/// What the reliability checks found, per part of the metric.
pub struct Reliability {
    /// Why the comparison with the baseline cannot be trusted.
    pub comparison: Option<String>,
    /// Why the treatment's own level cannot be trusted.
    pub level: Option<String>,
    pub srm_p_value: Option<f64>,
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

    let srm_p_value = if matches!(input.contract.baseline, Baseline::Control) && st + sc > 0 {
        srm::chi_square(st, sc, input.contract.treatment_share).map(|r| r.p_value)
    } else {
        None
    };
    if srm_p_value.is_some_and(|p| p < input.contract.srm_alpha) {
        comparison.push(format!(
            "sample-ratio mismatch ({st} treatment vs {sc} control, p = {:.2e})",
            srm_p_value.unwrap_or(0.0)
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
        srm_p_value,
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
