#!/usr/bin/env python3
"""Reference values for rampart's statistics, from scipy and statsmodels.

    pip install scipy statsmodels
    python3 tools/stats_vectors.py > tests/vectors/stats.json

`tests/stats_vectors.rs` checks every Rust statistic against these numbers to 1e-6 relative.
The mSPRT reference integrates the likelihood ratio against the mixing density numerically
(scipy.integrate.quad), independently of the closed form used in Rust, and finds the
confidence-sequence radius by root finding on that integral.
"""
import json
import math
import sys

import numpy as np
import scipy
import statsmodels
from scipy import integrate, optimize, stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep, proportions_ztest, test_proportions_2indep,
)

RATE_CASES = [
    (48, 600, 49, 600), (88, 600, 48, 600), (12, 340, 9, 355), (3, 40, 4, 41),
    (960, 12000, 1010, 12000), (72, 2400, 10, 2400), (0, 100, 5, 100), (250, 500, 240, 510),
]
MEAN_CASES = [  # (n, mean, var) per arm
    (120, 3.75, 0.74, 120, 4.10, 0.78), (10, 4.0, 1.2, 12, 3.1, 0.4),
    (1200, 0.24, 0.2, 1180, 0.25, 0.21), (50, -0.1, 0.3, 400, 0.2, 0.9),
    (3, 1.0, 0.5, 2, 2.0, 2.0),
]
ALPHAS = [0.05, 0.0125, 0.01 / 3]


def rate_vectors():
    out = []
    for e1, n1, e2, n2 in RATE_CASES:
        z, p = proportions_ztest([e1, e2], [n1, n2])
        case = {"e1": e1, "n1": n1, "e2": e2, "n2": n2, "z": float(z), "p": float(p), "ci": []}
        for a in ALPHAS:
            lo, hi = confint_proportions_2indep(e1, n1, e2, n2, method="wald", compare="diff", alpha=a)
            entry = {"alpha": a, "diff": [float(lo), float(hi)]}
            if e1 > 0 and e2 > 0:
                rlo, rhi = confint_proportions_2indep(e1, n1, e2, n2, method="log", compare="ratio", alpha=a)
                entry["relative"] = [float(rlo) - 1.0, float(rhi) - 1.0]
            case["ci"].append(entry)
        out.append(case)
    return out


def one_sample_rate_vectors():
    out = []
    for e, n, p0 in [(72, 2400, 0.02), (10, 2400, 0.02), (50, 600, 0.08), (3, 40, 0.1)]:
        z, p = proportions_ztest(e, n, value=p0, prop_var=p0)
        out.append({"e": e, "n": n, "p0": p0, "z": float(z), "p": float(p)})
    return out


def mean_vectors():
    out = []
    for n1, m1, v1, n2, m2, v2 in MEAN_CASES:
        t, p = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
        s1, s2 = v1 / n1, v2 / n2
        df = (s1 + s2) ** 2 / (s1 ** 2 / (n1 - 1) + s2 ** 2 / (n2 - 1))
        se = math.sqrt(s1 + s2)
        case = {"n1": n1, "m1": m1, "v1": v1, "n2": n2, "m2": m2, "v2": v2,
                "t": float(t), "p": float(p), "df": df, "ci": []}
        for a in ALPHAS:
            q = stats.t.ppf(1 - a / 2, df)
            entry = {"alpha": a, "diff": [m1 - m2 - q * se, m1 - m2 + q * se]}
            if m1 > 0 and m2 > 0:
                lv = s1 / m1 ** 2 + s2 / m2 ** 2
                zq = stats.norm.ppf(1 - a / 2)
                c = math.log(m1 / m2)
                entry["relative"] = [math.exp(c - zq * math.sqrt(lv)) - 1, math.exp(c + zq * math.sqrt(lv)) - 1]
            case["ci"].append(entry)
        # one-sample t against mu0 = m2
        t1 = (m1 - m2) / math.sqrt(s1)
        case["one_sample"] = {"mu0": m2, "t": t1, "p": float(2 * stats.t.sf(abs(t1), n1 - 1))}
        out.append(case)
    return out


