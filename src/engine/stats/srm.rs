//! Sample-ratio mismatch: are the arms' sample sizes in the ratio the split promised?
//!
//! Pearson's chi-square goodness-of-fit test with one degree of freedom on the two arms'
//! counts against the expected treatment share. A tiny p-value means the assignment or the
//! logging is broken, so any comparison of the arms is untrustworthy.
//! Reference: `scipy.stats.chisquare([nt, nc], f_exp=[N·s, N·(1 − s)])`.

use super::{finite, normal_two_sided};

/// Chi-square statistic and p-value of a sample-ratio test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmResult {
    pub chi2: f64,
    pub p_value: f64,
}

/// Tests `treatment` and `control` counts against an expected treatment share in (0, 1).
#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn chi_square(treatment: u64, control: u64, treatment_share: f64) -> Option<SrmResult> {
    let total = (treatment + control) as f64;
    if !(total > 0.0 && treatment_share > 0.0 && treatment_share < 1.0) {
        return None;
    }
    let exp_t = total * treatment_share;
    let exp_c = total - exp_t;
    let dt = treatment as f64 - exp_t;
    let dc = control as f64 - exp_c;
    let chi2 = finite(dt * dt / exp_t + dc * dc / exp_c)?;
    // With one degree of freedom, chi² = Z², so P(χ²₁ > x) = P(|Z| > √x).
    Some(SrmResult {
        chi2,
        p_value: normal_two_sided(chi2.sqrt()),
    })
}

/// ln of the anytime-valid Bayes factor for a sample-ratio mismatch (Lindon & Malek 2022,
/// "Anytime-valid inference for multinomial count data", the two-arm case): the treatment
/// share has a Beta(κs, κ(1 − s)) prior centred on the expected share s, and
///
/// ```text
/// BF = B(κs + x, κ(1 − s) + y) / B(κs, κ(1 − s)) / (sˣ (1 − s)ʸ)
/// ```
///
/// for x treatment and y control units. Under the expected share BF is a nonnegative
/// martingale as units accumulate, so P(BF ever ≥ 1/α) ≤ α (Ville): SRM can be checked at
/// every window without inflating false alarms. Reference: `scipy.stats.betabinom.logpmf −
/// scipy.stats.binom.logpmf`.
#[allow(clippy::cast_precision_loss)] // counts are capped at 1e12 by signal validation
pub fn log_bayes_factor(
    treatment: u64,
    control: u64,
    treatment_share: f64,
    concentration: f64,
) -> Option<f64> {
    use statrs::function::gamma::ln_gamma;
    if !(treatment_share > 0.0 && treatment_share < 1.0 && concentration > 0.0) {
        return None;
    }
    let (x, y) = (treatment as f64, control as f64);
    let a = concentration * treatment_share;
    let b = concentration * (1.0 - treatment_share);
    let ln_beta = |p: f64, q: f64| ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
    finite(
        ln_beta(a + x, b + y)
            - ln_beta(a, b)
            - x * treatment_share.ln()
            - y * (1.0 - treatment_share).ln(),
    )
}
