//! Judging one metric of one cohort in one window: which samples to compare, whether they
//! can be trusted, what the test says, and which zone rules the data meet.
//!
//! # One test per decision
//!
//! Every rule is decided by a **one-sided** test of harm, and the interval reported is the
//! one that test implies, so what the evidence shows is what the zone was decided on:
//!
//! - sequential (default): the one-sided mixture SPRT (`stats::msprt::one_sided_look`) on the
//!   pooled samples of each evidence span ([`spans`](super::spans)); harm is significant on a
//!   span when its e-value reaches 1/α_span, which is exactly when the always-valid bound
//!   θ̂ − d lies on the harmful side of zero. The interval shown is θ̂ ± d.
//! - fixed: this window alone, the one-sided Wald z test (rates) or Welch t test (means);
//!   significant exactly when θ̂ − q·se lies on the harmful side; shown: θ̂ ± q·se.
//!
//! The relative interval is the difference interval as a share of the baseline estimate.
//!
//! # What a rule means
//!
//! - **relative / absolute**: met when, on some span, the treatment is significantly worse
//!   than the baseline **and** that span's estimated worsening reaches the threshold
//!   (statistical and practical significance, both required).
//! - **above / below** (ceilings and floors): met when, on some span, the treatment's value is
//!   significantly beyond the bound (one-sided test against the bound; for rates in sequential
//!   mode under the variance at the bound, c(1 − c)/n). Nested bounds share the test's level.
//!
//! # Baselines
//!
//! - `control`: the control arm pooled over the same span.
//! - `rolling: D`: the control pooled over the earlier windows that started within D before
//!   this one; while no such window exists yet the metric is *warming up* (no expansion, no
//!   manual review). The baseline moves, so across looks this is a heuristic, not a guarantee.
//! - `fixed`: a value per metric.
//!
//! # The mixing variance
//!
//! τ is the worsening the metric's stop rule names (else its kill rule's, else its watch
//! rule's), in the metric's unit; for ceilings and floors the distance from the baseline to
//! the bound (at least a quarter of the bound). The mixture then weighs effects of the size
//! that holds a rollout.
//!
//! This module never decides a verdict and never touches cohort state.

use super::budget::{has_comparison, has_level, Budget};
use super::contract::{Baseline, Better, Contract, MetricKind, MetricSpec, TestKind, ZoneRule};
use super::evidence::Figures;
use super::reliability::check_reliability;
use super::spans::{pool, EvidenceSpan};
use super::stats::{self, fixed, msprt, Moments};
use super::window::{ArmAggregate, CohortWindow, MetricWindow, Window};
use crate::ids::Millis;

/// Most windows pooled by the sequential test (the state machine keeps more:
/// `contract::MIN_WINDOWS_KEPT`).
pub const MAX_SPAN: usize = 96;
const _: () = assert!(MAX_SPAN < super::contract::MIN_WINDOWS_KEPT);

/// What a metric's data say this window, before streaks and verdicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// The figures judged, as the decision's evidence keeps them.
    pub figures: Figures,
    /// The data show the treatment worse than the baseline on the reported span.
    pub significant_harm: bool,
    /// Rules met this window, from reliable data only: watch, stop, kill.
    pub met: [bool; 3],
    /// Why the metric cannot be trusted this window (a needed part failed a check).
    pub unreliable: Option<String>,
    /// Why the metric cannot be judged yet although nothing is wrong (no baseline yet).
    pub warming_up: Option<String>,
}

/// Everything needed to judge one metric.
pub struct MetricInput<'a> {
    pub contract: &'a Contract,
    pub spec: &'a MetricSpec,
    pub window: Window,
    pub current: &'a CohortWindow,
    /// Earlier windows of the cohort, oldest first, at most `MAX_SPAN` (spans, staleness).
    pub history: &'a [CohortWindow],
    /// Every earlier window the node keeps, oldest first (a rolling baseline may cover more
    /// than `MAX_SPAN`).
    pub baseline_history: &'a [CohortWindow],
    /// The spans the tests are judged on (one, the window, for the fixed test).
    pub spans: &'a [EvidenceSpan],
    pub budget: &'a Budget,
    /// Why the arms' assignment cannot be trusted (sample-ratio mismatch), when it cannot.
    pub srm_mismatch: Option<&'a str>,
}

