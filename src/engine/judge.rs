//! Judging one metric of one cohort in one window: which samples to compare, whether they
//! can be trusted, what the test says, and which zone rules the data meet.
//!
//! # What a zone rule means
//!
//! - **relative / absolute** (comparisons with the baseline): met when the test shows, at the
//!   metric's significance level, that the treatment is *worse* than the baseline (the
//!   interval of the difference lies wholly on the harmful side of zero: for the sequential
//!   test, the e-value reached 1/α), **and** the estimated worsening reaches the threshold
//!   (Δ/baseline ≥ relative, Δ ≥ absolute, in the metric's bad direction). Statistical and
//!   practical significance, both required.
//! - **above / below** (ceilings and floors): judged on this window's treatment value alone,
//!   whatever the baseline: met when the window's (1 − α) interval of the treatment value
//!   (Wald for rates, t for means) lies wholly beyond the bound. The p-value of the one-sample
//!   test against the strictest bound (score z for rates, t for means) is reported with it.
//!
//! # Which samples
//!
//! - baseline `control`, test `sequential`: cumulative treatment vs cumulative control over
//!   the evidence span — every window of the cohort since the gate began (or since
//!   `CohortState::evidence_since`), at most [`MAX_SPAN`] windows — judged with the mSPRT.
//! - baseline `control`, test `fixed`: this window's treatment vs this window's control.
//! - baseline `rolling: D`: this window's treatment vs the control pooled over the earlier
//!   windows that started within D before this one. The baseline moves, so the sequential
//!   mixture ratio here is a valid test at each look (Markov), not across looks.
//! - baseline `fixed`: the treatment (cumulative in sequential mode) vs the fixed value.
//!
//! # Error rate
//!
//! Every test of a metric runs at α/M, M the number of metrics in the contract (Bonferroni),
//! so the chance that any metric of a cohort falsely lands in a zone during the whole rollout
//! is at most α for sequential tests. Zones of one metric share its test, so they add no
//! multiplicity. Cohorts are decided independently, each at α.
//!
//! # The mixing variance
//!
//! τ is the smallest worsening the metric's rules name, in the metric's unit: relative
//! thresholds times the baseline estimate, absolute thresholds, and for ceilings/floors the
//! distance from the baseline to the bound. The mixture then weighs effects of the size the
//! contract cares about (Johari et al. recommend matching τ to the effects of interest).
//!
//! This module never decides a verdict and never touches cohort state.

use super::contract::{Baseline, Better, Contract, MetricKind, MetricSpec, TestKind, ZoneRule};
use super::reliability::check_reliability;
use super::stats::{self, fixed, msprt, Moments};
use super::window::{ArmAggregate, CohortWindow, MetricWindow, Window};
use crate::ids::Millis;

/// Most windows pooled by the sequential test (the state machine keeps at least this many).
pub const MAX_SPAN: usize = 96;

/// What a metric's data say this window, before streaks and verdicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// Judged values: treatment over the span, the baseline, and the window alone.
    pub treatment: Option<f64>,
    pub control: Option<f64>,
    pub baseline: Option<f64>,
    pub baseline_source: String,
    pub window_treatment: Option<f64>,
    pub window_control: Option<f64>,
    pub delta: Option<f64>,
    pub delta_interval: Option<(f64, f64)>,
    pub relative: Option<f64>,
    pub relative_interval: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub e_value: Option<f64>,
    pub test: String,
    pub span_windows: u32,
    pub samples_treatment: u64,
    pub samples_control: u64,
    pub window_samples_treatment: u64,
    pub window_samples_control: u64,
    pub treatment_interval: Option<(f64, f64)>,
    pub ceiling_p_value: Option<f64>,
    pub srm_p_value: Option<f64>,
    pub low_confidence_share: Option<f64>,
    /// The data show the treatment worse than the baseline at the metric's level.
    pub significant_harm: bool,
    /// Rules met this window, from reliable data only: watch, stop, kill.
    pub met: [bool; 3],
    /// Why the metric cannot be trusted this window (a needed part failed a check).
    pub unreliable: Option<String>,
}