def log_mixture_ratio(theta_hat, v, tau2):
    """ln ∫ N(θ̂; θ, V) / N(θ̂; 0, V) · N(θ; 0, τ²) dθ by quadrature (scaled by its peak)."""
    sd_post = math.sqrt(v * tau2 / (v + tau2))
    centre = theta_hat * tau2 / (v + tau2)
    lo, hi = centre - 40 * sd_post, centre + 40 * sd_post

    def log_integrand(theta):
        return (stats.norm.logpdf(theta_hat, theta, math.sqrt(v))
                - stats.norm.logpdf(theta_hat, 0, math.sqrt(v))
                + stats.norm.logpdf(theta, 0, math.sqrt(tau2)))

    peak = log_integrand(centre)
    value, _ = integrate.quad(lambda t: math.exp(log_integrand(t) - peak), lo, hi,
                              epsabs=0, epsrel=1e-12, limit=200, points=[centre])
    return peak + math.log(value)


def msprt_vectors():
    out = []
    for theta_hat, v, tau2, alpha in [
        (0.024, 4.09e-5, 6.4e-5, 0.0167), (0.0, 2.4e-4, 6.4e-5, 0.05), (-0.01, 1e-4, 1e-4, 0.05),
        (0.35, 0.0024, 0.04, 0.0125), (0.002, 1e-6, 4e-6, 0.01), (0.1, 0.01, 0.0009, 0.05),
    ]:
        log_e = log_mixture_ratio(theta_hat, v, tau2)
        f = lambda d: log_mixture_ratio(d, v, tau2) - math.log(1 / alpha)
        r = optimize.brentq(f, 0.0, 100 * math.sqrt(v + tau2), xtol=1e-15, rtol=1e-13)
        out.append({"theta_hat": theta_hat, "v": v, "tau2": tau2, "alpha": alpha,
                    "log_e": log_e, "radius": r})
    return out


def log_one_sided_ratio(theta_hat, v, tau2):
    """ln ∫_0^∞ N(θ̂; θ, V) / N(θ̂; 0, V) · 2 N(θ; 0, τ²) dθ by quadrature (half-normal mixture)."""
    sd_post = math.sqrt(v * tau2 / (v + tau2))
    centre = max(theta_hat * tau2 / (v + tau2), 0.0)
    hi = centre + 40 * sd_post

    def log_integrand(theta):
        return (stats.norm.logpdf(theta_hat, theta, math.sqrt(v))
                - stats.norm.logpdf(theta_hat, 0, math.sqrt(v))
                + math.log(2) + stats.norm.logpdf(theta, 0, math.sqrt(tau2)))

    peak = log_integrand(centre)
    value, _ = integrate.quad(lambda t: math.exp(log_integrand(t) - peak), 0.0, hi,
                              epsabs=0, epsrel=1e-12, limit=200,
                              points=[centre] if centre > 0 else None)
    return peak + math.log(value)


def msprt_one_sided_vectors():
    out = []
    for theta_hat, v, tau2, alpha in [
        (0.024, 4.09e-5, 6.4e-5, 0.0049), (0.0, 2.4e-4, 6.4e-5, 0.05), (-0.01, 1e-4, 1e-4, 0.05),
        (0.35, 0.0024, 0.04, 0.0003125), (0.002, 1e-6, 4e-6, 0.01), (0.1, 0.01, 0.0009, 0.05),
        (0.06, 3.5e-5, 1e-4, 1.0416666666666667e-4),
    ]:
        log_e = log_one_sided_ratio(theta_hat, v, tau2)
        f = lambda d: log_one_sided_ratio(d, v, tau2) - math.log(1 / alpha)
        r = optimize.brentq(f, 0.0, 100 * math.sqrt(v + tau2), xtol=1e-15, rtol=1e-13)
        out.append({"theta_hat": theta_hat, "v": v, "tau2": tau2, "alpha": alpha,
                    "log_e": log_e, "radius": r})
    return out


