//! The engine's simulation report (`docs/engine-report.md`): false alarms per gate in A/A
//! rollouts, detection delay against regressions that begin mid-rollout, a treatment sitting
//! exactly at its ceiling, and the best fixed-horizon test at the same sample size.
//!
//! ```text
//! cargo run --release --example simulate                 # writes docs/engine-report.md
//! cargo run --release --example simulate -- --rollouts 200 --out /tmp/report.md
//! ```
//!
//! The traces come from this file's own generator, not the shared one: units are assigned
//! per window (Poisson traffic, arms split Binomial(N, ½)); reviews, survey answers and
//! requests are drawn per unit (requests are overdispersed); CSAT answers are 1–5 Likert
//! draws; every rollout draws its own base rates; a severe topic appears in 0.5% of reviews in
//! *both* arms. The contract is `examples/checkout-v2.yaml` plus a `conversion` metric whose
//! trials are the assigned units, named by `srm.units`. Every trace is replayed through
//! `engine::backtest`, the code path the leader runs. Randomness is seeded here, never in
//! the engine.

use std::fmt::Write as _;

use rampart::engine::backtest::{backtest, BacktestReport};
use rampart::engine::budget::Budget;
use rampart::engine::signal::{Arm, Measurement, Signal};
use rampart::engine::stats::normal_quantile;
use rampart::engine::{Contract, Verdict};
use rampart::ids::{CohortName, GateKey, MetricName};
use rampart::scenario::{binomial, likert, normal, poisson};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONTRACT: &str = include_str!("checkout-v2.yaml");
const SEED: u64 = 20_261_201;
const START: i64 = 1_795_255_200_000; // 2026-11-21T10:00:00Z
const WINDOW_MS: i64 = 15 * 60 * 1000;
const COHORTS: [&str; 2] = ["mobile", "desktop"];

/// The report's contract: the example plus a conversion metric that counts assigned units.
fn contract() -> Contract {
    let extra = "  - name: conversion\n    kind: rate\n    better: higher\n    min_samples: 200\n    stop: { relative: 10% }\n";
    let text = CONTRACT.replace(
        "topics:\n",
        &format!("{extra}srm: {{ units: conversion }}\ntopics:\n"),
    );
    Contract::from_yaml(&text).expect("report contract")
}

/// What goes wrong in a trace, from which window on, in which cohort.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Treatment's negative-review rate × this.
    NegativeReviews(f64),
    /// Treatment's CSAT lower by this much.
    CsatDrop(f64),
    /// Treatment's checkout error rate exactly this.
    ErrorRate(f64),
}

#[derive(Clone, Copy)]
struct Trace {
    windows: i64,
    fault: Fault,
    onset: i64,
    /// Index into COHORTS of the cohort the fault hits.
    cohort: usize,
    /// Expected reviews per arm and window (600 for the power case).
    reviews: f64,
}

/// One rollout's per-seed world: base rates vary between rollouts.
struct World {
    neg: f64,
    err: f64,
    conv: f64,
}