/// Everything needed to judge one metric.
pub struct MetricInput<'a> {
    pub contract: &'a Contract,
    pub spec: &'a MetricSpec,
    pub window: Window,
    pub current: &'a CohortWindow,
    /// Earlier windows of the cohort inside the evidence span, oldest first.
    pub span: &'a [CohortWindow],
    /// Earlier windows of the cohort, oldest first (for rolling baselines and staleness).
    pub history: &'a [CohortWindow],
    pub alpha: f64,
}

/// The sign that makes a difference "worse": +1 when lower is better.
pub fn harm_sign(better: Better) -> f64 {
    match better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
    }
}

fn moments(kind: MetricKind, agg: &ArmAggregate) -> Option<Moments> {
    match kind {
        MetricKind::Rate => Moments::rate(agg.events, agg.trials),
        MetricKind::Mean | MetricKind::Observations => {
            Moments::from_sums(agg.n, agg.sum, agg.sum_sq)
        }
    }
}

fn has_comparison(spec: &MetricSpec) -> bool {
    rules(spec)
        .iter()
        .flatten()
        .any(|r| r.relative.is_some() || r.absolute.is_some())
}

fn has_level(spec: &MetricSpec) -> bool {
    rules(spec)
        .iter()
        .flatten()
        .any(|r| r.above.is_some() || r.below.is_some())
}

/// The zone rules in order watch, stop, kill.
pub fn rules(spec: &MetricSpec) -> [Option<&ZoneRule>; 3] {
    [spec.watch.as_ref(), spec.stop.as_ref(), spec.kill.as_ref()]
}

/// The baseline sample: an arm aggregate or a fixed value.
enum BaselineSample {
    Arm(ArmAggregate),
    Value(f64),
}

/// Judges one metric for one window.
pub fn assess(input: &MetricInput<'_>) -> Assessment {
    let spec = input.spec;
    let kind = spec.kind;
    let name = &spec.name;
    let now: MetricWindow = input.current.metric(name);
    let mut out = Assessment {
        window_treatment: now.treatment.value(kind).and_then(stats::finite),
        window_control: now.control.value(kind).and_then(stats::finite),
        window_samples_treatment: now.treatment.samples(kind),
        window_samples_control: now.control.samples(kind),
        ..Assessment::default()
    };

    // Treatment over the comparison span, and the baseline sample.
    let sequential = input.contract.test == TestKind::Sequential;
    let mut treatment = now.treatment.clone();
    let mut span_windows = 1u32;
    let baseline = match &input.contract.baseline {
        Baseline::Control => {
            let mut control = now.control.clone();
            if sequential {
                for w in input.span {
                    let m = w.metric(name);
                    treatment.merge(&m.treatment);
                    control.merge(&m.control);
                    span_windows += 1;
                }
            }
            out.baseline_source = "control".to_owned();
            BaselineSample::Arm(control)
        }
        Baseline::Rolling(span) => {
            let mut pooled = ArmAggregate::default();
            let from: Millis = input.window.start.saturating_sub(span.0);
            for w in input.history {
                if w.window
                    .is_some_and(|x| x.start >= from && x.start < input.window.start)
                {
                    pooled.merge(&w.metric(name).control);
                }
            }
            out.baseline_source = format!("control of the previous {}", String::from(*span));
            BaselineSample::Arm(pooled)
        }
        Baseline::Fixed(values) => {
            if sequential {
                for w in input.span {
                    treatment.merge(&w.metric(name).treatment);
                    span_windows += 1;
                }
            }
            out.baseline_source = "fixed".to_owned();
            BaselineSample::Value(values.get(name).copied().unwrap_or(0.0))
        }
    };
    out.span_windows = span_windows;
    out.samples_treatment = treatment.samples(kind);
    out.treatment = treatment.value(kind).and_then(stats::finite);
    let (baseline_value, baseline_samples) = match &baseline {
        BaselineSample::Arm(agg) => {
            out.control = agg.value(kind).and_then(stats::finite);
            (out.control, agg.samples(kind))
        }
        BaselineSample::Value(v) => (Some(*v), 0),
    };
    out.samples_control = baseline_samples;
    out.baseline = baseline_value;

    let reliability = check_reliability(input, &now, baseline_samples);
    out.srm_p_value = reliability.srm_p_value;
    out.low_confidence_share = reliability.low_confidence_share;

    let comparison_reliable = reliability.comparison.is_none();
    compare(input, &mut out, &treatment, &baseline);
    let level_reliable = reliability.level.is_none();
    judge_level(input, &mut out, &now.treatment);

    let sign = harm_sign(spec.better);
    for (i, rule) in rules(spec).into_iter().enumerate() {
        let Some(rule) = rule else { continue };
        let by_comparison = comparison_reliable
            && out.significant_harm
            && (rule
                .relative
                .is_some_and(|r| out.relative.is_some_and(|x| x * sign >= r.0))
                || rule
                    .absolute
                    .is_some_and(|a| out.delta.is_some_and(|d| d * sign >= a)));
        let by_level = level_reliable && level_met(rule, &out, spec.better);
        out.met[i] = by_comparison || by_level;
    }

    let mut reasons = Vec::new();
    if has_level(spec) {
        reasons.extend(reliability.level);
    }
    if has_comparison(spec) && !spec.guardrail {
        reasons.extend(reliability.comparison);
    }
    reasons.dedup();
    if !reasons.is_empty() {
        out.unreliable = Some(reasons.join("; "));
    }
    out
}

