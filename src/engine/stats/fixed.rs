//! Fixed-horizon tests and intervals: one look at one sample, the textbook way.
//!
//! Each function mirrors a reference implementation named in its doc, and
//! `tests/stats_vectors.rs` holds it to that reference to 1e-6 relative. Degenerate input
//! (no variance, no samples) gives `None`, never NaN.

use super::{
    finite, normal_quantile, normal_two_sided, positive, t_quantile, t_two_sided, Moments,
};

/// A test statistic, its two-sided p-value and, for t tests, its degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
    /// Degrees of freedom (t tests); None for z tests.
    pub df: Option<f64>,
}

/// Two-proportion z test with the pooled variance under "no difference":
/// z = (p₁ − p₂) / √(p̄(1 − p̄)(1/n₁ + 1/n₂)).
/// Reference: `statsmodels.stats.proportion.proportions_ztest([e1, e2], [n1, n2])`.
#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn two_proportion_z(e1: u64, n1: u64, e2: u64, n2: u64) -> Option<TestResult> {
    let a = Moments::rate(e1, n1)?;
    let b = Moments::rate(e2, n2)?;
    let pooled = (e1 + e2) as f64 / (n1 + n2) as f64;
    let var = pooled * (1.0 - pooled) * (1.0 / a.n + 1.0 / b.n);
    if !positive(var) {
        return None;
    }
    let z = finite((a.mean - b.mean) / var.sqrt())?;
    Some(TestResult {
        statistic: z,
        p_value: normal_two_sided(z),
        df: None,
    })
}

/// Welch's unequal-variance t test from moments, with Welch–Satterthwaite degrees of freedom
/// df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)).
/// Reference: `scipy.stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)`.
pub fn welch(a: Moments, b: Moments) -> Option<TestResult> {
    let df = welch_df(a, b)?;
    let se = (a.var_of_mean() + b.var_of_mean()).sqrt();
    if !positive(se) {
        return None;
    }
    let t = finite((a.mean - b.mean) / se)?;
    Some(TestResult {
        statistic: t,
        p_value: t_two_sided(t, df)?,
        df: Some(df),
    })
}

/// The Welch–Satterthwaite degrees of freedom of a difference of two means.
pub fn welch_df(a: Moments, b: Moments) -> Option<f64> {
    let va = a.var_of_mean();
    let vb = b.var_of_mean();
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let denom = va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0);
    if !positive(denom) {
        return None;
    }
    finite((va + vb) * (va + vb) / denom)
}

/// One-sample score z test of a rate against a fixed value p₀:
/// z = (p̂ − p₀) / √(p₀(1 − p₀)/n).
/// Reference: `proportions_ztest(e, n, value=p0, prop_var=p0)`.
#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn one_sample_rate_z(events: u64, trials: u64, p0: f64) -> Option<TestResult> {
    let a = Moments::rate(events, trials)?;
    let var = p0 * (1.0 - p0) / a.n;
    if !positive(var) {
        return None;
    }
    let z = finite((a.mean - p0) / var.sqrt())?;
    Some(TestResult {
        statistic: z,
        p_value: normal_two_sided(z),
        df: None,
    })
}

/// One-sample t test of a mean against a fixed value μ₀: t = (x̄ − μ₀)/(s/√n), n − 1 df.
/// Reference: `scipy.stats.t.sf` on the same statistic (scipy's `ttest_1samp` needs raw data).
pub fn one_sample_t(a: Moments, mu0: f64) -> Option<TestResult> {
    let se = a.var_of_mean().sqrt();
    if !positive(se) || a.n < 2.0 {
        return None;
    }
    let df = a.n - 1.0;
    let t = finite((a.mean - mu0) / se)?;
    Some(TestResult {
        statistic: t,
        p_value: t_two_sided(t, df)?,
        df: Some(df),
    })
}

/// The quantile for a two-sided interval at `level`: normal, or Student's t with `df`.
pub fn two_sided_quantile(level: f64, df: Option<f64>) -> Option<f64> {
    let p = 1.0 - (1.0 - level) / 2.0;
    match df {
        Some(df) => t_quantile(p, df),
        None => normal_quantile(p),
    }
}

