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
    fn degenerate_variance_gives_none() {
        assert!(look(0.1, 0.0, 1.0, 0.05).is_none());
        assert!(look(0.1, 1.0, 0.0, 0.05).is_none());
    }
}