/// The difference test: fills delta, intervals, p or e and `significant_harm`.
fn compare(
    input: &MetricInput<'_>,
    out: &mut Assessment,
    treatment: &ArmAggregate,
    baseline: &BaselineSample,
) {
    let spec = input.spec;
    let alpha = input.alpha;
    let level = 1.0 - alpha;
    let Some(a) = moments(spec.kind, treatment) else {
        return;
    };
    let (b, b_value) = match baseline {
        BaselineSample::Arm(agg) => match moments(spec.kind, agg) {
            Some(b) => (Some(b), b.mean),
            None => return,
        },
        BaselineSample::Value(v) => (None, *v),
    };
    let delta = a.mean - b_value;
    out.delta = stats::finite(delta);
    out.relative = (b_value != 0.0)
        .then(|| delta / b_value.abs())
        .and_then(stats::finite);
    let sign = harm_sign(spec.better);
    // Variance of the difference; a fixed baseline has none.
    let v = a.var_of_mean() + b.map_or(0.0, |b| b.var_of_mean());
    if input.contract.test == TestKind::Sequential {
        out.test = "msprt".to_owned();
        let Some(tau) = mixing_sd(spec, b_value) else {
            return;
        };
        let Some(look) = msprt::look(delta, v, tau * tau, alpha) else {
            return;
        };
        out.e_value = stats::finite(look.e_value);
        out.delta_interval = Some(look.interval);
        let harmful_side = if sign > 0.0 {
            look.interval.0 > 0.0
        } else {
            look.interval.1 < 0.0
        };
        out.significant_harm = look.e_value >= 1.0 / alpha && harmful_side;
        out.relative_interval = match b {
            Some(b) => sequential_relative_interval(a, b, tau, alpha),
            None => scale_interval(look.interval, b_value),
        };
        return;
    }
    let result = match (spec.kind, baseline) {
        (MetricKind::Rate, BaselineSample::Arm(agg)) => {
            out.test = "two-proportion z".to_owned();
            fixed::two_proportion_z(treatment.events, treatment.trials, agg.events, agg.trials)
        }
        (MetricKind::Rate, BaselineSample::Value(p0)) => {
            out.test = "one-sample z".to_owned();
            fixed::one_sample_rate_z(treatment.events, treatment.trials, *p0)
        }
        (_, BaselineSample::Arm(_)) => {
            out.test = "welch t".to_owned();
            b.and_then(|b| fixed::welch(a, b))
        }
        (_, BaselineSample::Value(mu0)) => {
            out.test = "one-sample t".to_owned();
            fixed::one_sample_t(a, *mu0)
        }
    };
    let Some(result) = result else { return };
    out.p_value = Some(result.p_value);
    out.significant_harm = result.p_value <= alpha && delta * sign > 0.0;
    match b {
        Some(b) => {
            out.delta_interval = fixed::diff_interval(a, b, level, result.df);
            out.relative_interval = fixed::relative_interval(a, b, level);
        }
        None => {
            out.delta_interval = fixed::mean_interval(a, level, result.df)
                .map(|(lo, hi)| (lo - b_value, hi - b_value));
            out.relative_interval = out
                .delta_interval
                .and_then(|iv| scale_interval(iv, b_value));
        }
    }
}

