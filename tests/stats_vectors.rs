//! Every statistic equals its scipy/statsmodels reference to 1e-6 relative.
//!
//! The vectors are produced by `tools/stats_vectors.py` (see its doc for the command) and
//! committed, so this test needs no Python.

use rampart::engine::stats::{fixed, msprt, normal_quantile, srm, t_quantile, Moments};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/stats.json");
const TOL: f64 = 1e-6;

fn close(what: &str, got: f64, want: f64) {
    let scale = want.abs().max(1e-300);
    let rel = (got - want).abs() / scale;
    // Values that are zero in the reference are compared absolutely.
    let ok = if want == 0.0 {
        got.abs() < 1e-12
    } else {
        rel <= TOL
    };
    assert!(
        ok,
        "{what}: got {got:e}, want {want:e} (relative error {rel:e})"
    );
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn pair(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

fn doc() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

#[test]
fn two_proportion_z_and_intervals_match_statsmodels() {
    for case in doc()["two_proportion"].as_array().unwrap() {
        let (e1, n1, e2, n2) = (u(case, "e1"), u(case, "n1"), u(case, "e2"), u(case, "n2"));
        let r = fixed::two_proportion_z(e1, n1, e2, n2).unwrap();
        close(&format!("z {case}"), r.statistic, f(case, "z"));
        close(&format!("p {case}"), r.p_value, f(case, "p"));
        let a = Moments::rate(e1, n1).unwrap();
        let b = Moments::rate(e2, n2).unwrap();
        for ci in case["ci"].as_array().unwrap() {
            let level = 1.0 - f(ci, "alpha");
            let (lo, hi) = fixed::diff_interval(a, b, level, None).unwrap();
            let want = pair(&ci["diff"]);
            close("diff lo", lo, want.0);
            close("diff hi", hi, want.1);
            if let Some(rel) = ci.get("relative") {
                let (lo, hi) = fixed::relative_interval(a, b, level).unwrap();
                let want = pair(rel);
                close("relative lo", lo, want.0);
                close("relative hi", hi, want.1);
            }
        }
    }
}

#[test]
fn one_sample_rate_z_matches_statsmodels() {
    for case in doc()["one_sample_rate"].as_array().unwrap() {
        let r = fixed::one_sample_rate_z(u(case, "e"), u(case, "n"), f(case, "p0")).unwrap();
        close("z", r.statistic, f(case, "z"));
        close("p", r.p_value, f(case, "p"));
    }
}

#[test]
fn welch_from_moments_matches_scipy() {
    for case in doc()["welch"].as_array().unwrap() {
        let a = Moments {
            n: f(case, "n1"),
            mean: f(case, "m1"),
            var: f(case, "v1"),
        };
        let b = Moments {
            n: f(case, "n2"),
            mean: f(case, "m2"),
            var: f(case, "v2"),
        };
        let r = fixed::welch(a, b).unwrap();
        close(&format!("t {case}"), r.statistic, f(case, "t"));
        close(&format!("p {case}"), r.p_value, f(case, "p"));
        close("df", r.df.unwrap(), f(case, "df"));
        for ci in case["ci"].as_array().unwrap() {
            let level = 1.0 - f(ci, "alpha");
            let (lo, hi) = fixed::diff_interval(a, b, level, r.df).unwrap();
            let want = pair(&ci["diff"]);
            close(&format!("welch lo {ci}"), lo, want.0);
            close(&format!("welch hi {ci}"), hi, want.1);
            if let Some(rel) = ci.get("relative") {
                let (lo, hi) = fixed::relative_interval(a, b, level).unwrap();
                let want = pair(rel);
                close("relative lo", lo, want.0);
                close("relative hi", hi, want.1);
            }
        }
        let one = &case["one_sample"];
        let r = fixed::one_sample_t(a, f(one, "mu0")).unwrap();
        close("one-sample t", r.statistic, f(one, "t"));
        close("one-sample p", r.p_value, f(one, "p"));
    }
}

#[test]
fn msprt_matches_numerical_integration() {
    for case in doc()["msprt"].as_array().unwrap() {
        let (theta, v, tau2, alpha) = (
            f(case, "theta_hat"),
            f(case, "v"),
            f(case, "tau2"),
            f(case, "alpha"),
        );
        let look = msprt::look(theta, v, tau2, alpha).unwrap();
        close(&format!("log e {case}"), look.log_e, f(case, "log_e"));
        close(
            &format!("radius {case}"),
            msprt::radius(v, tau2, alpha).unwrap(),
            f(case, "radius"),
        );
    }
}

#[test]
fn srm_chi_square_matches_scipy() {
    for case in doc()["srm"].as_array().unwrap() {
        let r =
            srm::chi_square(u(case, "treatment"), u(case, "control"), f(case, "share")).unwrap();
        close("chi2", r.chi2, f(case, "chi2"));
        close("p", r.p_value, f(case, "p"));
    }
}

#[test]
fn quantiles_match_scipy() {
    for case in doc()["quantiles"].as_array().unwrap() {
        let p = f(case, "p");
        close("normal", normal_quantile(p).unwrap(), f(case, "normal"));
        for t in case["t"].as_array().unwrap() {
            let df = f(t, "df");
            close(
                &format!("t p={p} df={df}"),
                t_quantile(p, df).unwrap(),
                f(t, "q"),
            );
        }
    }
}

#[test]
fn one_sided_msprt_matches_quadrature() {
    for case in doc()["msprt_one_sided"].as_array().unwrap() {
        let (theta, v, tau2, alpha) = (
            f(case, "theta_hat"),
            f(case, "v"),
            f(case, "tau2"),
            f(case, "alpha"),
        );
        let log_e = msprt::log_one_sided_ratio(theta, v, tau2).unwrap();
        close(&format!("one-sided log e {case}"), log_e, f(case, "log_e"));
        let r = msprt::one_sided_radius(v, tau2, alpha).unwrap();
        close(&format!("one-sided radius {case}"), r, f(case, "radius"));
    }
}

#[test]
fn one_sided_fixed_tests_match_statsmodels_and_scipy() {
    let doc = doc();
    let one = &doc["one_sided"];
    for case in one["rates"].as_array().unwrap() {
        let a = Moments::rate(u(case, "e1"), u(case, "n1")).unwrap();
        let b = Moments::rate(u(case, "e2"), u(case, "n2")).unwrap();
        let se = (a.var_of_mean() + b.var_of_mean()).sqrt();
        let r = fixed::one_sided(a.mean - b.mean, se, None).unwrap();
        close(&format!("wald z {case}"), r.statistic, f(case, "z"));
        close(&format!("wald p {case}"), r.p_value, f(case, "p"));
    }
    for case in one["means"].as_array().unwrap() {
        let a = Moments {
            n: f(case, "n1"),
            mean: f(case, "m1"),
            var: f(case, "v1"),
        };
        let b = Moments {
            n: f(case, "n2"),
            mean: f(case, "m2"),
            var: f(case, "v2"),
        };
        let df = fixed::welch_df(a, b).unwrap();
        let se = (a.var_of_mean() + b.var_of_mean()).sqrt();
        let r = fixed::one_sided(a.mean - b.mean, se, Some(df)).unwrap();
        close(&format!("welch t {case}"), r.statistic, f(case, "t"));
        close(
            &format!("welch one-sided p {case}"),
            r.p_value,
            f(case, "p"),
        );
    }
    for case in one["one_sample_rate"].as_array().unwrap() {
        let a = Moments::rate(u(case, "e"), u(case, "n")).unwrap();
        let r = fixed::one_sided(a.mean - f(case, "p0"), a.var_of_mean().sqrt(), None).unwrap();
        close(&format!("one-sample z {case}"), r.statistic, f(case, "z"));
        close(&format!("one-sample p {case}"), r.p_value, f(case, "p"));
    }
    for case in one["quantiles"].as_array().unwrap() {
        let alpha = f(case, "alpha");
        let q = fixed::one_sided_quantile(alpha, None).unwrap();
        close(&format!("normal isf {alpha}"), q, f(case, "normal"));
        for t in case["t"].as_array().unwrap() {
            let q = fixed::one_sided_quantile(alpha, Some(f(t, "df"))).unwrap();
            close(&format!("t isf {alpha} {t}"), q, f(t, "q"));
        }
    }
}

#[test]
fn srm_bayes_factor_matches_scipy_betabinom() {
    for case in doc()["srm_bayes_factor"].as_array().unwrap() {
        let got = srm::log_bayes_factor(
            u(case, "treatment"),
            u(case, "control"),
            f(case, "share"),
            f(case, "concentration"),
        )
        .unwrap();
        close(&format!("srm log BF {case}"), got, f(case, "log_bf"));
    }
}
