//! The mixture sequential probability ratio test (mSPRT) with a normal mixture.
//!
//! Johari, Koomen, Pekelis, Walsh, "Always valid inference: continuous monitoring of A/B
//! tests" (Operations Research 2022; arXiv 1512.04922), section 3. With an estimate θ̂ of the
//! difference, asymptotically normal with variance V, and a mixing distribution N(θ₀, τ²)
//! over the alternative, the mixture likelihood ratio against θ = θ₀ is
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( (θ̂ − θ₀)² τ² / (2 V (V + τ²)) )
//! ```
//!
//! Under θ = θ₀, Λ computed on growing cumulative samples is a (super)martingale with mean 1,
//! so by Ville's inequality P(Λ ever reaches 1/α) ≤ α: rejecting whenever Λ ≥ 1/α, at every
//! look, keeps the type I error at α however often one looks. Λ is reported as the e-value.
//! Inverting the test gives the always-valid confidence sequence θ̂ ± r with
//!
//! ```text
//! r = √( 2 V (V + τ²) / τ² · ( ln(1/α) + ½ ln((V + τ²) / V) ) )
//! ```
//!
//! The **mixing variance τ²** is chosen by the policy, not here: it puts the mixture's mass on
//! effects of the size the contract cares about (see `policy::judge`). V uses the plug-in
//! (unpooled) variance estimates, as in the paper's practical version.
//!
//! Reference: `tools/stats_vectors.py` integrates the normal likelihood ratio against the
//! N(0, τ²) density numerically with `scipy.integrate.quad`, independently of this formula.

use super::finite;

/// The e-value and always-valid interval of one look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    /// ln Λ, the log mixture likelihood ratio against "no difference".
    pub log_e: f64,
    /// Λ, capped at e^700 so it stays a finite f64.
    pub e_value: f64,
    /// θ̂ ± r: the always-valid confidence interval at level 1 − α.
    pub interval: (f64, f64),
}

/// ln Λ for an estimate `theta_hat` with variance `v`, against `theta0`, mixing variance `tau2`.
pub fn log_mixture_ratio(theta_hat: f64, theta0: f64, v: f64, tau2: f64) -> Option<f64> {
    if !(v > 0.0 && tau2 > 0.0) {
        return None;
    }
    let d = theta_hat - theta0;
    finite(0.5 * (v / (v + tau2)).ln() + d * d * tau2 / (2.0 * v * (v + tau2)))
}

/// Half-width r of the always-valid (1 − α) confidence sequence.
pub fn radius(v: f64, tau2: f64, alpha: f64) -> Option<f64> {
    if !(v > 0.0 && tau2 > 0.0 && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let inner = 2.0 * v * (v + tau2) / tau2 * ((1.0 / alpha).ln() + 0.5 * ((v + tau2) / v).ln());
    finite(inner.sqrt())
}

/// One look of the test of "no difference" (θ₀ = 0 after the caller's shift).
pub fn look(theta_hat: f64, v: f64, tau2: f64, alpha: f64) -> Option<Look> {
    let log_e = log_mixture_ratio(theta_hat, 0.0, v, tau2)?;
    let r = radius(v, tau2, alpha)?;
    Some(Look {
        log_e,
        e_value: log_e.min(700.0).exp(),
        interval: (finite(theta_hat - r)?, finite(theta_hat + r)?),
    })
}

/// ln Φ(x), the log standard normal cdf, accurate far into the lower tail.
pub fn ln_normal_cdf(x: f64) -> f64 {
    if x > -35.0 {
        return super::normal_sf(-x).ln();
    }
    // Φ(x) = φ(x)/(−x) · (1 − 1/x² + 3/x⁴ − …) for x → −∞.
    let x2 = x * x;
    -0.5 * x2 - (-x).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
        + (1.0 - 1.0 / x2 + 3.0 / (x2 * x2)).ln()
}

/// ln Λ₊, the **one-sided** mixture likelihood ratio: the mixing density is the half-normal
/// 2·N(0, τ²) restricted to θ > 0 (harm only). Integrating gives
///
/// ```text
/// Λ₊ = Λ · 2Φ(θ̂ τ / √(V (V + τ²)))
/// ```
///
/// with Λ the two-sided ratio above. Under any θ ≤ 0 each alternative's ratio has mean at
/// most 1, so Λ₊ on growing samples is a nonnegative supermartingale and Ville's inequality
/// gives P(Λ₊ ever ≥ 1/α) ≤ α for the composite null "no harm". For harmful estimates it is
/// up to twice the two-sided Λ: the same guarantee for less data.
pub fn log_one_sided_ratio(theta_hat: f64, v: f64, tau2: f64) -> Option<f64> {
    let two_sided = log_mixture_ratio(theta_hat, 0.0, v, tau2)?;
    let x = theta_hat * tau2.sqrt() / (v * (v + tau2)).sqrt();
    finite(two_sided + std::f64::consts::LN_2 + ln_normal_cdf(x))
}

/// The distance d with ln Λ₊(d) = ln(1/α): the one-sided always-valid bound is θ̂ − d, and
/// θ̂ − d > 0 exactly when Λ₊(θ̂) ≥ 1/α. Λ ≤ Λ₊ ≤ 2Λ for d ≥ 0, so d lies between the
/// two-sided radii at 2α and at α; bisection finds it to machine precision.
pub fn one_sided_radius(v: f64, tau2: f64, alpha: f64) -> Option<f64> {
    let target = (1.0 / alpha).ln();
    let mut hi = radius(v, tau2, alpha)?;
    let mut lo = if 2.0 * alpha < 1.0 {
        radius(v, tau2, 2.0 * alpha)?
    } else {
        0.0
    };
    // Guard the bracket against rounding at its ends.
    lo = (lo * (1.0 - 1e-12)).max(0.0);
    hi *= 1.0 + 1e-12;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if log_one_sided_ratio(mid, v, tau2)? < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= f64::EPSILON * hi {
            break;
        }
    }
    finite(0.5 * (lo + hi))
}