/// The always-valid interval of the relative difference: the mSPRT radius on the log ratio
/// (delta-method variance), with the mixing sd scaled to the log scale, exponentiated.
fn sequential_relative_interval(
    a: Moments,
    b: Moments,
    tau: f64,
    alpha: f64,
) -> Option<(f64, f64)> {
    let var = fixed::log_ratio_var(a, b)?;
    let tau_log = tau / b.mean;
    let r = msprt::radius(var, tau_log * tau_log, alpha)?;
    let centre = (a.mean / b.mean).ln();
    Some((
        stats::finite((centre - r).exp() - 1.0)?,
        stats::finite((centre + r).exp() - 1.0)?,
    ))
}

/// An interval of a difference from a fixed value, as a share of that value.
fn scale_interval(interval: (f64, f64), base: f64) -> Option<(f64, f64)> {
    if base == 0.0 {
        return None;
    }
    let (lo, hi) = (interval.0 / base.abs(), interval.1 / base.abs());
    Some((stats::finite(lo)?, stats::finite(hi)?))
}

/// The mixing standard deviation τ: the smallest worsening the metric's rules name.
pub fn mixing_sd(spec: &MetricSpec, baseline: f64) -> Option<f64> {
    let mut smallest = f64::INFINITY;
    for rule in rules(spec).into_iter().flatten() {
        let candidates = [
            rule.relative.map(|r| r.0 * baseline.abs()),
            rule.absolute,
            rule.above.map(|x| (x - baseline).abs()),
            rule.below.map(|x| (x - baseline).abs()),
        ];
        for c in candidates.into_iter().flatten() {
            if c > 0.0 && c < smallest {
                smallest = c;
            }
        }
    }
    stats::finite(smallest)
}

/// This window's treatment against the metric's ceilings and floors.
fn judge_level(input: &MetricInput<'_>, out: &mut Assessment, treatment: &ArmAggregate) {
    let spec = input.spec;
    let Some(a) = moments(spec.kind, treatment) else {
        return;
    };
    let df = (spec.kind != MetricKind::Rate).then_some(a.n - 1.0);
    out.treatment_interval = fixed::mean_interval(a, 1.0 - input.alpha, df);
    // The strictest bound decides whether the window is beyond a bound at all; each rule is
    // then checked against its own bound in `level_met`.
    let bound = rules(spec)
        .into_iter()
        .flatten()
        .filter_map(|r| r.above.or(r.below))
        .reduce(|x, y| match spec.better {
            Better::Lower => x.min(y),
            Better::Higher => x.max(y),
        });
    if let Some(bound) = bound {
        out.ceiling_p_value = level_test(spec.kind, treatment, a, bound).map(|r| r.p_value);
    }
}

fn level_test(
    kind: MetricKind,
    agg: &ArmAggregate,
    a: Moments,
    bound: f64,
) -> Option<fixed::TestResult> {
    match kind {
        MetricKind::Rate => fixed::one_sample_rate_z(agg.events, agg.trials, bound),
        MetricKind::Mean | MetricKind::Observations => fixed::one_sample_t(a, bound),
    }
}

/// Whether a rule's ceiling or floor is crossed with evidence: this window's (1 − α) interval
/// of the treatment value lies wholly beyond the bound.
fn level_met(rule: &ZoneRule, out: &Assessment, better: Better) -> bool {
    let Some((lo, hi)) = out.treatment_interval else {
        return false;
    };
    let Some(value) = out.window_treatment else {
        return false;
    };
    match better {
        Better::Lower => rule.above.is_some_and(|c| value > c && lo > c),
        Better::Higher => rule.below.is_some_and(|f| value < f && hi < f),
    }
}