def one_sided_vectors():
    """One-sided tests of harm (treatment larger), as the engine's fixed mode runs them."""
    rates = []
    for e1, n1, e2, n2 in RATE_CASES:
        if e1 in (0, n1) and e2 in (0, n2):
            continue
        res = test_proportions_2indep(e1, n1, e2, n2, method="wald", compare="diff",
                                      alternative="larger", correction=False)
        rates.append({"e1": e1, "n1": n1, "e2": e2, "n2": n2,
                      "z": float(res.statistic), "p": float(res.pvalue)})
    means = []
    for n1, m1, v1, n2, m2, v2 in MEAN_CASES:
        t, p = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2,
                                          equal_var=False, alternative="greater")
        means.append({"n1": n1, "m1": m1, "v1": v1, "n2": n2, "m2": m2, "v2": v2,
                      "t": float(t), "p": float(p)})
    one_rate = []
    for e, n, p0 in [(72, 2400, 0.02), (10, 2400, 0.02), (50, 600, 0.08), (3, 40, 0.1)]:
        z, p = proportions_ztest(e, n, value=p0, alternative="larger")
        one_rate.append({"e": e, "n": n, "p0": p0, "z": float(z), "p": float(p)})
    quantiles = []
    for a in [0.05, 0.0049, 0.0003125]:
        quantiles.append({"alpha": a, "normal": float(stats.norm.isf(a)),
                          "t": [{"df": df, "q": float(stats.t.isf(a, df))} for df in [3.0, 37.2, 5000.0]]})
    return {"rates": rates, "means": means, "one_sample_rate": one_rate, "quantiles": quantiles}


def srm_bayes_vectors():
    out = []
    for nt, nc, share in [(600, 600, 0.5), (5200, 4800, 0.5), (1030, 970, 0.5), (120, 880, 0.1),
                          (24, 31, 0.5), (6010, 5990, 0.5), (5300, 4700, 0.5)]:
        k = 100.0
        a, b = k * share, k * (1 - share)
        log_bf = float(stats.betabinom.logpmf(nt, nt + nc, a, b) - stats.binom.logpmf(nt, nt + nc, share))
        out.append({"treatment": nt, "control": nc, "share": share, "concentration": k, "log_bf": log_bf})
    return out


def srm_vectors():
    out = []
    for nt, nc, share in [(600, 600, 0.5), (5200, 4800, 0.5), (1030, 970, 0.5), (120, 880, 0.1), (24, 31, 0.5)]:
        n = nt + nc
        chi2, p = stats.chisquare([nt, nc], f_exp=[n * share, n * (1 - share)])
        out.append({"treatment": nt, "control": nc, "share": share, "chi2": float(chi2), "p": float(p)})
    return out


def quantile_vectors():
    out = []
    for p in [0.5, 0.9, 0.975, 0.99375, 0.9983333333333333, 0.999]:
        entry = {"p": p, "normal": float(stats.norm.ppf(p)), "t": []}
        for df in [1.5, 3.0, 9.0, 37.2, 237.9, 5000.0]:
            entry["t"].append({"df": df, "q": float(stats.t.ppf(p, df))})
        out.append(entry)
    return out


def main():
    doc = {
        "generated_by": "tools/stats_vectors.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
        "two_proportion": rate_vectors(),
        "one_sample_rate": one_sample_rate_vectors(),
        "welch": mean_vectors(),
        "msprt": msprt_vectors(),
        "srm": srm_vectors(),
        "msprt_one_sided": msprt_one_sided_vectors(),
        "one_sided": one_sided_vectors(),
        "srm_bayes_factor": srm_bayes_vectors(),
        "quantiles": quantile_vectors(),
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
