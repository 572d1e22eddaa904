//! Bad input over gRPC: each problem gets a clear error naming the field and the reason, and
//! good data in the same request is kept.

mod common;

use common::{rate, Cluster, FAST_CONTRACT};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use rampart::proto::v1::signals_client::SignalsClient;
use tonic::Code;

fn assert_status(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    mentions: &[&str],
) {
    let status = result.expect_err("should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    for m in mentions {
        assert!(
            status.message().contains(m),
            "{:?} should mention {m:?}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_good_data_is_kept() {
    let cluster = Cluster::start(1).await;
    let channel = cluster.channel(0).await;
    let mut contracts = ContractsClient::new(channel.clone());
    let mut signals = SignalsClient::new(channel.clone());
    let mut gates = GatesClient::new(channel.clone());
    let mut overrides = OverridesClient::new(channel);

    tracing::info!("--- malformed contracts");
    let put = |yaml: String| pb::PutContractRequest {
        yaml,
        ..Default::default()
    };
    assert_status(
        contracts.put_contract(put("gate: [unclosed".into())).await,
        Code::InvalidArgument,
        &["contract"],
    );
    let typo = FAST_CONTRACT.replace("window: 1s", "window: 1s\nwindw: 2s");
    assert_status(
        contracts.put_contract(put(typo)).await,
        Code::InvalidArgument,
        &["windw"],
    );
    let ladder = FAST_CONTRACT.replace("[10, 50, 100]", "[10, 5, 100]");
    assert_status(
        contracts.put_contract(put(ladder)).await,
        Code::InvalidArgument,
        &["ladder[1]", "increase"],
    );
    let wrong_side = FAST_CONTRACT.replace("better: lower", "better: higher");
    assert_status(
        contracts.put_contract(put(wrong_side)).await,
        Code::InvalidArgument,
        &["metrics[0].kill.above"],
    );
    let huge = format!("{FAST_CONTRACT}\n# {}", "x".repeat(300 * 1024));
    assert_status(
        contracts.put_contract(put(huge)).await,
        Code::InvalidArgument,
        &["yaml", "bytes"],
    );
    contracts
        .put_contract(put(FAST_CONTRACT.into()))
        .await
        .expect("the good contract");

    tracing::info!("--- one batch mixing good and bad signals");
    let now = common::wait_until(
        std::time::Duration::from_secs(5),
        "the gate's first window",
        || async {
            let applied = cluster.nodes[0].node.state.read();
            let first = applied.state.gates.values().next()?.first_window;
            let now = common::now_ms();
            (now >= first).then_some(now)
        },
    )
    .await;
    let good = rate("fast", "error_rate", "mobile", true, now, 1, 100);
    let mut nan = rate("fast", "error_rate", "mobile", true, now, 1, 100);
    nan.metric = "csat".into();
    let mut moments_nan = good.clone();
    moments_nan.measurement = Some(pb::signal::Measurement::Moments(pb::Moments {
        n: 3,
        sum: f64::NAN,
        sum_sq: 1.0,
    }));
    let mut negative = good.clone();
    negative.measurement = Some(pb::signal::Measurement::Moments(pb::Moments {
        n: 3,
        sum: 1.0,
        sum_sq: -4.0,
    }));
    let mut huge = good.clone();
    huge.measurement = Some(pb::signal::Measurement::Observation(pb::Observation {
        value: 1e300,
        confidence: None,
        topics: vec![],
    }));
    let too_many_events = rate("fast", "error_rate", "mobile", true, now, 500, 100);
    let unknown_gate = rate("nope", "error_rate", "mobile", true, now, 1, 100);
    let no_arm = pb::Signal {
        arm: 0,
        ..good.clone()
    };
    let batch = vec![
        good.clone(),
        nan,
        moments_nan,
        negative,
        huge,
        too_many_events,
        unknown_gate,
        no_arm,
        good,
    ];
    let reply = signals
        .ingest(pb::IngestRequest {
            idempotency_key: "mixed".into(),
            signals: batch,
        })
        .await
        .expect("a mixed batch is answered, not refused whole")
        .into_inner();
    assert_eq!(reply.accepted, 2, "{reply:?}");
    let fields: Vec<(u32, &str)> = reply
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (1, "signals[1].metric"),
            (2, "signals[2].moments.sum"),
            (3, "signals[3].moments.sum_sq"),
            (4, "signals[4].observation.value"),
            (5, "signals[5].rate.events"),
            (6, "signals[6].gate"),
            (7, "signals[7].arm"),
        ]
    );
    assert!(reply.rejected.iter().all(|r| !r.reason.is_empty()));
    let state = gates
        .get_gate(pb::GetGateRequest {
            gate: "fast".into(),
            consistency: 0,
        })
        .await
        .expect("gate")
        .into_inner();
    assert_eq!(state.signals_accepted, 2, "the good signals are kept, once");

    tracing::info!("--- requests over the limits");
    let key = |k: &str, n: usize| pb::IngestRequest {
        idempotency_key: k.into(),
        signals: vec![rate("fast", "error_rate", "mobile", true, now, 1, 100); n],
    };
    assert_status(
        signals.ingest(key("", 1)).await,
        Code::InvalidArgument,
        &["idempotency_key"],
    );
    assert_status(
        signals.ingest(key("big", 5001)).await,
        Code::InvalidArgument,
        &["signals", "5001"],
    );
    assert_status(
        signals.ingest(key("empty", 0)).await,
        Code::InvalidArgument,
        &["signals", "empty"],
    );
    let mut oversize = key("oversize", 1);
    oversize.signals[0].gate = "g".repeat(9 * 1024 * 1024);
    let refused = signals.ingest(oversize).await.expect_err("a 9 MiB request");
    assert!(
        matches!(refused.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{refused:?}"
    );

    tracing::info!("--- gates and overrides");
    let eval = |gate: &str, unit: &str| pb::EvaluateRequest {
        gate: gate.into(),
        unit_id: unit.into(),
        cohort: String::new(),
        consistency: 0,
    };
    assert_status(
        gates.evaluate(eval("fast", "")).await,
        Code::InvalidArgument,
        &["unit_id"],
    );
    assert_status(
        gates.evaluate(eval("nope", "u1")).await,
        Code::NotFound,
        &["nope"],
    );
    assert_status(
        gates.evaluate(eval("bad gate", "u1")).await,
        Code::InvalidArgument,
        &["gate"],
    );
    let ov =
        |kind: pb::OverrideKind, actor: &str, reason: &str, exposure: f64| pb::OverrideRequest {
            gate: "fast".into(),
            cohort: String::new(),
            kind: kind as i32,
            exposure,
            actor: actor.into(),
            reason: reason.into(),
        };
    assert_status(
        overrides
            .r#override(ov(pb::OverrideKind::Kill, "", "why", 0.0))
            .await,
        Code::InvalidArgument,
        &["actor"],
    );
    assert_status(
        overrides
            .r#override(ov(pb::OverrideKind::Kill, "me", " ", 0.0))
            .await,
        Code::InvalidArgument,
        &["reason"],
    );
    assert_status(
        overrides
            .r#override(ov(pb::OverrideKind::SetExposure, "me", "why", f64::NAN))
            .await,
        Code::InvalidArgument,
        &["exposure"],
    );
    assert_status(
        overrides
            .r#override(ov(pb::OverrideKind::Unspecified, "me", "why", 0.0))
            .await,
        Code::InvalidArgument,
        &["kind"],
    );
    let mut unknown_cohort = ov(pb::OverrideKind::Hold, "me", "why", 0.0);
    unknown_cohort.cohort = "tablet".into();
    assert_status(
        overrides.r#override(unknown_cohort).await,
        Code::NotFound,
        &["tablet"],
    );
    let watch = gates
        .watch(pb::WatchRequest {
            gates: vec![],
            after_version: Default::default(),
        })
        .await;
    assert_status(watch.map(|_| ()), Code::InvalidArgument, &["gates"]);
    cluster.stop().await;
}
