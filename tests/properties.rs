//! Property tests of the engine (proptest): determinism, unreliable evidence never expands,
//! the kill switch is never cleared and freezes the cohort, evidence holds only finite
//! numbers, and the backtest decides each cohort and window exactly once.

use proptest::prelude::*;
use rampart::engine::backtest::backtest;
use rampart::engine::policy::Streak;
use rampart::engine::signal::{Arm, Measurement, Signal};
use rampart::engine::window::{ArmAggregate, MetricWindow};
use rampart::engine::{
    evaluate, CohortState, CohortStatus, CohortWindow, Contract, EvaluationInput, Verdict, Window,
    Zone,
};
use rampart::ids::{CohortName, GateKey};

const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");
const W: i64 = 15 * 60 * 1000;
const T0: i64 = 1_795_255_200_000;

fn contract() -> Contract {
    Contract::from_yaml(CONTRACT).unwrap()
}

fn rate_arm() -> impl Strategy<Value = ArmAggregate> {
    (0u64..1500, 0.0f64..0.3, proptest::option::of(0i64..W)).prop_map(|(trials, p, at)| {
        let events = ((trials as f64) * p) as u64;
        ArmAggregate {
            signals: u64::from(trials > 0),
            events,
            trials,
            newest_at: at.map(|a| T0 + a),
            ..ArmAggregate::default()
        }
    })
}

fn moments_arm() -> impl Strategy<Value = ArmAggregate> {
    (
        0u64..300,
        -1.0f64..5.0,
        0.0f64..2.0,
        0u64..30,
        proptest::option::of(0i64..W),
    )
        .prop_map(|(n, mean, var, low, at)| {
            let nf = n as f64;
            ArmAggregate {
                signals: n + low,
                n,
                sum: nf * mean,
                sum_sq: nf * (mean * mean + var),
                low_confidence: low,
                newest_at: at.map(|a| T0 + a),
                ..ArmAggregate::default()
            }
        })
}

fn cohort_window() -> impl Strategy<Value = CohortWindow> {
    (
        rate_arm(),
        rate_arm(),
        moments_arm(),
        moments_arm(),
        rate_arm(),
        rate_arm(),
        moments_arm(),
        moments_arm(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h)| {
            let c0 = contract();
            let mut w = CohortWindow::new(Window {
                start: T0,
                end: T0 + W,
            });
            let arms = [(a, b), (c, d), (e, f), (g, h)];
            for (spec, (t, c)) in c0.metrics.iter().zip(arms) {
                w.metrics.insert(
                    spec.name.clone(),
                    MetricWindow {
                        treatment: t,
                        control: c,
                    },
                );
            }
            w
        })
}

fn state() -> impl Strategy<Value = CohortState> {
    (
        0usize..6,
        prop::sample::select(vec![
            CohortStatus::Ramping,
            CohortStatus::Slowed,
            CohortStatus::Held,
            CohortStatus::AwaitingApproval,
            CohortStatus::ManualReview,
            CohortStatus::RolledBack,
            CohortStatus::Complete,
        ]),
        0u32..3,
        proptest::option::of(Just(T0 - W)),
    )
        .prop_map(|(stage, status, streak, healthy)| {
            let c = contract();
            let mut s = CohortState::start(&c, T0 - 4 * W);
            s.stage = stage;
            s.exposure = c.ladder[stage];
            s.status = status;
            s.healthy_since = healthy;
            for m in &c.metrics {
                s.streaks.insert(
                    m.name.clone(),
                    Streak {
                        watch: streak,
                        stop: streak,
                        kill: 0,
                    },
                );
            }
            s
        })
}

fn judge(
    c: &Contract,
    current: &CohortWindow,
    history: &[CohortWindow],
    state: &CohortState,
    kill: bool,
) -> rampart::engine::Judgement {
    let cohort = CohortName::try_from("mobile").unwrap();
    evaluate(EvaluationInput {
        contract: c,
        cohort: &cohort,
        window: Window {
            start: T0,
            end: T0 + W,
        },
        current,
        history,
        state,
        kill_switch: kill,
    })
}