/// The sign that makes a difference "worse": +1 when lower is better.
pub fn harm_sign(better: Better) -> f64 {
    match better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
    }
}

pub(crate) fn moments(kind: MetricKind, agg: &ArmAggregate) -> Option<Moments> {
    match kind {
        MetricKind::Rate => Moments::rate(agg.events, agg.trials),
        MetricKind::Mean | MetricKind::Observations => {
            Moments::from_sums(agg.n, agg.sum, agg.sum_sq)
        }
        MetricKind::Latency => None,
    }
}

/// The quantile a latency metric is judged by.
pub fn quantile_of(spec: &MetricSpec) -> f64 {
    spec.quantile.unwrap_or(0.5)
}

/// An arm's point value: the rate, the mean, or the latency quantile.
pub fn point(spec: &MetricSpec, agg: &ArmAggregate) -> Option<f64> {
    agg.value_at(spec.kind, quantile_of(spec))
        .and_then(stats::finite)
}

/// The zone rules in order watch, stop, kill.
pub fn rules(spec: &MetricSpec) -> [Option<&ZoneRule>; 3] {
    spec.zone_rules()
}

/// The baseline sample: an arm aggregate or a fixed value.
#[derive(Clone)]
pub(crate) enum BaselineSample {
    Arm(ArmAggregate),
    Value(f64),
}

/// One one-sided test of harm on one span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tested {
    /// Estimate − reference, in the metric's unit (not oriented).
    pub delta: f64,
    /// The decided interval of `delta`: delta ± d.
    pub interval: (f64, f64),
    pub e_value: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
    /// How far past its threshold the test is (log e − log(1/α), or z − q): comparable
    /// between spans of one test.
    pub margin: f64,
    pub alpha: f64,
}

/// The one-sided test of "the estimate is no worse than the reference" for `harm` =
/// sign·(estimate − reference) with variance `v`. `tau` is the mixing sd (sequential) and
/// `df` the t test's degrees of freedom (fixed; None for z).
pub(crate) fn test_harm(
    delta: f64,
    sign: f64,
    v: f64,
    tau: Option<f64>,
    df: Option<f64>,
    alpha: f64,
    sequential: bool,
) -> Option<Tested> {
    let harm = sign * delta;
    if sequential {
        let tau = tau?;
        let look = msprt::one_sided_look(harm, v, tau * tau, alpha)?;
        let threshold = (1.0 / alpha).ln();
        return Some(Tested {
            delta,
            interval: (
                stats::finite(delta - look.radius)?,
                stats::finite(delta + look.radius)?,
            ),
            e_value: stats::finite(look.e_value),
            p_value: None,
            significant: look.log_e >= threshold,
            margin: look.log_e - threshold,
            alpha,
        });
    }
    let se = v.sqrt();
    let test = fixed::one_sided(harm, se, df)?;
    let q = fixed::one_sided_quantile(alpha, df)?;
    Some(Tested {
        delta,
        interval: (
            stats::finite(delta - q * se)?,
            stats::finite(delta + q * se)?,
        ),
        e_value: None,
        p_value: Some(test.p_value),
        significant: test.p_value <= alpha,
        margin: test.statistic - q,
        alpha,
    })
}