fn signals(trace: &Trace, rng: &mut StdRng) -> Vec<Signal> {
    let gate = GateKey::try_from("checkout-v2").expect("gate key");
    let name = |n: &str| MetricName::try_from(n).expect("metric name");
    let world = World {
        neg: rng.gen_range(0.06..0.10),
        err: rng.gen_range(0.002..0.006),
        conv: rng.gen_range(0.03..0.06),
    };
    let mut out = Vec::new();
    for w in 0..trace.windows {
        let base = START + w * WINDOW_MS;
        let at = |frac: f64| base + (frac * WINDOW_MS as f64) as i64;
        for (ci, cohort) in COHORTS.iter().enumerate() {
            let cohort = CohortName::try_from(*cohort).expect("cohort");
            // Units per window: reviews/0.3 per arm on average, split Binomial(N, ½).
            let units = poisson(rng, 2.0 * trace.reviews / 0.3);
            let treated = binomial(rng, units, 0.5);
            for arm in [Arm::Treatment, Arm::Control] {
                let n_arm = if arm == Arm::Treatment {
                    treated
                } else {
                    units - treated
                };
                let hit = arm == Arm::Treatment && ci == trace.cohort && w >= trace.onset;
                let fault = if hit { trace.fault } else { Fault::None };
                let mut push = |metric: &str, frac: f64, measurement: Measurement| {
                    out.push(Signal {
                        gate: gate.clone(),
                        metric: name(metric),
                        cohort: cohort.clone(),
                        arm,
                        at: at(frac),
                        measurement,
                    });
                };
                push(
                    "conversion",
                    0.9,
                    Measurement::Rate {
                        events: binomial(rng, n_arm, world.conv),
                        trials: n_arm.max(1),
                    },
                );
                // Reviews: 0.3 per unit, negative with the world's rate, sent in 3 batches.
                let reviews = binomial(rng, n_arm, 0.3);
                let neg_p = match fault {
                    Fault::NegativeReviews(lift) => world.neg * lift,
                    _ => world.neg,
                };
                for part in 0..3u64 {
                    let trials = reviews / 3 + u64::from(part < reviews % 3);
                    if trials == 0 {
                        continue;
                    }
                    push(
                        "negative_review_rate",
                        (part as f64 + 0.5) / 3.0,
                        Measurement::Rate {
                            events: binomial(rng, trials, neg_p),
                            trials,
                        },
                    );
                }
                // CSAT: 6% of units answer, 1–5.
                let answers = binomial(rng, n_arm, 0.06).max(2);
                let drop = match fault {
                    Fault::CsatDrop(d) => d,
                    _ => 0.0,
                };
                let (mut sum, mut sum_sq) = (0.0, 0.0);
                for _ in 0..answers {
                    let x = likert(rng, drop);
                    sum += x;
                    sum_sq += x * x;
                }
                push(
                    "csat",
                    0.6,
                    Measurement::Moments {
                        n: answers,
                        sum,
                        sum_sq,
                    },
                );
                // Requests: overdispersed, about 5 per unit.
                let requests = (0..n_arm.min(4000))
                    .map(|_| if rng.gen::<f64>() < 0.2 { 15 } else { 2 })
                    .sum::<u64>()
                    .max(1);
                let err_p = match fault {
                    Fault::ErrorRate(p) => p,
                    _ => world.err,
                };
                push(
                    "checkout_error_rate",
                    0.5,
                    Measurement::Rate {
                        events: binomial(rng, requests, err_p),
                        trials: requests,
                    },
                );
                // Scored reviews: 2% of units; "broken" in 0.5% of them in both arms.
                let scored = binomial(rng, n_arm, 0.02);
                for i in 0..scored {
                    let value = (0.25 + 0.45 * normal(rng)).clamp(-1.0, 1.0);
                    let confidence = (0.9 + 0.05 * normal(rng)).clamp(0.0, 1.0);
                    let mut topics = Vec::new();
                    if rng.gen::<f64>() < 0.005 {
                        topics.push("broken".to_owned());
                    }
                    if value < -0.3 {
                        topics.push("slow".to_owned());
                    }
                    push(
                        "review_sentiment",
                        (i as f64 + 0.5) / scored as f64,
                        Measurement::Observation {
                            value: (value * 1000.0).round() / 1000.0,
                            confidence: Some(confidence),
                            topics,
                        },
                    );
                }
            }
        }
    }
    out
}

fn alarm(v: Verdict) -> bool {
    matches!(v, Verdict::Hold | Verdict::Rollback | Verdict::RollbackGate)
}

/// The first window (0-based) in which a cohort was held or rolled back.
fn first_alarm(report: &BacktestReport, cohort: &CohortName) -> Option<i64> {
    report
        .timeline(cohort)
        .find(|d| alarm(d.verdict))
        .map(|d| (d.window.start - START) / WINDOW_MS)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

fn run(contract: &Contract, trace: Trace, rollouts: u64, salt: u64) -> Vec<BacktestReport> {
    (0..rollouts)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(SEED ^ (salt << 32) ^ i);
            backtest(contract, &signals(&trace, &mut rng))
        })
        .collect()
}

struct Delays {
    within: Vec<(i64, u64)>,
    median: String,
    runs: u64,
}

