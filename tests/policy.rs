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
            "mobile rolled back from 10% to 0%: negative review rate 14.7% vs 8% in control (+83%, always-valid 99.94% CI"
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
    assert!(e.figures.e_value.unwrap() > 80.0);
    assert_eq!(e.figures.samples_treatment, 2400);
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
    let mut c = contract();
    c.srm = Some(rampart::engine::contract::SrmSpec {
        units: MetricName::try_from("negative_review_rate").unwrap(),
    });
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
    // Checked once per cohort, on the units the contract names: the same skew in another
    // metric's samples is no mismatch.
    let mut other = healthy_window(T0);
    set(
        &mut other,
        "csat",
        moments(140, 4.1, 0.8),
        moments(100, 4.1, 0.8),
    );
    let j = run(&c, &other, &[], &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    // Without `srm`, no check at all.
    let j = run(&contract(), &skewed, &[], &s);
    assert_ne!(j.verdict, Verdict::ManualReview, "{}", j.reason);
}

#[test]
fn a_binomial_split_is_no_sample_ratio_mismatch_but_a_drifting_one_is() {
    let mut c = contract();
    c.srm = Some(rampart::engine::contract::SrmSpec {
        units: MetricName::try_from("negative_review_rate").unwrap(),
    });
    let s = CohortState::start(&c, T0);
    // 12 windows of 1,000 units split 515/485 and the like: chance, not a mismatch.
    let splits = [
        515u64, 489, 502, 497, 520, 480, 505, 511, 494, 508, 499, 503,
    ];
    let history: Vec<CohortWindow> = splits[..11]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut w = healthy_window(T0 - (11 - i as i64) * W);
            set(
                &mut w,
                "negative_review_rate",
                rate(t / 12, *t),
                rate((1000 - t) / 12, 1000 - t),
            );
            w
        })
        .collect();
    let mut now = healthy_window(T0);
    set(
        &mut now,
        "negative_review_rate",
        rate(42, 503),
        rate(41, 497),
    );
    let j = run(&c, &now, &history, &s);
    assert_ne!(j.verdict, Verdict::ManualReview, "{}", j.reason);
    assert!(j.evidence[0].figures.srm_p_value.is_some_and(|p| p > 0.01));
    // A split that drifts to 53/47 over the same windows is caught.
    let drifted: Vec<CohortWindow> = (0..11)
        .map(|i| {
            let mut w = healthy_window(T0 - (11 - i) * W);
            set(&mut w, "negative_review_rate", rate(44, 530), rate(39, 470));
            w
        })
        .collect();
    let j = run(&c, &now, &drifted, &s);
    assert_eq!(j.verdict, Verdict::ManualReview, "{}", j.reason);
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
    assert!(j.evidence[0].figures.baseline_source.contains("1h"));
    let yaml = CONTRACT.replace(
        "baseline: control",
        "baseline: { fixed: { negative_review_rate: 0.08, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.25 } }",
    );
    let c = Contract::from_yaml(&yaml).unwrap();
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    assert_eq!(j.evidence[0].figures.baseline, Some(0.08));
}

#[test]
fn a_rolling_baseline_covers_its_whole_span_beyond_the_sequential_spans() {
    // Two days of 15-minute windows: 192, twice what a sequential span pools.
    let yaml = CONTRACT.replace("baseline: control", "baseline: { rolling: 2d }");
    let c = Contract::from_yaml(&yaml).unwrap();
    assert_eq!((c.rolling_windows(), c.windows_kept()), (192, 193));
    let s = CohortState::start(&c, T0 - 200 * W);
    // Control's negative-review rate was 16% in the older half, 8% in the newer.
    let history: Vec<CohortWindow> = (1..=192)
        .rev()
        .map(|i| {
            let mut w = healthy_window(T0 - i * W);
            if i > 96 {
                set(&mut w, "negative_review_rate", rate(48, 600), rate(96, 600));
            }
            w
        })
        .collect();
    let j = run(&c, &healthy_window(T0), &history, &s);
    let nrr = &j.evidence[0];
    assert!(nrr.figures.baseline_source.contains("2d"), "{nrr:?}");
    let pooled = (96.0 * 96.0 + 96.0 * 48.0) / (192.0 * 600.0);
    let baseline = nrr.figures.baseline.expect("baseline");
    assert!((baseline - pooled).abs() < 1e-12, "{baseline} != {pooled}");

    let yaml = CONTRACT.replace("baseline: control", "baseline: { rolling: 30d }");
    let errors = Contract::from_yaml(&yaml).expect_err("30 days of 15-minute windows");
    assert!(
        errors.to_string().contains("baseline.rolling") && errors.to_string().contains("2880"),
        "{errors}"
    );
}