/// Judges one metric for one window.
pub fn assess(input: &MetricInput<'_>) -> Assessment {
    let spec = input.spec;
    let kind = spec.kind;
    let name = &spec.name;
    let now: MetricWindow = input.current.metric(name);
    let mut out = Assessment {
        figures: Figures {
            window_treatment: point(spec, &now.treatment),
            window_control: point(spec, &now.control),
            window_samples_treatment: now.treatment.samples(kind),
            window_samples_control: now.control.samples(kind),
            test: test_name(input.contract, spec).to_owned(),
            quantile: (kind == MetricKind::Latency).then(|| quantile_of(spec)),
            ..Figures::default()
        },
        ..Assessment::default()
    };
    let pooled = pool(
        input.history,
        input.current,
        input.window,
        name,
        input.spans,
    );

    // The rolling baseline is one sample for every span.
    let mut rolling_windows = 0usize;
    let rolling = match &input.contract.baseline {
        Baseline::Rolling(span) => {
            let mut agg = ArmAggregate::default();
            let from: Millis = input.window.start.saturating_sub(span.0);
            for w in input.baseline_history {
                if w.window
                    .is_some_and(|x| x.start >= from && x.start < input.window.start)
                {
                    agg.merge(&w.metric(name).control);
                    rolling_windows += 1;
                }
            }
            out.figures.baseline_source =
                format!("control of the previous {}", String::from(*span));
            Some(agg)
        }
        Baseline::Control => {
            out.figures.baseline_source = "control".to_owned();
            None
        }
        Baseline::Fixed(_) => {
            out.figures.baseline_source = "fixed".to_owned();
            None
        }
    };
    let baseline_of = |m: &MetricWindow| match &input.contract.baseline {
        Baseline::Control => BaselineSample::Arm(m.control.clone()),
        Baseline::Rolling(_) => BaselineSample::Arm(rolling.clone().unwrap_or_default()),
        Baseline::Fixed(values) => BaselineSample::Value(values.get(name).copied().unwrap_or(0.0)),
    };
    let baseline_samples = match baseline_of(&now) {
        BaselineSample::Arm(agg) => agg.samples(kind),
        BaselineSample::Value(_) => 0,
    };

    let reliability = check_reliability(input, &now, baseline_samples);
    out.figures.low_confidence_share = reliability.low_confidence_share;
    let warming = matches!(input.contract.baseline, Baseline::Rolling(_)) && rolling_windows == 0;
    let mut comparison_unreliable = reliability.comparison.clone();
    if warming {
        comparison_unreliable = None;
        out.warming_up = Some(format!(
            "{}: no earlier window to build the rolling baseline from yet",
            super::reason::metric_label(name)
        ));
    }
    if let Some(srm) = input.srm_mismatch {
        comparison_unreliable = Some(match comparison_unreliable {
            Some(why) => format!("{why}; {srm}"),
            None => srm.to_owned(),
        });
    }
    let comparison_ok = comparison_unreliable.is_none() && !warming;

    let sign = harm_sign(spec.better);
    let rule_list = rules(spec);
    if has_comparison(spec) {
        let mut best: Option<(usize, Tested)> = None;
        let mut best_rank = (-1i32, f64::NEG_INFINITY);
        for (i, span) in input.spans.iter().enumerate() {
            let (m, _) = &pooled[i];
            let (t, delta, relative) = if kind == MetricKind::Latency {
                let Some(l) = compare_latency(input, &m.treatment, &baseline_of(m), span) else {
                    continue;
                };
                let relative = (l.1 != 0.0).then(|| (l.0 - l.1) / l.1.abs());
                (l.2, l.0 - l.1, relative.and_then(stats::finite))
            } else {
                let Some(t) = compare(input, &m.treatment, &baseline_of(m), span) else {
                    continue;
                };
                let relative = relative_of(&t, &baseline_of(m), kind);
                (t, t.delta, relative)
            };
            let mut worst_met = -1i32;
            for (z, rule) in rule_list.iter().enumerate() {
                let Some(rule) = rule else { continue };
                let practical = rule
                    .relative
                    .is_some_and(|r| relative.is_some_and(|x| x * sign >= r.0))
                    || rule.absolute.is_some_and(|a| delta * sign >= a);
                if t.significant && practical {
                    if comparison_ok {
                        out.met[z] = true;
                    }
                    worst_met = worst_met.max(i32::try_from(z).unwrap_or(0));
                }
            }
            let rank = (worst_met, t.margin);
            if rank.0 > best_rank.0 || (rank.0 == best_rank.0 && rank.1 > best_rank.1) {
                best_rank = rank;
                best = Some((i, t));
            }
        }
        // Without any test (no data), report the restart span's values.
        let shown = best.map_or(0, |(i, _)| i);
        if let Some((m, windows)) = pooled.get(shown) {
            fill_comparison(
                &mut out,
                spec,
                m,
                &baseline_of(m),
                *windows,
                best.map(|b| b.1),
            );
        }
    } else if let Some((m, windows)) = pooled.first() {
        fill_comparison(&mut out, spec, m, &baseline_of(m), *windows, None);
    }

    let level_ok = reliability.level.is_none();
    if has_level(spec) {
        judge_level(input, &mut out, &pooled, level_ok);
    }

    let mut reasons = Vec::new();
    if has_level(spec) {
        reasons.extend(reliability.level);
    }
    if has_comparison(spec) && !spec.guardrail {
        reasons.extend(comparison_unreliable);
    }
    reasons.dedup();
    if !reasons.is_empty() {
        out.unreliable = Some(reasons.join("; "));
    }
    out
}