fn delays(reports: &[BacktestReport], trace: Trace, marks: &[i64]) -> Delays {
    let cohort = CohortName::try_from(COHORTS[trace.cohort]).expect("cohort");
    let mut found: Vec<i64> = Vec::new();
    let mut early = 0;
    for r in reports {
        match first_alarm(r, &cohort) {
            Some(w) if w >= trace.onset => found.push(w - trace.onset + 1),
            Some(_) => early += 1,
            None => {}
        }
    }
    found.sort_unstable();
    let within = marks
        .iter()
        .map(|&m| (m, found.iter().filter(|&&d| d <= m).count() as u64))
        .collect();
    let median = if found.len() * 2 > reports.len() {
        found[reports.len() / 2 - (reports.len() - found.len()).min(reports.len() / 2)].to_string()
    } else {
        "> horizon".to_owned()
    };
    if early > 0 {
        eprintln!("note: {early} rollouts alarmed before the onset");
    }
    Delays {
        within,
        median,
        runs: reports.len() as u64,
    }
}

/// Power of the one-sided fixed-horizon z test at level `alpha` after k windows of the
/// effect, by the normal approximation: the best any test can do at that sample size.
fn oracle(delta: f64, var_per_window: f64, k: i64, alpha: f64) -> f64 {
    let z = normal_quantile(1.0 - alpha).unwrap_or(f64::INFINITY);
    let mean = delta / (var_per_window / k as f64).sqrt();
    0.5 * statrs::function::erf::erfc(-(mean - z) / std::f64::consts::SQRT_2)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let rollouts: u64 = arg("--rollouts").map_or(Ok(1000), |s| s.parse())?;
    let out_path = arg("--out").unwrap_or_else(|| "docs/engine-report.md".to_owned());
    let c = contract();
    let budget = Budget::of(&c);
    let cohorts: Vec<CohortName> = COHORTS
        .iter()
        .map(|n| CohortName::try_from(*n).expect("cohort"))
        .collect();
    let mut doc = String::new();
    writeln!(doc, "# Engine simulation report\n")?;
    writeln!(
        doc,
        "Generated by `cargo run --release --example simulate -- --rollouts {rollouts}` (seed {SEED}); \
         the generator and contract are described in `examples/simulate.rs`. Gate-level α = {}, \
         {} cohorts, {} tests per cohort: α per test {:.2e}; restart spans at {:.2e}, \
         change-detection spans at {:.2e}; SRM {:.2e} per cohort and restart.\n",
        c.alpha,
        cohorts.len(),
        budget.tests,
        budget.test,
        budget.restart_span(budget.test),
        budget.grid_span(budget.test),
        budget.srm,
    )?;

    // A/A.
    let aa = Trace {
        windows: 48,
        fault: Fault::None,
        onset: i64::MAX,
        cohort: 0,
        reviews: 600.0,
    };
    let reports = run(&c, aa, rollouts, 1);
    let (mut gate_any, mut gate_srm, mut gate_slow, mut gate_thin) = (0u64, 0u64, 0u64, 0u64);
    let (mut holds, mut rollbacks, mut reviews) = (0u64, 0u64, 0u64);
    for r in &reports {
        let mut any = false;
        let mut srm = false;
        let mut slow = false;
        let mut thin = false;
        for cohort in &cohorts {
            for d in r.timeline(cohort) {
                match d.verdict {
                    Verdict::Hold => {
                        any = true;
                        holds += 1;
                    }
                    Verdict::Rollback | Verdict::RollbackGate => {
                        any = true;
                        rollbacks += 1;
                    }
                    Verdict::ManualReview => {
                        any = true;
                        reviews += 1;
                        srm |= d.reason.contains("sample-ratio");
                        thin |= !d.reason.contains("sample-ratio");
                        if std::env::var("SIMULATE_VERBOSE").is_ok() {
                            eprintln!("manual review: {}", d.reason);
                        }
                    }
                    Verdict::Slow => slow = true,
                    _ => {}
                }
            }
        }
        gate_any += u64::from(any);
        gate_srm += u64::from(srm);
        gate_slow += u64::from(slow);
        gate_thin += u64::from(thin);
    }
    let n = reports.len() as u64;
    writeln!(doc, "## A/A: {n} rollouts × 48 windows, two cohorts\n")?;
    writeln!(doc, "| per gate | share | target |\n| --- | --- | --- |")?;
    writeln!(
        doc,
        "| any stop, rollback, kill or manual review | {} | ≤ {} |",
        pct(gate_any, n),
        c.alpha
    )?;
    writeln!(
        doc,
        "| manual review from SRM | {} | ≤ 1% |",
        pct(gate_srm, n)
    )?;
    writeln!(
        doc,
        "| manual review for another reason (thin or stale data) | {} | - |",
        pct(gate_thin, n)
    )?;
    writeln!(
        doc,
        "| slowed (watch zone) at least once | {} | - |",
        pct(gate_slow, n)
    )?;
    writeln!(
        doc,
        "\nCounts over all gates: {holds} holds, {rollbacks} rollbacks, {reviews} manual reviews.\n"
    )?;

    // Power: negative reviews +30% from window 4 in mobile.
    let neg = Trace {
        windows: 24,
        fault: Fault::NegativeReviews(1.3),
        onset: 4,
        cohort: 0,
        reviews: 600.0,
    };
    let reports = run(&c, neg, rollouts, 2);
    let d = delays(&reports, neg, &[4, 6, 8, 12, 20]);
    writeln!(
        doc,
        "## Power: negative-review rate +30% in mobile from window 5 (600 reviews per arm and window)\n"
    )?;
    writeln!(doc, "Stopped (held or rolled back) within k windows of the onset, {} rollouts; median delay {} windows.\n", d.runs, d.median)?;
    writeln!(doc, "| k | rampart | one-sided fixed-horizon z at α_test (the limit) | target |\n| --- | --- | --- | --- |")?;
    let base = 0.08;
    let var = (base * (1.0 - base) + 1.3 * base * (1.0 - 1.3 * base)) / 600.0;
    for (k, hits) in &d.within {
        let target = match k {
            6 => "≥ 90%",
            12 => "≥ 99%",
            _ => "",
        };
        writeln!(
            doc,
            "| {k} | {} | {:.1}% | {target} |",
            pct(*hits, d.runs),
            100.0 * oracle(0.3 * base, var, *k, budget.test)
        )?;
    }

    // CSAT drop of 1.5× the stop threshold, beginning mid-rollout in desktop.
    let csat = Trace {
        windows: 24,
        fault: Fault::CsatDrop(0.3),
        onset: 8,
        cohort: 1,
        reviews: 600.0,
    };
    let reports = run(&c, csat, rollouts, 3);
    let d = delays(&reports, csat, &[2, 4, 8]);
    writeln!(doc, "\n## Power: CSAT −0.3 (1.5× the stop threshold) in desktop from window 9, while it waits at 50%\n")?;
    writeln!(doc, "Median delay {} windows.\n\n| k | stopped within k windows | target |\n| --- | --- | --- |", d.median)?;
    for (k, hits) in &d.within {
        let target = if *k == 4 { "≥ 90%" } else { "" };
        writeln!(doc, "| {k} | {} | {target} |", pct(*hits, d.runs))?;
    }

    // Treatment exactly at its kill ceiling.
    let ceiling = Trace {
        windows: 96,
        fault: Fault::ErrorRate(0.02),
        onset: 0,
        cohort: 0,
        reviews: 600.0,
    };
    let reports = run(&c, ceiling, rollouts.min(500), 4);
    let mobile = &cohorts[0];
    let rolled = reports
        .iter()
        .filter(|r| {
            r.timeline(mobile)
                .any(|d| matches!(d.verdict, Verdict::Rollback | Verdict::RollbackGate))
        })
        .count() as u64;
    writeln!(
        doc,
        "\n## Treatment error rate exactly at its 2% kill ceiling, 96 windows\n"
    )?;
    writeln!(
        doc,
        "Rolled back in {} of {} rollouts (target ≤ {}).",
        pct(rolled, reports.len() as u64),
        reports.len(),
        c.alpha
    )?;
    std::fs::write(&out_path, &doc)?;
    print!("{doc}");
    Ok(())
}