/// Interval for the absolute difference of means a − b at `level`:
/// (x̄ₐ − x̄_b) ± q·√(sₐ²/nₐ + s_b²/n_b), q normal (rates: the Wald interval, as
/// `confint_proportions_2indep(method="wald", compare="diff")`) or Welch's t.
pub fn diff_interval(a: Moments, b: Moments, level: f64, df: Option<f64>) -> Option<(f64, f64)> {
    let se = (a.var_of_mean() + b.var_of_mean()).sqrt();
    let q = two_sided_quantile(level, df)?;
    let d = a.mean - b.mean;
    Some((finite(d - q * se)?, finite(d + q * se)?))
}

/// Interval for a mean (one sample) at `level` (rates: Wald, normal; means: t with n − 1 df).
pub fn mean_interval(a: Moments, level: f64, df: Option<f64>) -> Option<(f64, f64)> {
    let se = a.var_of_mean().sqrt();
    let q = two_sided_quantile(level, df)?;
    Some((finite(a.mean - q * se)?, finite(a.mean + q * se)?))
}

/// Variance of log(x̄ₐ / x̄_b) by the delta method: sₐ²/(nₐx̄ₐ²) + s_b²/(n_b x̄_b²).
/// None unless both means are positive.
pub fn log_ratio_var(a: Moments, b: Moments) -> Option<f64> {
    if !(a.mean > 0.0 && b.mean > 0.0) {
        return None;
    }
    finite(a.var_of_mean() / (a.mean * a.mean) + b.var_of_mean() / (b.mean * b.mean))
}

/// Interval for the relative difference x̄ₐ/x̄_b − 1 at `level`: the delta method on the log
/// ratio, exponentiated, so the interval is asymmetric and never below −100%. For rates this
/// is the Katz log interval, as `confint_proportions_2indep(method="log", compare="ratio")`
/// minus one. None unless both means are positive.
pub fn relative_interval(a: Moments, b: Moments, level: f64) -> Option<(f64, f64)> {
    let var = log_ratio_var(a, b)?;
    let q = normal_quantile(1.0 - (1.0 - level) / 2.0)?;
    let centre = (a.mean / b.mean).ln();
    let half = q * var.sqrt();
    Some((
        finite((centre - half).exp() - 1.0)?,
        finite((centre + half).exp() - 1.0)?,
    ))
}

/// A one-sided test of harm on an estimate oriented so that harm is positive: z (or t with
/// `df`) = estimate / se, p = P(Z ≥ z), and the one-sided (1 − α) bound's distance q·se.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneSided {
    pub statistic: f64,
    /// P(statistic this large or larger) under "no harm".
    pub p_value: f64,
    pub df: Option<f64>,
    pub se: f64,
}

/// The one-sided test of `harm` (positive = worse) with standard error `se`: the Wald z test
/// (`df` None; rates: `statsmodels test_proportions_2indep(method="wald",
/// alternative="larger")`, one sample: `proportions_ztest(value=p0, alternative="larger")`)
/// or a t test (Welch: `scipy.stats.ttest_ind_from_stats(equal_var=False,
/// alternative="greater")`; one sample: `scipy.stats.t.sf`).
pub fn one_sided(harm: f64, se: f64, df: Option<f64>) -> Option<OneSided> {
    if !positive(se) {
        return None;
    }
    let statistic = finite(harm / se)?;
    let p_value = match df {
        Some(df) => super::t_sf(statistic, df)?,
        None => super::normal_sf(statistic),
    };
    Some(OneSided {
        statistic,
        p_value,
        df,
        se,
    })
}

/// q with P(Z > q) = α (normal, or Student's t with `df`).
pub fn one_sided_quantile(alpha: f64, df: Option<f64>) -> Option<f64> {
    match df {
        Some(df) => t_quantile(1.0 - alpha, df),
        None => normal_quantile(1.0 - alpha),
    }
}
