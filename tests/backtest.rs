//! The backtest replays in arrival order with the leader's grace rule: what the leader would
//! refuse as late (or from the future), the backtest refuses and counts too.

use rampart::engine::backtest::{backtest, parse_arrivals};
use rampart::engine::signal::{format_time, SignalLine};
use rampart::engine::{Contract, Verdict};
use rampart::ids::CohortName;

const CONTRACT: &str = include_str!("../examples/checkout-v2.yaml");
const W: i64 = 15 * 60 * 1000;
const T0: i64 = 1_795_255_200_000;

/// One healthy window of the example contract's metrics for one cohort, as JSON lines.
fn window_lines(w: i64, cohort: &str, control_delay: Option<i64>) -> Vec<String> {
    let mut out = Vec::new();
    for arm in ["treatment", "control"] {
        let at = T0 + w * W + W / 2;
        let received = (arm == "control")
            .then_some(control_delay)
            .flatten()
            .map(|d| format_time(at + d));
        let base = SignalLine {
            gate: "checkout-v2".into(),
            cohort: Some(cohort.into()),
            arm: arm.into(),
            at: format_time(at),
            received,
            ..SignalLine::default()
        };
        let mut push = |line: SignalLine| out.push(serde_json::to_string(&line).unwrap());
        push(SignalLine {
            metric: "negative_review_rate".into(),
            events: Some(48),
            trials: Some(600),
            ..base.clone()
        });
        push(SignalLine {
            metric: "checkout_error_rate".into(),
            events: Some(10),
            trials: Some(2400),
            ..base.clone()
        });
        push(SignalLine {
            metric: "csat".into(),
            n: Some(120),
            sum: Some(492.0),
            sum_sq: Some(120.0 * 4.1 * 4.1 + 119.0 * 0.64),
            ..base.clone()
        });
        for i in 0..24 {
            push(SignalLine {
                metric: "review_sentiment".into(),
                value: Some(if i % 2 == 0 { 0.6 } else { -0.1 }),
                confidence: Some(0.95),
                ..base.clone()
            });
        }
    }
    out
}

fn trace(windows: i64, late_control_from: Option<(i64, i64)>) -> String {
    let mut lines = Vec::new();
    for w in 0..windows {
        for cohort in ["mobile", "desktop"] {
            let delay = late_control_from.and_then(|(from, d)| (w >= from).then_some(d));
            lines.extend(window_lines(w, cohort, delay));
        }
    }
    lines.join("\n")
}

#[test]
fn on_time_signals_are_all_used() {
    let c = Contract::from_yaml(CONTRACT).unwrap();
    let (arrivals, errors) = parse_arrivals(&trace(6, None));
    assert!(errors.is_empty(), "{errors:?}");
    let signals: Vec<_> = arrivals.iter().map(|a| a.signal.clone()).collect();
    let r = backtest(&c, &signals);
    assert_eq!(r.skipped.total(), 0, "{:?}", r.skipped);
    assert_eq!(r.windows, 6);
}

#[test]
fn control_lines_that_arrive_75_minutes_late_are_refused_as_the_leader_refuses_them() {
    let c = Contract::from_yaml(CONTRACT).unwrap();
    // From window 3 on, control's lines say they reached the cluster 75 minutes after the
    // event, so the windows are judged (end + 2 min grace) before control arrives.
    let text = trace(8, Some((3, 75 * 60 * 1000)));
    let (arrivals, errors) = parse_arrivals(&text);
    assert!(errors.is_empty(), "{errors:?}");
    // Arrival order is file order with the clock carried by `received`: sort the lines by
    // arrival as a log would hold them.
    let mut by_arrival = arrivals.clone();
    by_arrival.sort_by_key(|a| a.received.unwrap_or(a.signal.at));
    let r = rampart::engine::backtest::backtest_arrivals(&c, &by_arrival);
    assert!(r.skipped.late > 0, "{:?}", r.skipped);
    // Control of windows 3.. never counted: those windows saw a treatment without a control,
    // which is too few control samples, never a healthy expansion.
    let mobile = CohortName::try_from("mobile").unwrap();
    let after: Vec<_> = r
        .timeline(&mobile)
        .filter(|d| d.window.start >= T0 + 3 * W)
        .collect();
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|d| d.verdict != Verdict::Expand),
        "{after:?}"
    );
    assert!(
        after[0].reason.contains("too few samples"),
        "{}",
        after[0].reason
    );
    // The same lines replayed in event order (every line on time) count everything.
    let on_time: Vec<_> = arrivals
        .iter()
        .map(|a| rampart::engine::backtest::Arrival {
            received: None,
            ..a.clone()
        })
        .collect();
    let r = rampart::engine::backtest::backtest_arrivals(&c, &on_time);
    assert_eq!(r.skipped.late, 0);
}

#[test]
fn a_signal_far_ahead_of_the_arrival_clock_is_from_the_future() {
    let c = Contract::from_yaml(CONTRACT).unwrap();
    let mut text = trace(2, None);
    let ahead = SignalLine {
        gate: "checkout-v2".into(),
        metric: "csat".into(),
        cohort: Some("mobile".into()),
        arm: "treatment".into(),
        at: format_time(T0 + 5 * W),
        received: Some(format_time(T0 + W)),
        n: Some(10),
        sum: Some(40.0),
        sum_sq: Some(170.0),
        ..SignalLine::default()
    };
    text.push('\n');
    text.push_str(&serde_json::to_string(&ahead).unwrap());
    let (arrivals, errors) = parse_arrivals(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let r = rampart::engine::backtest::backtest_arrivals(&c, &arrivals);
    assert_eq!(r.skipped.future, 1, "{:?}", r.skipped);
}
