//! Statistics: the tests and intervals the policy judges metrics with.
//!
//! Everything here is a pure function of sufficient statistics (counts, sums, sums of
//! squares). No module here knows about contracts, zones or windows; the policy decides which
//! samples to compare and what a result means. Every function that can meet degenerate input
//! (no samples, zero variance) returns `None` instead of a NaN or an infinity, so evidence
//! built from these results only ever holds finite numbers.
//!
//! # What lives where
//!
//! - [`fixed`]: fixed-horizon tests — two-proportion z test (pooled variance, as
//!   `statsmodels.stats.proportion.proportions_ztest`), Welch's t test from moments with the
//!   Welch–Satterthwaite degrees of freedom (as `scipy.stats.ttest_ind_from_stats(...,
//!   equal_var=False)`), one-sample tests against a fixed value or ceiling, and intervals:
//!   the Wald interval for the absolute difference and the delta-method (log ratio, "Katz")
//!   interval for the relative difference (as `statsmodels ... confint_proportions_2indep(
//!   method="log", compare="ratio")`).
//! - [`msprt`]: the mixture sequential probability ratio test (Johari, Pekelis, Walsh 2017,
//!   "Always valid inference"): a normal mixture N(0, τ²) over the difference, its e-value
//!   (the mixture likelihood ratio) and the always-valid confidence sequence it implies.
//! - [`srm`]: the sample-ratio-mismatch chi-square test.
//!
//! The reference values these functions are checked against (to 1e-6 relative) come from
//! scipy and statsmodels through `tools/stats_vectors.py`, committed as
//! `tests/vectors/stats.json` and checked by `tests/stats_vectors.rs`.

pub mod fixed;
pub mod msprt;
pub mod srm;

use statrs::distribution::{ContinuousCDF, Normal};

/// The sufficient statistics of one sample: size, mean and per-observation variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    /// Per-observation variance (the sample variance with n−1 for means; p(1−p) for rates).
    pub var: f64,
}

impl Moments {
    /// A rate sample: `events` out of `trials`. None without trials.
    #[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
    pub fn rate(events: u64, trials: u64) -> Option<Moments> {
        if trials == 0 || events > trials {
            return None;
        }
        let n = trials as f64;
        let p = events as f64 / n;
        Some(Moments {
            n,
            mean: p,
            var: p * (1.0 - p),
        })
    }

    /// A sample summarised by n, sum and sum of squares. None with fewer than two values.
    #[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
    pub fn from_sums(n: u64, sum: f64, sum_sq: f64) -> Option<Moments> {
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mean = sum / nf;
        // Rounding can make a constant sample's variance slightly negative.
        let var = ((sum_sq - sum * mean) / (nf - 1.0)).max(0.0);
        finite(mean)?;
        finite(var)?;
        Some(Moments { n: nf, mean, var })
    }

    /// Variance of the sample mean.
    pub fn var_of_mean(&self) -> f64 {
        self.var / self.n
    }
}

/// `x > 0`, and false for NaN: degenerate inputs fail this check instead of slipping past.
pub fn positive(x: f64) -> bool {
    x > 0.0
}

/// `Some(x)` when `x` is finite.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// P(Z > z) for a standard normal Z, accurate in the far tail.
pub fn normal_sf(z: f64) -> f64 {
    // erfc keeps relative precision where 1 - cdf would cancel.
    0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_two_sided(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// The standard normal quantile; `p` must be in (0, 1).
pub fn normal_quantile(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    let normal = Normal::new(0.0, 1.0).ok()?;
    finite(normal.inverse_cdf(p))
}

/// P(|T| > |t|) for Student's t with `df` degrees of freedom.
pub fn t_two_sided(t: f64, df: f64) -> Option<f64> {
    if !positive(df) || !t.is_finite() {
        return None;
    }
    // P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2), the regularized incomplete beta.
    let x = df / (df + t * t);
    finite(statrs::function::beta::beta_reg(df / 2.0, 0.5, x).clamp(0.0, 1.0))
}

/// P(T > t) for Student's t with `df` degrees of freedom.
pub fn t_sf(t: f64, df: f64) -> Option<f64> {
    let two = t_two_sided(t, df)?;
    Some(if t >= 0.0 { two / 2.0 } else { 1.0 - two / 2.0 })
}

/// The quantile of Student's t (`p` in (0, 1)), polished with Newton steps on the cdf so it
/// matches scipy to well under 1e-6.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(positive(p) && p < 1.0 && positive(df)) {
        return None;
    }
    let dist = statrs::distribution::StudentsT::new(0.0, 1.0, df).ok()?;
    let mut x = dist.inverse_cdf(p);
    if !x.is_finite() {
        x = normal_quantile(p)?;
    }
    use statrs::distribution::Continuous;
    for _ in 0..4 {
        let upper = t_sf(x, df)?;
        let err = (1.0 - upper) - p;
        let density = dist.pdf(x);
        if !positive(density) {
            break;
        }
        x -= err / density;
    }
    finite(x)
}