/// One look of the one-sided test of "no harm", the estimate oriented so that harm is > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneSidedLook {
    /// ln Λ₊.
    pub log_e: f64,
    /// Λ₊, capped at e^700.
    pub e_value: f64,
    /// d: the always-valid one-sided bounds at level 1 − α are θ̂ − d (harm) and θ̂ + d.
    pub radius: f64,
}

/// The one-sided look of an estimate with variance `v` under mixing variance `tau2`.
pub fn one_sided_look(theta_hat: f64, v: f64, tau2: f64, alpha: f64) -> Option<OneSidedLook> {
    let log_e = log_one_sided_ratio(theta_hat, v, tau2)?;
    Some(OneSidedLook {
        log_e,
        e_value: log_e.min(700.0).exp(),
        radius: one_sided_radius(v, tau2, alpha)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_excludes_zero_exactly_when_e_value_reaches_one_over_alpha() {
        let (v, tau2, alpha) = (4e-5, 6.4e-5, 0.0125);
        for step in 0..200 {
            let theta = f64::from(step) * 1e-4;
            let l = look(theta, v, tau2, alpha).unwrap();
            let excludes = l.interval.0 > 0.0;
            let rejects = l.e_value >= 1.0 / alpha;
            // Equal up to the rounding at the boundary itself.
            if (l.e_value * alpha - 1.0).abs() > 1e-9 {
                assert_eq!(excludes, rejects, "theta {theta}");
            }
        }
    }

    #[test]
    fn one_sided_bound_excludes_zero_exactly_when_e_value_reaches_one_over_alpha() {
        let (v, tau2, alpha) = (4e-5, 6.4e-5, 0.0049);
        let d = one_sided_radius(v, tau2, alpha).unwrap();
        for step in -50..200 {
            let theta = f64::from(step) * 1e-4;
            let l = one_sided_look(theta, v, tau2, alpha).unwrap();
            if (l.log_e - (1.0 / alpha).ln()).abs() > 1e-9 {
                assert_eq!(theta - d > 0.0, l.e_value >= 1.0 / alpha, "theta {theta}");
            }
        }
    }

    #[test]
    fn one_sided_ratio_is_between_the_two_sided_and_twice_it_for_harm() {
        for step in 0..100 {
            let theta = f64::from(step) * 2e-4;
            let one = log_one_sided_ratio(theta, 4e-5, 6.4e-5).unwrap();
            let two = log_mixture_ratio(theta, 0.0, 4e-5, 6.4e-5).unwrap();
            assert!(one >= two - 1e-12 && one <= two + std::f64::consts::LN_2 + 1e-12);
        }
        // Benefit is evidence against harm: below the two-sided ratio.
        let benefit = log_one_sided_ratio(-0.01, 4e-5, 6.4e-5).unwrap();
        assert!(benefit < log_mixture_ratio(-0.01, 0.0, 4e-5, 6.4e-5).unwrap());
    }

    #[test]
    fn degenerate_variance_gives_none() {
        assert!(look(0.1, 0.0, 1.0, 0.05).is_none());
        assert!(look(0.1, 1.0, 0.0, 0.05).is_none());
    }
}
