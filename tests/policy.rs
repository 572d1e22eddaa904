//! Table cases of the policy: one behaviour each, named after what it guarantees.

use rampart::engine::window::{ArmAggregate, MetricWindow};
use rampart::engine::{
    evaluate, CohortState, CohortStatus, CohortWindow, Contract, EvaluationInput, Judgement,
    Verdict, Window, Zone,
};
use rampart::ids::{CohortName, MetricName};

const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");
const W: i64 = 15 * 60 * 1000;
const T0: i64 = 1_795_255_200_000;

fn rate(events: u64, trials: u64) -> ArmAggregate {
    ArmAggregate {
        signals: 3,
        events,
        trials,
        newest_at: Some(T0 + W - 60_000),
        ..ArmAggregate::default()
    }
}

fn moments(n: u64, mean: f64, sd: f64) -> ArmAggregate {
    let nf = n as f64;
    ArmAggregate {
        signals: 1,
        n,
        sum: nf * mean,
        sum_sq: (nf - 1.0) * sd * sd + nf * mean * mean,
        newest_at: Some(T0 + W - 60_000),
        ..ArmAggregate::default()
    }
}

/// A healthy window: identical arms for every metric.
fn healthy_window(start: i64) -> CohortWindow {
    let mut w = CohortWindow::new(Window {
        start,
        end: start + W,
    });
    let mut put = |name: &str, t: ArmAggregate, c: ArmAggregate| {
        w.metrics.insert(
            MetricName::try_from(name).unwrap(),
            MetricWindow {
                treatment: t,
                control: c,
            },
        );
    };
    put("negative_review_rate", rate(48, 600), rate(48, 600));
    put("csat", moments(120, 4.1, 0.8), moments(120, 4.1, 0.8));
    put("checkout_error_rate", rate(10, 2400), rate(10, 2400));
    put(
        "review_sentiment",
        moments(24, 0.25, 0.45),
        moments(24, 0.25, 0.45),
    );
    w
}

fn set(w: &mut CohortWindow, name: &str, t: ArmAggregate, c: ArmAggregate) {
    w.metrics.insert(
        MetricName::try_from(name).unwrap(),
        MetricWindow {
            treatment: t,
            control: c,
        },
    );
}

fn run(
    c: &Contract,
    current: &CohortWindow,
    history: &[CohortWindow],
    s: &CohortState,
) -> Judgement {
    let cohort = CohortName::try_from("mobile").unwrap();
    evaluate(EvaluationInput {
        contract: c,
        cohort: &cohort,
        window: current.window.unwrap(),
        current,
        history,
        state: s,
        kill_switch: false,
    })
}

fn contract() -> Contract {
    Contract::from_yaml(CONTRACT).unwrap()
}

#[test]
fn healthy_window_expands_and_records_the_window() {
    let c = contract();
    let s = CohortState::start(&c, T0);
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    assert_eq!(j.next.exposure, 5.0);
    assert_eq!(j.next.stage_since, T0 + W);
    assert_eq!(j.next.last_window, Some(T0));
    assert_eq!(
        j.reason,
        "mobile expanded from 1% to 5%: all 4 metrics healthy"
    );
}

#[test]
fn a_big_regression_rolls_back_with_a_sentence_a_pm_reads() {
    let c = contract();
    let mut s = CohortState::start(&c, T0);
    s.stage = 2;
    s.exposure = 10.0;
    let history: Vec<CohortWindow> = (1..=3)
        .map(|i| {
            let mut w = healthy_window(T0 - i * W);
            set(&mut w, "negative_review_rate", rate(88, 600), rate(48, 600));
            w
        })
        .rev()
        .collect();
    let mut now = healthy_window(T0);
    set(
        &mut now,
        "negative_review_rate",
        rate(88, 600),
        rate(48, 600),
    );
    let j = run(&c, &now, &history, &s);
    assert_eq!(j.verdict, Verdict::Rollback, "{}", j.reason);
    assert!(j.kill_switch);
    assert_eq!(j.next.exposure, 0.0);
    assert!(
        j.reason.starts_with(
            "mobile rolled back from 10% to 0%: negative review rate 14.7% vs 8% in control (+83%, always-valid 98.75% CI"
        ),
        "{}",
        j.reason
    );
    assert!(
        j.reason
            .ends_with("over 4 windows), kill zone for 1 window"),
        "{}",
        j.reason
    );
    let e = &j.evidence[0];
    assert_eq!(e.zone, Zone::Kill);
    assert!(e.e_value.unwrap() > 80.0);
    assert_eq!(e.samples_treatment, 2400);
}

