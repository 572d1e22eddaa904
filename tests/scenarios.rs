//! Every scenario of rampart's own generator (`rampart simulate --list`, `src/scenario.rs`)
//! ends as its description says for at least 20 of the seeds 1..=22, replayed through the
//! backtester with the default contract `examples/checkout-v2.yaml`; so does every scenario
//! of another generator (the original `gen.py` of rampart's design) when one is named.
//!
//! Why not all 22: the engine's tests control false alarms at the contract's alpha (5% per
//! cohort and rollout), not at zero, so a healthy trace can — rarely, and within alpha — be
//! stopped by chance (healthy seed 6 is: a 3.8-sigma CSAT gap between identical arms in
//! mobile). Two misses in 22 is the tolerance; every failure is printed. The measured false
//! alarm rate is in `docs/engine-report.md`.
//!
//! That generator's traces come from the script `RAMPART_SCENARIO_GEN` names, for every seed,
//! when it and python3 are found; otherwise from its committed seed-1 traces in
//! `tests/data/scenarios/` (regenerated with `tools/scenario_traces.sh path/to/gen.py`).

use std::path::PathBuf;
use std::process::Command;

use rampart::engine::backtest::{backtest_arrivals, parse_arrivals, Arrival, BacktestReport};
use rampart::engine::{CohortStatus, Contract, Verdict};
use rampart::ids::{CohortName, GateKey};
use rampart::scenario::{self, Scenario};

const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");
const SEEDS: u64 = 22;
/// Seeds that must end as described, per source.
const MUST_PASS: usize = 20;
/// Traces by seed.
type Traces = Vec<(u64, Vec<Arrival>)>;

/// The scenarios the shared generator has.
const SHARED: [&str; 8] = [
    "healthy",
    "regression-mobile",
    "aa-low-traffic",
    "classifier-drift",
    "stale-pipeline",
    "severe-topic",
    "csat-drop",
    "error-spike",
];
/// Windows of rampart's own traces (4 hours of 15 minutes).
const WINDOWS: i64 = 16;
/// 2026-11-21T10:00:00Z.
const START: i64 = 1_763_719_200_000;

fn generator() -> Option<PathBuf> {
    // Another generator's traces, when one is named (the committed seed-1 traces otherwise).
    let path = PathBuf::from(std::env::var_os("RAMPART_SCENARIO_GEN")?);
    let works = path.exists()
        && Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    works.then_some(path)
}