fn history(windows: Vec<CohortWindow>) -> Vec<CohortWindow> {
    let n = windows.len() as i64;
    windows
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            let start = T0 - (n - i as i64) * W;
            w.window = Some(Window {
                start,
                end: start + W,
            });
            w
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn same_input_same_judgement(
        current in cohort_window(),
        past in prop::collection::vec(cohort_window(), 0..5),
        s in state(),
        kill in any::<bool>(),
    ) {
        let c = contract();
        let h = history(past);
        prop_assert_eq!(judge(&c, &current, &h, &s, kill), judge(&c, &current, &h, &s, kill));
    }

    #[test]
    fn unreliable_evidence_never_expands(
        current in cohort_window(),
        past in prop::collection::vec(cohort_window(), 0..4),
        s in state(),
    ) {
        let c = contract();
        let j = judge(&c, &current, &history(past), &s, false);
        if j.evidence.iter().any(|e| e.zone == Zone::Unreliable) {
            prop_assert_ne!(j.verdict, Verdict::Expand);
            prop_assert!(j.next.exposure <= s.exposure);
        }
    }

    #[test]
    fn kill_switch_freezes_and_is_never_cleared(
        current in cohort_window(),
        s in state(),
    ) {
        let c = contract();
        let j = judge(&c, &current, &[], &s, true);
        prop_assert_eq!(j.verdict, Verdict::Stay);
        prop_assert!(!j.kill_switch);
        // The rollout does not move; the audit trail (streaks) stays true.
        let n = &j.next;
        prop_assert_eq!((n.stage, n.exposure, n.status, n.stage_since), (s.stage, s.exposure, s.status, s.stage_since));
        prop_assert_eq!((&n.approved_stage, &n.severe_topics_seen, &n.healthy_since), (&s.approved_stage, &s.severe_topics_seen, &s.healthy_since));
        prop_assert_eq!((n.evidence_since, n.restarts), (s.evidence_since, s.restarts));
        prop_assert_eq!(n.last_window, Some(T0));
    }

    #[test]
    fn kill_switch_on_exactly_for_rollbacks_and_evidence_is_finite(
        current in cohort_window(),
        past in prop::collection::vec(cohort_window(), 0..4),
        s in state(),
    ) {
        let c = contract();
        let j = judge(&c, &current, &history(past), &s, false);
        prop_assert_eq!(j.kill_switch, matches!(j.verdict, Verdict::Rollback | Verdict::RollbackGate));
        if s.status == CohortStatus::RolledBack {
            prop_assert_eq!(j.verdict, Verdict::Stay);
        }
        if matches!(s.status, CohortStatus::Held | CohortStatus::ManualReview) {
            prop_assert!(matches!(j.verdict, Verdict::Stay | Verdict::Rollback | Verdict::RollbackGate));
        }
        for e in &j.evidence {
            let numbers = [e.figures.treatment, e.figures.control, e.figures.baseline, e.figures.delta, e.figures.relative, e.figures.p_value,
                e.figures.e_value, e.figures.window_treatment, e.figures.window_control, e.figures.ceiling_p_value,
                e.figures.srm_p_value, e.figures.low_confidence_share, e.figures.alpha];
            for x in numbers.into_iter().flatten() {
                prop_assert!(x.is_finite(), "{:?}", e);
            }
            for (lo, hi) in [e.figures.delta_interval, e.figures.relative_interval, e.figures.treatment_interval].into_iter().flatten() {
                prop_assert!(lo.is_finite() && hi.is_finite(), "{:?}", e);
            }
        }
    }

    #[test]
    fn backtest_decides_each_cohort_and_window_once(
        raw in prop::collection::vec((0i64..(8 * W), 0usize..3, 0usize..4, any::<bool>(), 1u64..400), 1..120),
    ) {
        let c = contract();
        let cohorts = ["mobile", "desktop", "tablet"]; // tablet is not in the contract
        let gate = GateKey::try_from("checkout-v2").unwrap();
        let signals: Vec<Signal> = raw.iter().map(|(at, cohort, metric, treat, n)| {
            let spec = &c.metrics[*metric];
            let measurement = match spec.kind {
                rampart::engine::contract::MetricKind::Rate => Measurement::Rate { events: n / 10, trials: *n },
                rampart::engine::contract::MetricKind::Mean => Measurement::Moments { n: *n, sum: 4.0 * *n as f64, sum_sq: 17.0 * *n as f64 },
                rampart::engine::contract::MetricKind::Observations => Measurement::Observation { value: 0.2, confidence: Some(0.9), topics: vec![] },
                rampart::engine::contract::MetricKind::Latency => Measurement::Sketch(rampart::engine::sketch::Sketch::of_values(&[0.1, 0.2])),
            };
            Signal {
                gate: gate.clone(),
                metric: spec.name.clone(),
                cohort: CohortName::try_from(cohorts[*cohort]).unwrap(),
                arm: if *treat { Arm::Treatment } else { Arm::Control },
                at: T0 + at,
                measurement,
            }
        }).collect();
        let report = backtest(&c, &signals);
        let mut seen = std::collections::BTreeSet::new();
        for d in &report.decisions {
            prop_assert!(seen.insert((d.cohort.clone(), d.window.start)), "twice: {:?}", d.window);
        }
        prop_assert_eq!(report.decisions.len() as u64, report.windows * 2);
        let tablets = raw.iter().filter(|r| r.1 == 2).count() as u64;
        prop_assert_eq!(report.skipped.unknown_cohort, tablets);
        prop_assert_eq!(report.signals_used + report.skipped.total(), raw.len() as u64);
        prop_assert_eq!(&report, &backtest(&c, &signals));
    }
}