#[test]
fn held_is_sticky_but_a_reliable_kill_still_kills() {
    let c = contract();
    let mut s = CohortState::start(&c, T0);
    s.status = CohortStatus::Held;
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::Stay);
    assert_eq!(j.next.status, CohortStatus::Held);
    let mut spike = healthy_window(T0);
    set(
        &mut spike,
        "checkout_error_rate",
        rate(80, 2400),
        rate(10, 2400),
    );
    let j = run(&c, &spike, &[], &s);
    assert_eq!(j.verdict, Verdict::Rollback, "{}", j.reason);
}

#[test]
fn too_few_samples_go_to_manual_review_or_hold_never_expand() {
    let mut c = contract();
    let s = CohortState::start(&c, T0);
    let mut thin = healthy_window(T0);
    set(&mut thin, "negative_review_rate", rate(3, 40), rate(3, 40));
    let j = run(&c, &thin, &[], &s);
    assert_eq!(j.verdict, Verdict::ManualReview);
    assert_eq!(j.evidence[0].zone, Zone::Unreliable);
    c.on_unreliable = rampart::engine::contract::OnUnreliable::Hold;
    let j = run(&c, &thin, &[], &s);
    assert_eq!(j.verdict, Verdict::Stay);
    assert_eq!(j.next.exposure, 1.0);
    assert!(
        j.reason.contains("holds at 1% without expanding"),
        "{}",
        j.reason
    );
}

#[test]
fn sample_ratio_mismatch_is_unreliable() {
    let c = contract();
    let s = CohortState::start(&c, T0);
    let mut skewed = healthy_window(T0);
    set(
        &mut skewed,
        "negative_review_rate",
        rate(56, 700),
        rate(40, 500),
    );
    let j = run(&c, &skewed, &[], &s);
    assert_eq!(j.verdict, Verdict::ManualReview, "{}", j.reason);
    assert!(j.reason.contains("sample-ratio mismatch"), "{}", j.reason);
}

#[test]
fn next_stage_above_the_limit_waits_for_approval_then_expands() {
    let c = contract();
    let mut s = CohortState::start(&c, T0 - W);
    s.stage = 4; // 50%, the approval limit
    s.exposure = 50.0;
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::AwaitApproval);
    let again = run(&c, &healthy_window(T0), &[], &j.next);
    assert_eq!(again.verdict, Verdict::Stay);
    let mut approved = j.next.clone();
    approved.approved_stage = Some(5);
    let j = run(&c, &healthy_window(T0), &[], &approved);
    assert_eq!(j.verdict, Verdict::Expand);
    assert_eq!(j.next.status, CohortStatus::Complete);
}

#[test]
fn rolling_and_fixed_baselines_judge_without_control_of_the_window() {
    let yaml = CONTRACT.replace("baseline: control", "baseline: { rolling: 1h }");
    let c = Contract::from_yaml(&yaml).unwrap();
    let s = CohortState::start(&c, T0);
    let history: Vec<CohortWindow> = (1..=4).rev().map(|i| healthy_window(T0 - i * W)).collect();
    let j = run(&c, &healthy_window(T0), &history, &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    assert!(j.evidence[0].baseline_source.contains("1h"));
    let yaml = CONTRACT.replace(
        "baseline: control",
        "baseline: { fixed: { negative_review_rate: 0.08, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.25 } }",
    );
    let c = Contract::from_yaml(&yaml).unwrap();
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    assert_eq!(j.evidence[0].baseline, Some(0.08));
}

#[test]
fn a_severe_topic_triggers_once() {
    let c = contract();
    let s = CohortState::start(&c, T0);
    let mut w = healthy_window(T0);
    let name = MetricName::try_from("review_sentiment").unwrap();
    let m = w.metrics.get_mut(&name).unwrap();
    m.treatment.topics.insert("charged twice".into(), 3);
    let j = run(&c, &w, &[], &s);
    assert_eq!(j.verdict, Verdict::Hold, "{}", j.reason);
    assert!(j.reason.contains("charged twice"));
    assert_eq!(j.next.severe_topics_seen, vec!["charged twice".to_owned()]);
    let mut resumed = j.next.clone();
    resumed.status = CohortStatus::Ramping;
    let j = run(&c, &w, &[], &resumed);
    assert_ne!(j.verdict, Verdict::Hold, "{}", j.reason);
}

#[test]
fn gate_wide_rollback_is_its_own_verdict() {
    let yaml = CONTRACT.replace("kill: rollback }", "kill: rollback_gate }");
    let c = Contract::from_yaml(&yaml).unwrap();
    let s = CohortState::start(&c, T0);
    let mut spike = healthy_window(T0);
    set(
        &mut spike,
        "checkout_error_rate",
        rate(80, 2400),
        rate(10, 2400),
    );
    let j = run(&c, &spike, &[], &s);
    assert_eq!(j.verdict, Verdict::RollbackGate);
    assert!(j.kill_switch);
}