fn test_name(contract: &Contract, spec: &MetricSpec) -> &'static str {
    let fixed_baseline = matches!(contract.baseline, Baseline::Fixed(_));
    match (contract.test, spec.kind, fixed_baseline) {
        (TestKind::Sequential, _, _) => "one-sided msprt",
        (TestKind::Fixed, MetricKind::Rate, false) => "one-sided wald z",
        (TestKind::Fixed, MetricKind::Rate, true) => "one-sided one-sample z",
        (TestKind::Fixed, _, false) => "one-sided welch t",
        (TestKind::Fixed, _, true) => "one-sided one-sample t",
    }
}

/// The comparison test of one span.
fn compare(
    input: &MetricInput<'_>,
    treatment: &ArmAggregate,
    baseline: &BaselineSample,
    span: &EvidenceSpan,
) -> Option<Tested> {
    let spec = input.spec;
    let a = moments(spec.kind, treatment)?;
    let (b, b_value) = match baseline {
        BaselineSample::Arm(agg) => {
            let b = moments(spec.kind, agg)?;
            (Some(b), b.mean)
        }
        BaselineSample::Value(v) => (None, *v),
    };
    let v = a.var_of_mean() + b.map_or(0.0, |b| b.var_of_mean());
    let df = match (spec.kind, b) {
        (MetricKind::Rate, _) => None,
        (_, Some(b)) => fixed::welch_df(a, b),
        (_, None) => Some(a.n - 1.0),
    };
    let sequential = input.contract.test == TestKind::Sequential;
    let alpha = span.level(input.budget, input.budget.test);
    test_harm(
        a.mean - b_value,
        harm_sign(spec.better),
        v,
        mixing_sd(spec, b_value),
        df,
        alpha,
        sequential,
    )
}

/// Latency against the baseline on one span: the share of treatment timings above the
/// baseline's quantile c (control's q-quantile, or the fixed value) against control's share
/// above c (or 1 − q for a fixed value), one-sided. A slower treatment puts more of its
/// timings above c. Returns (treatment quantile, baseline quantile, the test).
fn compare_latency(
    input: &MetricInput<'_>,
    treatment: &ArmAggregate,
    baseline: &BaselineSample,
    span: &EvidenceSpan,
) -> Option<(f64, f64, Tested)> {
    let spec = input.spec;
    let q = quantile_of(spec);
    let qt = treatment.sketch.quantile(q)?;
    let sequential = input.contract.test == TestKind::Sequential;
    let alpha = span.level(input.budget, input.budget.test);
    let tau = Some((1.0 - q).max(1e-4));
    let a = Moments::rate(
        treatment
            .sketch
            .count_above(baseline_quantile(baseline, q)?),
        treatment.sketch.count(),
    )?;
    let (qb, tested) = match baseline {
        BaselineSample::Arm(agg) => {
            let qc = agg.sketch.quantile(q)?;
            let b = Moments::rate(agg.sketch.count_above(qc), agg.sketch.count())?;
            let v = a.var_of_mean() + b.var_of_mean();
            let t = test_harm(
                a.mean - b.mean,
                harm_sign(spec.better),
                v,
                tau,
                None,
                alpha,
                sequential,
            )?;
            (qc, t)
        }
        BaselineSample::Value(v0) => {
            let p0 = 1.0 - q;
            let v = p0 * q / a.n;
            let t = test_harm(
                a.mean - p0,
                harm_sign(spec.better),
                v,
                tau,
                None,
                alpha,
                sequential,
            )?;
            (*v0, t)
        }
    };
    Some((qt, qb, tested))
}