/// The shared generator's traces of a scenario it knows, or its committed seed-1 trace.
fn shared_traces(scenario: &str) -> Traces {
    if !SHARED.contains(&scenario) {
        return Vec::new();
    }
    let parse = |text: &str| {
        let (arrivals, errors) = parse_arrivals(text);
        assert!(errors.is_empty(), "{scenario}: {errors:?}");
        arrivals
    };
    if let Some(gen) = generator() {
        return (1..=SEEDS)
            .map(|seed| {
                let out = Command::new("python3")
                    .arg(&gen)
                    .arg(scenario)
                    .args(["--seed", &seed.to_string()])
                    .output()
                    .expect("run the scenario generator");
                assert!(
                    out.status.success(),
                    "gen.py {scenario} --seed {seed} failed"
                );
                (
                    seed,
                    parse(&String::from_utf8(out.stdout).expect("utf-8 trace")),
                )
            })
            .collect();
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/scenarios/{scenario}-seed1.jsonl"));
    match std::fs::read_to_string(path) {
        Ok(text) => vec![(1, parse(&text))],
        Err(_) => Vec::new(),
    }
}

/// Every source of traces for a scenario: rampart's own generator (`rampart simulate`) for
/// seeds 1..=22, and the shared generator's (when present) for the scenarios it has.
fn sources(scenario: &str) -> Vec<(String, Traces)> {
    let own = Scenario::from_name(scenario).map(|s| {
        let gate = GateKey::try_from("checkout-v2").expect("gate");
        (1..=SEEDS)
            .map(|seed| {
                // A regression from window 10 is given 14 windows: the engine's detection
                // delay for +60% is several windows (docs/engine-report.md).
                let windows = if s == Scenario::LateRegression {
                    24
                } else {
                    WINDOWS
                };
                let trace = scenario::trace(s, seed, windows, START, 15 * 60_000, gate.clone());
                (seed, trace)
            })
            .collect::<Vec<_>>()
    });
    let mut out = Vec::new();
    if let Some(own) = own {
        out.push(("rampart simulate".to_owned(), own));
    }
    let shared = shared_traces(scenario);
    if !shared.is_empty() {
        out.push(("gen.py".to_owned(), shared));
    }
    assert!(!out.is_empty(), "no trace of {scenario}");
    out
}

fn run(scenario: &str, check: impl Fn(&BacktestReport) -> Result<(), String>) {
    let contract = Contract::from_yaml(CONTRACT).expect("default contract");
    let mut misses = Vec::new();
    for (source, traces) in sources(scenario) {
        let runs = traces.len();
        let mut failures = Vec::new();
        for (seed, arrivals) in traces {
            let report = backtest_arrivals(&contract, &arrivals);
            let unexpected = report.skipped.total() - report.skipped.late;
            assert_eq!(
                unexpected, 0,
                "{source} {scenario} seed {seed}: {:?}",
                report.skipped
            );
            if let Err(why) = check(&report) {
                failures.push(format!("{source} seed {seed}: {why}"));
            }
        }
        for f in &failures {
            eprintln!("{scenario}: {f}");
        }
        let needed = MUST_PASS.min(runs);
        if runs - failures.len() < needed {
            misses.push(format!(
                "{source}: {} of {runs} seeds as described, need {needed}:\n{}",
                runs - failures.len(),
                failures.join("\n")
            ));
        }
    }
    assert!(misses.is_empty(), "{scenario}: {}", misses.join("\n"));
}

fn cohort(name: &str) -> CohortName {
    CohortName::try_from(name).unwrap()
}

fn verdicts(r: &BacktestReport, c: &CohortName) -> Vec<Verdict> {
    r.timeline(c).map(|d| d.verdict).collect()
}

fn max_exposure(r: &BacktestReport, c: &CohortName) -> f64 {
    r.timeline(c).map(|d| d.to_exposure).fold(0.0, f64::max)
}

fn status(r: &BacktestReport, c: &CohortName) -> CohortStatus {
    r.final_states[c].status
}

fn reason_of(r: &BacktestReport, c: &CohortName, v: Verdict) -> String {
    r.timeline(c)
        .find(|d| d.verdict == v)
        .map(|d| d.reason.clone())
        .unwrap_or_default()
}

fn both() -> [CohortName; 2] {
    [cohort("mobile"), cohort("desktop")]
}

const ALARMS: [Verdict; 4] = [
    Verdict::Rollback,
    Verdict::RollbackGate,
    Verdict::Hold,
    Verdict::ManualReview,
];

#[test]
fn healthy_expands_stage_by_stage_and_never_rolls_back() {
    run("healthy", |r| {
        for c in both() {
            let v = verdicts(r, &c);
            if let Some(bad) = v.iter().find(|v| ALARMS.contains(v)) {
                return Err(format!("{c} got {bad:?}"));
            }
            if max_exposure(r, &c) < 50.0 {
                return Err(format!("{c} only reached {}%", max_exposure(r, &c)));
            }
        }
        if r.kill_switch {
            return Err("kill switch on".into());
        }
        Ok(())
    });
}

#[test]
fn regression_in_mobile_stops_mobile_and_keeps_desktop_ramping() {
    run("regression-mobile", |r| {
        let (mobile, desktop) = (cohort("mobile"), cohort("desktop"));
        if !matches!(
            status(r, &mobile),
            CohortStatus::Held | CohortStatus::RolledBack
        ) {
            return Err(format!("mobile ended {:?}", status(r, &mobile)));
        }
        let reason = r
            .timeline(&mobile)
            .find(|d| matches!(d.verdict, Verdict::Hold | Verdict::Rollback))
            .map(|d| d.reason.clone())
            .unwrap_or_default();
        if !reason.contains("negative review rate") {
            return Err(format!("mobile stopped for another reason: {reason}"));
        }
        if let Some(bad) = verdicts(r, &desktop).iter().find(|v| ALARMS.contains(v)) {
            return Err(format!("desktop got {bad:?}"));
        }
        // Desktop still serves, so no decision shows the gate's kill switch on (a rollback of
        // mobile alone leaves it off, as in the cluster).
        if let Some(d) = r.decisions.iter().find(|d| d.kill_switch) {
            return Err(format!(
                "kill switch on after {:?} of {} in window {}",
                d.verdict, d.cohort, d.window.start
            ));
        }
        if max_exposure(r, &desktop) < 50.0 {
            return Err(format!(
                "desktop only reached {}%",
                max_exposure(r, &desktop)
            ));
        }
        Ok(())
    });
}

#[test]
fn low_traffic_aa_is_unreliable_never_expands_never_rolls_back() {
    run("aa-low-traffic", |r| {
        for c in both() {
            let v = verdicts(r, &c);
            if v.iter().any(|v| {
                matches!(
                    v,
                    Verdict::Expand | Verdict::Rollback | Verdict::RollbackGate
                )
            }) {
                return Err(format!("{c}: {v:?}"));
            }
            if status(r, &c) != CohortStatus::ManualReview {
                return Err(format!("{c} ended {:?}", status(r, &c)));
            }
            if !reason_of(r, &c, Verdict::ManualReview).contains("too few samples") {
                return Err(format!("{c}: {}", reason_of(r, &c, Verdict::ManualReview)));
            }
        }
        Ok(())
    });
}

fn ends_in_manual_review_because_of(r: &BacktestReport, metric: &str) -> Result<(), String> {
    for c in both() {
        let v = verdicts(r, &c);
        if v.iter()
            .any(|v| matches!(v, Verdict::Rollback | Verdict::RollbackGate | Verdict::Hold))
        {
            return Err(format!("{c}: {v:?}"));
        }
        if status(r, &c) != CohortStatus::ManualReview {
            return Err(format!("{c} ended {:?}", status(r, &c)));
        }
        let why = reason_of(r, &c, Verdict::ManualReview);
        if !why.contains(metric) {
            return Err(format!("{c}: {why}"));
        }
    }
    Ok(())
}

#[test]
fn classifier_drift_goes_to_manual_review_not_rollback() {
    run("classifier-drift", |r| {
        ends_in_manual_review_because_of(r, "review sentiment unreliable")
    });
}

#[test]
fn stale_pipeline_goes_to_manual_review() {
    run("stale-pipeline", |r| {
        ends_in_manual_review_because_of(r, "negative review rate unreliable")
    });
}

fn both_held_because_of(r: &BacktestReport, words: &str) -> Result<(), String> {
    for c in both() {
        if status(r, &c) != CohortStatus::Held {
            return Err(format!(
                "{c} ended {:?}: {:?}",
                status(r, &c),
                verdicts(r, &c)
            ));
        }
        let why = reason_of(r, &c, Verdict::Hold);
        if !why.contains(words) {
            return Err(format!("{c}: {why}"));
        }
    }
    Ok(())
}

#[test]
fn severe_topic_stops() {
    run("severe-topic", |r| both_held_because_of(r, "charged twice"));
}

#[test]
fn csat_drop_stops() {
    run("csat-drop", |r| both_held_because_of(r, "csat"));
}

#[test]
fn error_spike_kills_on_the_ceiling() {
    run("error-spike", |r| {
        if !r.kill_switch {
            return Err("kill switch off".into());
        }
        let rollback = r
            .decisions
            .iter()
            .find(|d| d.verdict == Verdict::Rollback)
            .ok_or("no rollback")?;
        if !rollback.reason.contains("checkout error rate") || !rollback.reason.contains("ceiling")
        {
            return Err(rollback.reason.clone());
        }
        Ok(())
    });
}

#[test]
fn a_regression_that_begins_mid_rollout_stops_that_cohort() {
    run("late-regression", |r| {
        let (mobile, desktop) = (cohort("mobile"), cohort("desktop"));
        if !matches!(
            status(r, &desktop),
            CohortStatus::Held | CohortStatus::RolledBack
        ) {
            return Err(format!("desktop ended {:?}", status(r, &desktop)));
        }
        if let Some(bad) = verdicts(r, &mobile).iter().find(|v| ALARMS.contains(v)) {
            return Err(format!("mobile got {bad:?}"));
        }
        Ok(())
    });
}

#[test]
fn late_arrivals_are_refused_and_thin_windows_go_to_manual_review() {
    run("late-arrivals", |r| {
        if r.skipped.late == 0 {
            return Err("no line counted late".into());
        }
        for c in both() {
            for v in verdicts(r, &c) {
                match v {
                    Verdict::Hold | Verdict::Rollback | Verdict::RollbackGate => {
                        return Err(format!("{c} got {v:?}: {}", reason_of(r, &c, v)));
                    }
                    Verdict::ManualReview if !reason_of(r, &c, v).contains("too few samples") => {
                        return Err(format!("{c}: {}", reason_of(r, &c, v)));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    });
}
