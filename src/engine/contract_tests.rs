use super::*;

pub(crate) const EXAMPLE: &str = include_str!("../../examples/checkout-v2.yaml");

#[test]
fn example_contract_parses_and_validates() {
    let c = Contract::from_yaml(EXAMPLE).expect("example is valid");
    assert_eq!(c.gate.as_str(), "checkout-v2");
    assert_eq!(c.window, Span(15 * 60 * 1000));
    assert_eq!(c.ladder.last(), Some(&100.0));
    assert_eq!(c.cohort_names().len(), 2);
    let neg = c
        .metric(&MetricName::try_from("negative_review_rate").unwrap())
        .unwrap();
    assert!((neg.stop.as_ref().unwrap().relative.unwrap().0 - 0.15).abs() < 1e-12);
}

fn errors_of(yaml: &str) -> Vec<FieldError> {
    Contract::from_yaml(yaml).expect_err("should be refused").0
}

#[test]
fn unknown_field_is_refused_with_its_name() {
    let yaml = EXAMPLE.replace("owner: payments", "owner: payments\nownr: typo");
    let errs = errors_of(&yaml);
    assert!(errs[0].reason.contains("ownr"), "{errs:?}");
}

#[test]
fn non_increasing_ladder_names_the_stage() {
    let yaml = EXAMPLE.replace("[1, 5, 10, 25, 50, 100]", "[1, 5, 5, 100]");
    let errs = errors_of(&yaml);
    assert!(errs.iter().any(|e| e.field == "ladder[2]"), "{errs:?}");
}

#[test]
fn grace_longer_than_window_is_refused() {
    let yaml = EXAMPLE.replace("grace: 2m", "grace: 20m");
    assert!(errors_of(&yaml).iter().any(|e| e.field == "grace"));
}

#[test]
fn ceiling_on_a_higher_is_better_metric_is_refused() {
    let yaml = EXAMPLE.replace("stop: { absolute: 0.2 }", "stop: { above: 4.5 }");
    let errs = errors_of(&yaml);
    assert!(
        errs.iter().any(|e| e.field == "metrics[1].stop.above"),
        "{errs:?}"
    );
}

#[test]
fn contract_round_trips_through_serde() {
    for baseline in [
        "baseline: control",
        "baseline: { rolling: 2h }",
        "baseline: { fixed: { negative_review_rate: 0.08, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.2 } }",
    ] {
        let c = Contract::from_yaml(&EXAMPLE.replace("baseline: control", baseline)).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: Contract = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{baseline}");
    }
}

#[test]
fn fixed_rate_baseline_out_of_range_and_unknown_baseline_are_refused() {
    let yaml = EXAMPLE.replace(
        "baseline: control",
        "baseline: { fixed: { negative_review_rate: 1.5, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.2 } }",
    );
    let errs = errors_of(&yaml);
    assert!(
        errs.iter()
            .any(|e| e.field == "baseline.fixed.negative_review_rate"),
        "{errs:?}"
    );
    assert!(!errors_of(&EXAMPLE.replace("baseline: control", "baseline: yesterday")).is_empty());
}

#[test]
fn approval_at_the_top_is_refused() {
    let yaml = EXAMPLE.replace("approval: { above: 50 }", "approval: { above: 100 }");
    assert!(errors_of(&yaml).iter().any(|e| e.field == "approval.above"));
}

#[test]
fn kill_less_severe_than_stop_is_refused() {
    let yaml = EXAMPLE.replace("kill:  { relative: 30% }", "kill:  { relative: 5% }");
    let errs = errors_of(&yaml);
    assert!(
        errs.iter().any(|e| e.field == "metrics[0].kill.relative"),
        "{errs:?}"
    );
}

#[test]
fn baselines_round_trip_through_yaml_and_keep_their_stored_bytes() {
    for baseline in [
        "baseline: control",
        "baseline: { rolling: 2h }",
        "baseline: { fixed: { negative_review_rate: 0.08, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.2 } }",
        // What serde_yaml wrote for a contract read back before (`rampart contract get`).
        "baseline: !rolling 2h",
        "baseline: !fixed { negative_review_rate: 0.08, csat: 4.1, checkout_error_rate: 0.004, review_sentiment: 0.2 }",
    ] {
        let c = Contract::from_yaml(&EXAMPLE.replace("baseline: control", baseline))
            .unwrap_or_else(|e| panic!("{baseline}: {e}"));
        let yaml = serde_yaml::to_string(&c).unwrap();
        assert!(!yaml.contains('!'), "no YAML tags: {yaml}");
        assert_eq!(Contract::from_yaml(&yaml).unwrap(), c, "{yaml}");
    }
    // MessagePack: the bytes the derived, externally tagged form wrote ({"rolling": "2h"}).
    let bytes = rmp_serde::to_vec_named(&Baseline::Rolling(Span(2 * 3600 * 1000))).unwrap();
    assert_eq!(bytes, b"\x81\xa7rolling\xa22h");
    let bytes = rmp_serde::to_vec_named(&Baseline::Control).unwrap();
    assert_eq!(bytes, b"\xa7control");
    for bad in [
        "baseline: { rolling: 2h, fixed: {} }",
        "baseline: {}",
        "baseline: { yesterday: 1 }",
    ] {
        assert!(
            Contract::from_yaml(&EXAMPLE.replace("baseline: control", bad)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_zone_threshold_is_the_nearest_of_its_rules() {
    let c = Contract::from_yaml(EXAMPLE).unwrap();
    let mut spec = c.metrics[0].clone();
    let rule = ZoneRule {
        relative: Some(Fraction(0.5)),
        absolute: Some(0.02),
        above: Some(0.5),
        below: Some(0.01),
        windows: 1,
    };
    spec.better = Better::Lower;
    spec.guardrail = false;
    // 0.1 + 50% = 0.15, 0.1 + 0.02 = 0.12, ceiling 0.5: the nearest is 0.12.
    assert!((spec.threshold(&rule, Some(0.1)).unwrap() - 0.12).abs() < 1e-12);
    // Without a baseline only the ceiling is left.
    assert_eq!(spec.threshold(&rule, None), Some(0.5));
    // A baseline above the ceiling: the ceiling is nearer.
    assert_eq!(spec.threshold(&rule, Some(0.6)), Some(0.5));
    spec.better = Better::Higher;
    // 0.1 − 50% = 0.05, 0.1 − 0.02 = 0.08, floor 0.01: the nearest is 0.08.
    assert!((spec.threshold(&rule, Some(0.1)).unwrap() - 0.08).abs() < 1e-12);
    spec.guardrail = true;
    assert_eq!(spec.threshold(&rule, Some(0.1)), Some(0.01));
    let empty = ZoneRule::default();
    assert_eq!(spec.threshold(&empty, Some(0.1)), None);
}