fn baseline_quantile(baseline: &BaselineSample, q: f64) -> Option<f64> {
    match baseline {
        BaselineSample::Arm(agg) => agg.sketch.quantile(q),
        BaselineSample::Value(v) => Some(*v),
    }
}

fn relative_of(t: &Tested, baseline: &BaselineSample, kind: MetricKind) -> Option<f64> {
    let b = match baseline {
        BaselineSample::Arm(agg) => agg.value(kind)?,
        BaselineSample::Value(v) => *v,
    };
    (b != 0.0)
        .then(|| t.delta / b.abs())
        .and_then(stats::finite)
}

/// Writes the reported span's values (and its test, when there is one) into the assessment.
fn fill_comparison(
    out: &mut Assessment,
    spec: &MetricSpec,
    m: &MetricWindow,
    baseline: &BaselineSample,
    windows: u32,
    tested: Option<Tested>,
) {
    let kind = spec.kind;
    out.figures.span_windows = windows;
    out.figures.samples_treatment = m.treatment.samples(kind);
    out.figures.treatment = point(spec, &m.treatment);
    let (value, samples) = match baseline {
        BaselineSample::Arm(agg) => {
            out.figures.control = point(spec, agg);
            (out.figures.control, agg.samples(kind))
        }
        BaselineSample::Value(v) => (Some(*v), 0),
    };
    out.figures.baseline = value;
    out.figures.samples_control = samples;
    if let (Some(t), Some(b)) = (out.figures.treatment, value) {
        out.figures.delta = stats::finite(t - b);
        out.figures.relative = (b != 0.0)
            .then(|| (t - b) / b.abs())
            .and_then(stats::finite);
    }
    let Some(t) = tested else { return };
    if kind == MetricKind::Latency {
        // The test is on shares above the baseline's quantile, not on the quantiles.
        out.figures.exceedance_interval = Some(t.interval);
        out.figures.e_value = t.e_value;
        out.figures.p_value = t.p_value;
        out.figures.alpha = Some(t.alpha);
        out.significant_harm = t.significant;
        return;
    }
    out.figures.delta = Some(t.delta);
    out.figures.delta_interval = Some(t.interval);
    out.figures.e_value = t.e_value;
    out.figures.p_value = t.p_value;
    out.figures.alpha = Some(t.alpha);
    out.significant_harm = t.significant;
    if let Some(b) = value.filter(|b| *b != 0.0) {
        out.figures.relative = stats::finite(t.delta / b.abs());
        out.figures.relative_interval = Some((t.interval.0 / b.abs(), t.interval.1 / b.abs()));
    }
}

/// The mixing standard deviation τ of a comparison: the worsening the stop rule names (the
/// smaller of its thresholds); without a stop comparison the kill rule's, then the watch
/// rule's. The mixture's mass then sits on the effects that hold a rollout: a watch-sized τ
/// spends it on effects that only slow one, and delays every stop.
pub fn mixing_sd(spec: &MetricSpec, baseline: f64) -> Option<f64> {
    let [watch, stop, kill] = rules(spec);
    [stop, kill, watch].into_iter().flatten().find_map(|rule| {
        let candidates = [rule.relative.map(|r| r.0 * baseline.abs()), rule.absolute];
        candidates
            .into_iter()
            .flatten()
            .filter(|c| *c > 0.0)
            .reduce(f64::min)
            .and_then(stats::finite)
    })
}

/// The mixing sd of a ceiling/floor test: the distance from the baseline to the bound, at
/// least a quarter of the bound (half of it without a baseline).
fn level_tau(bound: f64, baseline: Option<f64>) -> Option<f64> {
    let tau = match baseline {
        Some(b) => (bound - b).abs().max(0.25 * bound.abs()),
        None => 0.5 * bound.abs(),
    };
    stats::positive(tau).then_some(tau)
}

