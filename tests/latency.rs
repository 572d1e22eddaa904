//! The latency metric kind: timings travel as mergeable sketches; rules compare a quantile
//! between the arms or against a ceiling.

use rampart::engine::backtest::parse_signal_lines;
use rampart::engine::signal::Measurement;
use rampart::engine::sketch::{bucket, Sketch};
use rampart::engine::window::{ArmAggregate, MetricWindow};
use rampart::engine::{
    evaluate, CohortState, CohortWindow, Contract, EvaluationInput, Verdict, Window, Zone,
};
use rampart::ids::{CohortName, MetricName};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const W: i64 = 15 * 60 * 1000;
const T0: i64 = 1_795_255_200_000;

const CONTRACT: &str = r#"
gate: search-v2
variants: { treatment: v2, fallback: v1 }
ladder: [10, 50, 100]
stage_min_duration: 15m
window: 15m
cohorts: [all]
metrics:
  - name: search_latency
    kind: latency
    quantile: 0.99
    better: lower
    min_samples: 500
    stop: { relative: 10% }
    kill: { above: 2.0 }
"#;

/// Lognormal timings (median `median` seconds), `n` of them.
fn timings(rng: &mut StdRng, n: usize, median: f64) -> Sketch {
    let mut s = Sketch::default();
    for _ in 0..n {
        let u: f64 = 1.0 - rng.gen::<f64>();
        let v: f64 = rng.gen::<f64>();
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        s.add(median * (0.5 * z).exp());
    }
    s
}

fn window(start: i64, t: Sketch, c: Sketch) -> CohortWindow {
    let mut w = CohortWindow::new(Window {
        start,
        end: start + W,
    });
    let agg = |sketch: Sketch| ArmAggregate {
        signals: 1,
        newest_at: Some(start + W - 60_000),
        sketch,
        ..ArmAggregate::default()
    };
    w.metrics.insert(
        MetricName::try_from("search_latency").unwrap(),
        MetricWindow {
            treatment: agg(t),
            control: agg(c),
        },
    );
    w
}

fn judge(c: &Contract, history: &[CohortWindow], now: &CohortWindow) -> rampart::engine::Judgement {
    let cohort = CohortName::try_from("all").unwrap();
    let mut s = CohortState::start(c, T0 - 10 * W);
    s.first_window = history.first().and_then(|w| w.window).map(|w| w.start);
    evaluate(EvaluationInput {
        contract: c,
        cohort: &cohort,
        window: now.window.unwrap(),
        current: now,
        history,
        state: &s,
        kill_switch: false,
    })
}

#[test]
fn signal_lines_carry_values_or_a_sketch_and_bad_ones_name_the_field() {
    let k = bucket(0.25);
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        r#"{"gate":"search-v2","metric":"search_latency","arm":"treatment","at":"2026-11-21T10:01:00Z","values":[0.2,0.25,0.3]}"#,
        format_args!(
            r#"{{"gate":"search-v2","metric":"search_latency","arm":"control","at":"2026-11-21T10:01:00Z","sketch":{{"relative_accuracy":0.01,"bins":{{"{k}":5}},"zeros":1}}}}"#
        ),
        r#"{"gate":"search-v2","metric":"search_latency","arm":"control","at":"2026-11-21T10:01:00Z","values":[0.2,-1.0]}"#,
        r#"{"gate":"search-v2","metric":"search_latency","arm":"control","at":"2026-11-21T10:01:00Z","sketch":{"relative_accuracy":0.02,"bins":{"3":1}}}"#,
    );
    let (signals, errors) = parse_signal_lines(&text);
    assert_eq!(signals.len(), 2, "{errors:?}");
    let Measurement::Sketch(s) = &signals[1].measurement else {
        panic!("a sketch")
    };
    assert_eq!(s.count(), 6);
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].1.field, "values[1]");
    assert_eq!(errors[1].1.field, "sketch.relative_accuracy");
}

