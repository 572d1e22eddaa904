//! A severe topic's evidence crosses every edge a decision does: the engine's judgement, the
//! replicated decision (and its stored form), the protobuf a client reads and the JSON of the
//! HTTP API and `decisions --json`. Every field is set to a distinct value and read back.

use rampart::api::{convert, view};
use rampart::engine::{CohortState, Contract, Judgement, TopicEvidence, Verdict, Window, Zone};
use rampart::ids::{CohortName, GateKey, MetricName};
use rampart::state::{Command, Decision, Request, Response, State};

const T0: i64 = 1_795_255_200_000;

fn topic(window: Window) -> TopicEvidence {
    TopicEvidence {
        topic: "charged twice".into(),
        metric: MetricName::try_from("review_sentiment").unwrap(),
        cohort: CohortName::try_from("mobile").unwrap(),
        window,
        treatment_mentions: 7,
        control_mentions: 2,
        zone: Zone::Stop,
        summary: "severe topic \"charged twice\": 7 treatment mentions, 2 in control".into(),
        treatment_share: Some(0.031),
        control_share: Some(0.009),
        e_value: Some(412.5),
        p_value: Some(0.0021),
        alpha: Some(0.00025),
        span_windows: 3,
        any_mention: true,
    }
}

/// The example contract at T0, one judgement with a topic decided for mobile's first window.
fn decided() -> (Decision, TopicEvidence) {
    let contract = Contract::from_yaml(include_str!("../examples/checkout-v2.yaml")).unwrap();
    let gate = GateKey::try_from("checkout-v2").unwrap();
    let mobile = CohortName::try_from("mobile").unwrap();
    let mut state = State::default();
    state.apply(&Request {
        at: T0,
        command: Command::PutContract {
            contract: Box::new(contract),
        },
    });
    let g = state.live_gate(&gate).unwrap();
    let window = Window {
        start: g.first_window,
        end: g.first_window + 15 * 60_000,
    };
    let mut next: CohortState = g.cohorts[&mobile].clone();
    next.last_window = Some(window.start);
    let t = topic(window);
    let judgement = Judgement {
        verdict: Verdict::Hold,
        next,
        kill_switch: false,
        evidence: Vec::new(),
        reason: "held: a severe topic".into(),
        topics: vec![t.clone()],
    };
    let based_on = g.version;
    let response = state.apply(&Request {
        at: window.end + 3 * 60_000,
        command: Command::Decide {
            gate: gate.clone(),
            cohort: mobile,
            window,
            based_on,
            judgement: Box::new(judgement),
            leader: 1,
            term: 1,
        },
    });
    assert!(
        matches!(response, Response::Decided { applied: true, .. }),
        "{response:?}"
    );
    let d = state
        .live_gate(&gate)
        .unwrap()
        .decisions
        .last()
        .unwrap()
        .clone();
    (d, t)
}

#[test]
fn a_topic_crosses_state_storage_protobuf_and_json() {
    let (d, t) = decided();
    assert_eq!(
        d.topics,
        vec![t.clone()],
        "the replicated decision keeps it"
    );

    // The stored form (MessagePack with field names, as snapshots and backups write it).
    let bytes = rmp_serde::to_vec_named(&d).unwrap();
    let back: Decision = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, d);

    let pb = convert::decision(&d);
    assert_eq!(pb.topics.len(), 1);
    let p = &pb.topics[0];
    assert_eq!(
        (p.topic.as_str(), p.metric.as_str(), p.cohort.as_str()),
        ("charged twice", "review_sentiment", "mobile")
    );
    assert_eq!(
        p.window_start.as_ref().map(convert::millis),
        Some(t.window.start)
    );
    assert_eq!(
        p.window_end.as_ref().map(convert::millis),
        Some(t.window.end)
    );
    assert_eq!((p.treatment_mentions, p.control_mentions), (7, 2));
    assert_eq!(
        (p.zone.as_str(), p.summary.as_str()),
        ("stop", t.summary.as_str())
    );
    assert_eq!(
        (
            p.treatment_share,
            p.control_share,
            p.e_value,
            p.p_value,
            p.alpha
        ),
        (
            Some(0.031),
            Some(0.009),
            Some(412.5),
            Some(0.0021),
            Some(0.00025)
        )
    );
    assert_eq!((p.span_windows, p.any_mention), (3, true));

    let json = view::decision(&pb);
    let j = &json["topics"][0];
    assert_eq!(j["topic"], "charged twice");
    assert_eq!(j["metric"], "review_sentiment");
    assert_eq!(j["cohort"], "mobile");
    assert_eq!(
        j["window_start"],
        rampart::engine::signal::format_time(t.window.start)
    );
    assert_eq!(
        j["window_end"],
        rampart::engine::signal::format_time(t.window.end)
    );
    assert_eq!(
        (
            j["treatment_mentions"].as_u64(),
            j["control_mentions"].as_u64()
        ),
        (Some(7), Some(2))
    );
    assert_eq!(
        (j["zone"].as_str(), j["summary"].as_str()),
        (Some("stop"), Some(t.summary.as_str()))
    );
    for (key, value) in [
        ("treatment_share", 0.031),
        ("control_share", 0.009),
        ("e_value", 412.5),
        ("p_value", 0.0021),
        ("alpha", 0.00025),
    ] {
        assert_eq!(j[key].as_f64(), Some(value), "{key}: {j}");
    }
    assert_eq!(
        (j["span_windows"].as_u64(), j["any_mention"].as_bool()),
        (Some(3), Some(true))
    );
    let fields = j.as_object().map_or(0, serde_json::Map::len);
    assert_eq!(fields, 16, "every TopicEvidence field, no more: {j}");
}

#[test]
fn a_decision_stored_without_topics_reads_back_with_none() {
    let (mut d, _) = decided();
    d.topics.clear();
    // What an older node wrote has no `topics` key at all.
    let bytes = rmp_serde::to_vec_named(&d).unwrap();
    let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
    assert!(value.get("topics").is_none(), "{value}");
    let back: Decision = rmp_serde::from_slice(&bytes).unwrap();
    assert!(back.topics.is_empty());
    assert!(view::decision(&convert::decision(&back))["topics"]
        .as_array()
        .is_some_and(Vec::is_empty));
}