#[test]
fn a_severe_topic_triggers_once() {
    let c = contract();
    let s = CohortState::start(&c, T0);
    let mut w = healthy_window(T0);
    let name = MetricName::try_from("review_sentiment").unwrap();
    let m = w.metrics.get_mut(&name).unwrap();
    m.treatment.topics.insert("charged twice".into(), 1);
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

#[test]
fn a_severe_topic_at_the_same_rate_in_both_arms_is_no_signal_but_a_rise_is() {
    let c = contract();
    let s = CohortState::start(&c, T0);
    let name = MetricName::try_from("review_sentiment").unwrap();
    let with_topic = |start: i64, treated: u64, control: u64| {
        let mut w = healthy_window(start);
        let m = w.metrics.get_mut(&name).unwrap();
        m.treatment = moments(400, 0.25, 0.45);
        m.control = moments(400, 0.25, 0.45);
        m.treatment.topics.insert("broken".into(), treated);
        m.control.topics.insert("broken".into(), control);
        w
    };
    // 0.5% of reviews in both arms: the old rule held every such rollout.
    let history: Vec<CohortWindow> = (1..=3)
        .rev()
        .map(|i| with_topic(T0 - i * W, 2, 2))
        .collect();
    let j = run(&c, &with_topic(T0, 3, 1), &history, &s);
    assert_eq!(j.verdict, Verdict::Expand, "{}", j.reason);
    // The treatment mentions it in 6% of reviews, control in 0.5%: held.
    let history: Vec<CohortWindow> = (1..=3)
        .rev()
        .map(|i| with_topic(T0 - i * W, 24, 2))
        .collect();
    let j = run(&c, &with_topic(T0, 24, 2), &history, &s);
    assert_eq!(j.verdict, Verdict::Hold, "{} {:?}", j.reason, j.topics);
    assert!(j.reason.contains("broken"), "{}", j.reason);
}

#[test]
fn a_regression_that_begins_after_a_stage_change_is_judged_on_the_new_stage_alone() {
    let c = contract();
    // Eight healthy windows at 25%, then the cohort expanded to 50% and CSAT fell by 0.3.
    let mut s = CohortState::start(&c, T0 - 10 * W);
    s.stage = 4;
    s.exposure = 50.0;
    s.first_window = Some(T0 - 10 * W);
    s.evidence_since = Some(T0 - 2 * W);
    s.restarts = 4;
    let mut history: Vec<CohortWindow> =
        (3..=10).rev().map(|i| healthy_window(T0 - i * W)).collect();
    for i in [2, 1] {
        let mut w = healthy_window(T0 - i * W);
        set(
            &mut w,
            "csat",
            moments(120, 3.8, 0.8),
            moments(120, 4.1, 0.8),
        );
        history.push(w);
    }
    let mut now = healthy_window(T0);
    set(
        &mut now,
        "csat",
        moments(120, 3.8, 0.8),
        moments(120, 4.1, 0.8),
    );
    let j = run(&c, &now, &history, &s);
    assert_eq!(j.verdict, Verdict::Hold, "{}", j.reason);
    let csat = j
        .evidence
        .iter()
        .find(|e| e.metric.as_str() == "csat")
        .unwrap();
    assert_eq!(
        csat.figures.span_windows, 3,
        "judged on the new stage's windows"
    );
    assert!(csat.figures.window_treatment.is_some() && csat.figures.window_control.is_some());
    // The same data pooled since the gate began dilutes the drop below the threshold.
    let mut unrestarted = s.clone();
    unrestarted.evidence_since = None;
    unrestarted.first_window = Some(T0);
    let j = run(&c, &now, &history, &unrestarted);
    assert_ne!(j.verdict, Verdict::Hold, "{}", j.reason);
}

#[test]
fn a_regression_inside_a_long_stage_is_caught_by_change_detection() {
    let c = contract();
    // 40 healthy windows waiting for approval at 50%, then CSAT falls by 0.3.
    let mut s = CohortState::start(&c, T0 - 44 * W);
    s.stage = 4;
    s.exposure = 50.0;
    s.status = CohortStatus::AwaitingApproval;
    s.first_window = Some(T0 - 44 * W);
    s.evidence_since = Some(T0 - 44 * W);
    let mut history: Vec<CohortWindow> =
        (5..=44).rev().map(|i| healthy_window(T0 - i * W)).collect();
    for i in (1..=4).rev() {
        let mut w = healthy_window(T0 - i * W);
        set(
            &mut w,
            "csat",
            moments(120, 3.8, 0.8),
            moments(120, 4.1, 0.8),
        );
        history.push(w);
    }
    let mut now = healthy_window(T0);
    set(
        &mut now,
        "csat",
        moments(120, 3.8, 0.8),
        moments(120, 4.1, 0.8),
    );
    let j = run(&c, &now, &history, &s);
    assert_eq!(j.verdict, Verdict::Hold, "{}", j.reason);
    let csat = j
        .evidence
        .iter()
        .find(|e| e.metric.as_str() == "csat")
        .unwrap();
    assert!(
        csat.figures.span_windows <= 2 * c.span,
        "{}",
        csat.figures.span_windows
    );
}

#[test]
fn a_rolling_baseline_warms_up_instead_of_sending_the_cohort_to_manual_review() {
    let yaml = CONTRACT.replace("baseline: control", "baseline: { rolling: 2h }");
    let c = Contract::from_yaml(&yaml).unwrap();
    let s = CohortState::start(&c, T0);
    let j = run(&c, &healthy_window(T0), &[], &s);
    assert_eq!(j.verdict, Verdict::Stay, "{}", j.reason);
    assert_eq!(j.next.status, CohortStatus::Ramping);
    assert!(j.reason.contains("warms up"), "{}", j.reason);
}

#[test]
fn fixed_mode_decides_and_reports_one_test() {
    let yaml = CONTRACT.replace("test: sequential", "test: fixed");
    let c = Contract::from_yaml(&yaml).unwrap();
    let s = CohortState::start(&c, T0);
    // Sweep the treatment's negative reviews: wherever the zone is met, the interval shown
    // lies wholly on the harmful side, and the p-value is under the level shown; wherever
    // it is not, one of the two fails.
    for events in 48..110u64 {
        let mut w = healthy_window(T0);
        set(
            &mut w,
            "negative_review_rate",
            rate(events, 600),
            rate(48, 600),
        );
        let j = run(&c, &w, &[], &s);
        let e = &j.evidence[0];
        let (lo, _) = e.figures.delta_interval.unwrap();
        let p = e.figures.p_value.unwrap();
        let alpha = e.figures.alpha.unwrap();
        assert_eq!(lo > 0.0, p <= alpha, "events {events}: {e:?}");
        let harmful_enough = e.figures.relative.unwrap() >= 0.10;
        assert_eq!(
            e.zone != Zone::Healthy,
            lo > 0.0 && harmful_enough,
            "events {events}"
        );
        assert!(e.figures.test.starts_with("one-sided"));
    }
}