/// The treatment against one bound on one span.
fn test_bound(
    input: &MetricInput<'_>,
    treatment: &ArmAggregate,
    bound: f64,
    baseline: Option<f64>,
    alpha: f64,
) -> Option<(Tested, f64)> {
    let spec = input.spec;
    let sequential = input.contract.test == TestKind::Sequential;
    if spec.kind == MetricKind::Latency {
        // The q-quantile is beyond the bound exactly when more than 1 − q of the timings are.
        let q = quantile_of(spec);
        let p0 = 1.0 - q;
        let n = treatment.sketch.count();
        let share = Moments::rate(treatment.sketch.count_above(bound), n)?;
        let t = test_harm(
            share.mean - p0,
            harm_sign(spec.better),
            p0 * q / share.n,
            Some(p0.max(1e-4)),
            None,
            alpha,
            sequential,
        )?;
        return Some((t, treatment.sketch.quantile(q)?));
    }
    let a = moments(spec.kind, treatment)?;
    let (v, df) = match spec.kind {
        // Sequentially, under the variance at the bound: the null the ceiling states.
        MetricKind::Rate if sequential && bound > 0.0 && bound < 1.0 => {
            (bound * (1.0 - bound) / a.n, None)
        }
        MetricKind::Rate => (a.var_of_mean(), None),
        _ => (a.var_of_mean(), Some(a.n - 1.0)),
    };
    let t = test_harm(
        a.mean - bound,
        harm_sign(spec.better),
        v,
        level_tau(bound, baseline),
        df,
        alpha,
        sequential,
    )?;
    Some((t, a.mean))
}

/// The treatment against the metric's ceilings and floors, on every span.
fn judge_level(
    input: &MetricInput<'_>,
    out: &mut Assessment,
    pooled: &[(MetricWindow, u32)],
    reliable: bool,
) {
    let spec = input.spec;
    let kind = spec.kind;
    let bound_of = |r: &ZoneRule| match spec.better {
        Better::Lower => r.above,
        Better::Higher => r.below,
    };
    // The strictest bound is reported when no rule is met.
    let strictest = rules(spec)
        .into_iter()
        .flatten()
        .filter_map(bound_of)
        .reduce(|x, y| match spec.better {
            Better::Lower => x.min(y),
            Better::Higher => x.max(y),
        });
    let Some(strictest) = strictest else { return };
    let mut shown: Option<(i32, f64, Tested, f64, u32)> = None;
    for (i, span) in input.spans.iter().enumerate() {
        let (m, windows) = &pooled[i];
        let alpha = span.level(input.budget, input.budget.test);
        let baseline = match &input.contract.baseline {
            Baseline::Fixed(values) => values.get(&spec.name).copied(),
            _ => point(spec, &m.control),
        };
        for (z, rule) in rules(spec).into_iter().enumerate() {
            let Some(bound) = rule.and_then(bound_of) else {
                continue;
            };
            let Some((t, value)) = test_bound(input, &m.treatment, bound, baseline, alpha) else {
                continue;
            };
            let met = t.significant;
            if met && reliable {
                out.met[z] = true;
            }
            let rank = if met {
                i32::try_from(z).unwrap_or(0)
            } else {
                -1
            };
            let report = met || bound == strictest;
            let better = shown
                .as_ref()
                .is_none_or(|s| rank > s.0 || (rank == s.0 && t.margin > s.1));
            if report && better {
                shown = Some((rank, t.margin, t, value, *windows));
            }
        }
    }
    if let Some((_, _, t, value, windows)) = shown {
        let d = (t.interval.1 - t.interval.0) / 2.0;
        if kind != MetricKind::Latency {
            out.figures.treatment_interval = Some((value - d, value + d));
        }
        out.figures.ceiling_p_value = t.p_value;
        out.figures.ceiling_e_value = t.e_value;
        out.figures.ceiling_span_windows = windows;
        out.figures.ceiling_alpha = Some(t.alpha);
    }
}
