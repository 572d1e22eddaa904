//! A metric's evidence and a severe topic's cross every edge a decision does: the engine's
//! judgement, the replicated decision (and its stored form), the protobuf a client reads and
//! the JSON of the HTTP API and `decisions --json`. Every field is set to a distinct value and
//! read back; what an older node stored still reads.

use rampart::api::{convert, view};
use rampart::engine::{
    CohortState, Contract, Figures, Judgement, MetricEvidence, TopicEvidence, Verdict, Window, Zone,
};
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

/// Every field set, each to a value no other field has.
fn metric(window: Window) -> MetricEvidence {
    MetricEvidence {
        metric: MetricName::try_from("checkout_latency").unwrap(),
        cohort: CohortName::try_from("mobile").unwrap(),
        window,
        figures: Figures {
            treatment: Some(412.5),
            control: Some(398.25),
            baseline: Some(398.5),
            baseline_source: "control".into(),
            delta: Some(14.0),
            delta_interval: Some((3.5, 24.5)),
            relative: Some(0.035),
            relative_interval: Some((0.0087, 0.0615)),
            p_value: Some(0.0123),
            e_value: Some(81.25),
            samples_treatment: 5012,
            samples_control: 4987,
            span_windows: 4,
            test: "msprt".into(),
            alpha: Some(0.0125),
            window_treatment: Some(420.0),
            window_control: Some(401.0),
            window_samples_treatment: 1250,
            window_samples_control: 1249,
            treatment_interval: Some((405.0, 420.0)),
            ceiling_p_value: Some(0.044),
            ceiling_e_value: Some(9.5),
            ceiling_span_windows: 2,
            ceiling_alpha: Some(0.00625),
            srm_p_value: Some(0.61),
            low_confidence_share: Some(0.07),
            quantile: Some(0.9),
            exceedance_interval: Some((0.012, 0.048)),
        },
        zone: Zone::Watch,
        streak: 3,
        unreliable_reason: Some("stale: no signal for 2 windows".into()),
        summary: "p90 latency 412.5 ms vs 398.5 ms".into(),
    }
}

/// The example contract at T0, one judgement with a metric's evidence and a topic decided
/// for mobile's first window.
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
        evidence: vec![metric(window)],
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

#[test]
fn every_figure_of_a_metric_crosses_state_storage_protobuf_and_json() {
    let (d, _) = decided();
    let window = d.window.expect("a judged window");
    let e = metric(window);
    assert_eq!(
        d.evidence,
        vec![e.clone()],
        "the replicated decision keeps it"
    );

    let bytes = rmp_serde::to_vec_named(&d).unwrap();
    let back: Decision = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, d, "stored and read back");

    let pb = convert::decision(&d);
    assert_eq!(pb.evidence.len(), 1);
    let read = convert::evidence_from_proto(&pb.evidence[0]).expect("reads back");
    assert_eq!(read, e, "protobuf and back, every field");

    // The JSON has every stored key with the stored value; the window as two times.
    let json = view::decision(&pb);
    let j = json["evidence"][0].as_object().expect("an object").clone();
    let serde_json::Value::Object(stored) = serde_json::to_value(&e).unwrap() else {
        panic!("evidence serializes to an object");
    };
    for (key, value) in &stored {
        if key == "window" {
            continue;
        }
        assert_eq!(j.get(key), Some(value), "{key} in {j:?}");
    }
    assert_eq!(
        j["window_start"],
        rampart::engine::signal::format_time(window.start)
    );
    assert_eq!(
        j["window_end"],
        rampart::engine::signal::format_time(window.end)
    );
    assert_eq!(j.len(), stored.len() + 1, "no more keys: {j:?}");
    assert_eq!(j["zone"], "watch");
    assert_eq!(j["delta_interval"], serde_json::json!([3.5, 24.5]));
    assert_eq!(j["window_samples_control"], 1249);

    // docs/openapi.yaml documents exactly these keys (and `unreadable`, for evidence a node
    // could not read).
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .expect("docs/openapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let documented: std::collections::BTreeSet<String> = doc["components"]["schemas"]["Evidence"]
        ["properties"]
        .as_mapping()
        .expect("Evidence.properties")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let mut served: std::collections::BTreeSet<String> = j.keys().cloned().collect();
    served.insert("unreadable".into());
    assert_eq!(documented, served);
}

#[test]
fn evidence_an_older_node_stored_reads_back_whole() {
    // Written by the release before the figures were one struct (fields one by one).
    let bytes = include_bytes!("data/evidence/metric-evidence-v2.bin");
    let window = Window {
        start: 1_795_255_200_000,
        end: 1_795_256_100_000,
    };
    let read: MetricEvidence = rmp_serde::from_slice(bytes).expect("decodes");
    assert_eq!(read, metric(window));
    // And what this release writes has the same keys and values.
    let old: serde_json::Value = rmp_serde::from_slice(bytes).unwrap();
    let new: serde_json::Value =
        rmp_serde::from_slice(&rmp_serde::to_vec_named(&read).unwrap()).unwrap();
    assert_eq!(old, new);
    assert_eq!(old.as_object().map(serde_json::Map::len), Some(35));
}

#[test]
fn evidence_without_the_later_figures_reads_back_with_none() {
    // The oldest evidence had no span, test, window or ceiling figures.
    let (d, _) = decided();
    let mut value = serde_json::to_value(&d.evidence[0]).unwrap();
    let object = value.as_object_mut().unwrap();
    for key in [
        "span_windows",
        "test",
        "alpha",
        "window_treatment",
        "window_control",
        "window_samples_treatment",
        "window_samples_control",
        "treatment_interval",
        "ceiling_p_value",
        "ceiling_e_value",
        "ceiling_span_windows",
        "ceiling_alpha",
        "srm_p_value",
        "low_confidence_share",
        "quantile",
        "exceedance_interval",
    ] {
        assert!(object.remove(key).is_some(), "{key}");
    }
    let bytes = rmp_serde::to_vec_named(&value).unwrap();
    let read: MetricEvidence = rmp_serde::from_slice(&bytes).expect("decodes");
    assert_eq!(read.figures.span_windows, 0);
    assert_eq!(read.figures.quantile, None);
    assert_eq!(read.figures.treatment, Some(412.5));
    assert_eq!(read.zone, Zone::Watch);
}

#[test]
fn a_zone_this_client_does_not_know_is_named_not_guessed() {
    let (d, _) = decided();
    let mut pb = convert::decision(&d);
    pb.evidence[0].zone = "scorching".into();
    let err = convert::evidence_from_proto(&pb.evidence[0]).unwrap_err();
    assert!(err.to_string().contains("zone"), "{err}");
    let j = &view::decision(&pb)["evidence"][0];
    assert_eq!(j["zone"], "scorching");
    assert!(
        j["unreadable"].as_str().is_some_and(|s| s.contains("zone")),
        "{j}"
    );
}