#[test]
fn same_timings_in_both_arms_expand_and_a_slower_p99_stops() {
    let c = Contract::from_yaml(CONTRACT).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let history: Vec<CohortWindow> = (1..=3)
        .rev()
        .map(|i| {
            window(
                T0 - i * W,
                timings(&mut rng, 3000, 0.2),
                timings(&mut rng, 3000, 0.2),
            )
        })
        .collect();
    let now = window(
        T0,
        timings(&mut rng, 3000, 0.2),
        timings(&mut rng, 3000, 0.2),
    );
    let j = judge(&c, &history, &now);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    let e = &j.evidence[0];
    assert_eq!(e.figures.quantile, Some(0.99));
    // p99 of a lognormal(σ = 0.5) with median 0.2: 0.2·e^(0.5·2.326) ≈ 0.64.
    let p99 = e.figures.treatment.unwrap();
    assert!((p99 - 0.64).abs() < 0.06, "{p99}");

    // The treatment 30% slower everywhere: p99 up 30%, stopped.
    let slow: Vec<CohortWindow> = (1..=3)
        .rev()
        .map(|i| {
            window(
                T0 - i * W,
                timings(&mut rng, 3000, 0.26),
                timings(&mut rng, 3000, 0.2),
            )
        })
        .collect();
    let now = window(
        T0,
        timings(&mut rng, 3000, 0.26),
        timings(&mut rng, 3000, 0.2),
    );
    let j = judge(&c, &slow, &now);
    assert_eq!(j.verdict, Verdict::Hold, "{}", j.reason);
    let e = &j.evidence[0];
    assert_eq!(e.zone, Zone::Stop);
    let (lo, _) = e.figures.exceedance_interval.unwrap();
    assert!(
        lo > 0.0,
        "the decided interval lies on the harmful side: {e:?}"
    );
    assert!(j.reason.contains("p99"), "{}", j.reason);
}

#[test]
fn a_p99_above_its_ceiling_kills_even_when_control_is_as_slow() {
    let c = Contract::from_yaml(CONTRACT).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let now = window(
        T0,
        timings(&mut rng, 3000, 1.2),
        timings(&mut rng, 3000, 1.2),
    );
    let j = judge(&c, &[], &now);
    assert_eq!(j.verdict, Verdict::Rollback, "{}", j.reason);
    assert!(j.evidence[0].figures.ceiling_e_value.is_some());
}

#[test]
fn a_latency_metric_must_name_its_quantile() {
    let err = Contract::from_yaml(&CONTRACT.replace("    quantile: 0.99\n", "")).unwrap_err();
    assert!(err.to_string().contains("metrics[0].quantile"), "{err}");
    let err =
        Contract::from_yaml(&CONTRACT.replace("quantile: 0.99", "quantile: 1.5")).unwrap_err();
    assert!(err.to_string().contains("not in (0, 1)"), "{err}");
}

#[test]
fn an_open_window_kills_early_only_on_a_met_kill_rule_and_only_with_sequential_tests() {
    use rampart::engine::early_kill;
    let c = Contract::from_yaml(CONTRACT).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let cohort = CohortName::try_from("all").unwrap();
    let s = CohortState::start(&c, T0);
    let input = |c: &'_ Contract, w: &'_ CohortWindow| {
        early_kill(EvaluationInput {
            contract: c,
            cohort: &cohort,
            window: w.window.unwrap(),
            current: w,
            history: &[],
            state: &s,
            kill_switch: false,
        })
    };
    let healthy = window(
        T0,
        timings(&mut rng, 3000, 0.2),
        timings(&mut rng, 3000, 0.2),
    );
    assert!(input(&c, &healthy).is_none());
    let breach = window(
        T0,
        timings(&mut rng, 3000, 1.2),
        timings(&mut rng, 3000, 0.2),
    );
    let j = input(&c, &breach).expect("a p99 far above its ceiling kills early");
    assert_eq!(j.verdict, Verdict::Rollback);
    let fixed = Contract::from_yaml(&format!("{CONTRACT}test: fixed\n")).unwrap();
    assert!(
        input(&fixed, &breach).is_none(),
        "fixed tests judge closed windows only"
    );
}
