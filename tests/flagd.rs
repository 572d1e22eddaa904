//! flagd's evaluation protocol (v1 and v2) on the flagd listener of a 3-node cluster: every
//! type and reason against `rampart.v1.Gates/Evaluate` unit by unit through a follower, the
//! cohort from the attribute the contract names, flagd's error codes, `ResolveAll`, the
//! `EventStream` (provider_ready, a configuration_change for the kill switch and none for a
//! decision that changes no answer), health, and `UNAVAILABLE` once a node knows no leader.

#![allow(clippy::result_large_err)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{wait_until, Cluster};
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use rampart::proto::flagd::{v1, v2};
use rampart::proto::v1 as pb;
use rampart::proto::v1::contracts_client::ContractsClient;
use rampart::proto::v1::gates_client::GatesClient;
use rampart::proto::v1::overrides_client::OverridesClient;
use tonic::Code;

/// Cohorts by `platform`, windows long enough that the engine decides nothing in the test.
const CONTRACT: &str = r#"
gate: by-platform
variants: { treatment: new-search, fallback: old-search }
ladder: [10, 50, 100]
stage_min_duration: 1h
window: 1h
grace: 1m
cohorts: [ios, web]
cohort_attribute: platform
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.05 }
"#;
const GATE: &str = "by-platform";

fn with_flagd(config: &mut rampart::node::NodeConfig, _: &std::path::Path) {
    config.flagd = Some("127.0.0.1:0".parse().expect("addr"));
}

fn text(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn context(pairs: &[(&str, &str)]) -> Option<Struct> {
    Some(Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), text(v)))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn field<'a>(s: &'a Struct, key: &str) -> &'a Kind {
    s.fields
        .get(key)
        .and_then(|v| v.kind.as_ref())
        .unwrap_or_else(|| panic!("no {key} in {s:?}"))
}

fn number(s: &Struct, key: &str) -> f64 {
    match field(s, key) {
        Kind::NumberValue(n) => *n,
        other => panic!("{key} is {other:?}"),
    }
}

async fn flagd_channel(cluster: &Cluster, i: usize) -> tonic::transport::Channel {
    let addr = cluster.nodes[i].flagd_addr.expect("a flagd listener");
    common::channel(&format!("http://{addr}")).await
}

async fn override_gate(cluster: &Cluster, i: usize, request: pb::OverrideRequest) -> u64 {
    OverridesClient::new(cluster.channel(i).await)
        .r#override(request)
        .await
        .expect("Override")
        .into_inner()
        .version
}

fn request(kind: pb::OverrideKind, cohort: &str, exposure: f64) -> pb::OverrideRequest {
    pb::OverrideRequest {
        gate: GATE.into(),
        cohort: cohort.into(),
        kind: kind as i32,
        exposure,
        actor: "sre".into(),
        reason: "flagd test".into(),
    }
}

async fn set_up(cluster: &Cluster, i: usize) {
    ContractsClient::new(cluster.channel(i).await)
        .put_contract(pb::PutContractRequest {
            yaml: CONTRACT.into(),
            ..Default::default()
        })
        .await
        .expect("PutContract");
    override_gate(
        cluster,
        i,
        request(pb::OverrideKind::SetExposure, "web", 50.0),
    )
    .await;
    cluster.wait_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_type_and_reason_agrees_with_evaluate() {
    let cluster = Cluster::start_with(3, with_flagd).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    set_up(&cluster, follower).await;
    let channel = flagd_channel(&cluster, follower).await;
    let mut one = v1::service_client::ServiceClient::new(channel.clone());
    let mut two = v2::service_client::ServiceClient::new(channel);
    let mut gates = GatesClient::new(cluster.channel(follower).await);
    let mut treated = 0;
    for n in 0..200 {
        let unit = format!("user-{n}");
        let platform = if n % 2 == 0 { "web" } else { "ios" };
        // `cohort` is not this contract's attribute: it is ignored.
        let cx = context(&[
            ("targetingKey", &unit),
            ("platform", platform),
            ("cohort", "nope"),
        ]);
        let want = gates
            .evaluate(pb::EvaluateRequest {
                gate: GATE.into(),
                unit_id: unit.clone(),
                cohort: platform.into(),
                consistency: pb::Consistency::Local as i32,
            })
            .await
            .expect("Evaluate")
            .into_inner();
        let reason = if platform == "web" {
            "TARGETING_MATCH"
        } else {
            "SPLIT"
        };
        let b = two
            .resolve_boolean(v2::ResolveBooleanRequest {
                flag_key: GATE.into(),
                context: cx.clone(),
            })
            .await
            .expect("v2 ResolveBoolean")
            .into_inner();
        assert_eq!(b.value, Some(want.treatment), "{unit}");
        assert_eq!(b.variant.as_deref(), Some(want.variant.as_str()), "{unit}");
        assert_eq!(b.reason, reason, "{unit}");
        let metadata = b.metadata.expect("metadata");
        assert_eq!(number(&metadata, "bucket"), f64::from(want.bucket));
        assert_eq!(number(&metadata, "exposure"), want.exposure);
        assert_eq!(number(&metadata, "gate_version"), want.gate_version as f64);
        let b1 = one
            .resolve_boolean(v1::ResolveBooleanRequest {
                flag_key: GATE.into(),
                context: cx.clone(),
            })
            .await
            .expect("v1 ResolveBoolean")
            .into_inner();
        assert_eq!(
            (b1.value, b1.variant.as_str(), b1.reason.as_str()),
            (want.treatment, want.variant.as_str(), reason)
        );
        let s = one
            .resolve_string(v1::ResolveStringRequest {
                flag_key: GATE.into(),
                context: cx.clone(),
            })
            .await
            .expect("v1 ResolveString")
            .into_inner();
        assert_eq!(s.value, want.variant, "{unit}");
        let o = two
            .resolve_object(v2::ResolveObjectRequest {
                flag_key: GATE.into(),
                context: cx,
            })
            .await
            .expect("v2 ResolveObject")
            .into_inner();
        let details = o.value.expect("an object");
        assert_eq!(field(&details, "variant"), &Kind::StringValue(want.variant));
        assert_eq!(
            field(&details, "treatment"),
            &Kind::BoolValue(want.treatment)
        );
        assert_eq!(number(&details, "bucket"), f64::from(want.bucket));
        treated += usize::from(want.treatment);
    }
    // web at 50% and ios at the first stage (10%).
    assert!((20..100).contains(&treated), "{treated} of 200 treated");

    // No targeting key: the fallback, DEFAULT.
    let d = two
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: context(&[("platform", "web")]),
        })
        .await
        .expect("no targeting key")
        .into_inner();
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason.as_str()),
        (Some(false), Some("old-search"), "DEFAULT")
    );

    // Errors as flagd maps them, naming what is wrong.
    let unit = [("targetingKey", "user-1"), ("platform", "web")];
    let status = two
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "no-such-gate".into(),
            context: context(&unit),
        })
        .await
        .expect_err("an unknown gate");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = two
        .resolve_int(v2::ResolveIntRequest {
            flag_key: GATE.into(),
            context: context(&unit),
        })
        .await
        .expect_err("an integer");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = one
        .resolve_float(v1::ResolveFloatRequest {
            flag_key: GATE.into(),
            context: context(&unit),
        })
        .await
        .expect_err("a float");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = two
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: context(&[("targetingKey", "user-1")]),
        })
        .await
        .expect_err("no platform, two cohorts");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("context.platform:"),
        "{status:?}"
    );
    let status = two
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: context(&[("targetingKey", "user-1"), ("platform", "android")]),
        })
        .await
        .expect_err("an unknown cohort");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("android"), "{status:?}");
    let mut numeric = context(&[("platform", "web")]).expect("context");
    numeric.fields.insert(
        "targetingKey".into(),
        Value {
            kind: Some(Kind::NumberValue(7.0)),
        },
    );
    let status = two
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: Some(numeric),
        })
        .await
        .expect_err("a numeric targeting key");
    assert!(
        status.message().starts_with("context.targetingKey:"),
        "{status:?}"
    );

    // ResolveAll: every gate; what cannot be answered is named in the metadata.
    let all = one
        .resolve_all(v1::ResolveAllRequest {
            context: context(&unit),
        })
        .await
        .expect("ResolveAll")
        .into_inner();
    let flag = &all.flags[GATE];
    let single = one
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: context(&unit),
        })
        .await
        .expect("ResolveBoolean")
        .into_inner();
    assert_eq!(
        flag.value,
        Some(v1::any_flag::Value::BoolValue(single.value))
    );
    assert_eq!(
        (flag.reason.as_str(), flag.variant.as_str()),
        (single.reason.as_str(), single.variant.as_str())
    );
    let all = two
        .resolve_all(v2::ResolveAllRequest {
            context: context(&[("targetingKey", "user-1")]),
        })
        .await
        .expect("ResolveAll")
        .into_inner();
    assert!(all.flags.is_empty(), "{all:?}");
    let errors = match field(all.metadata.as_ref().expect("metadata"), "errors") {
        Kind::StructValue(s) => s.clone(),
        other => panic!("errors: {other:?}"),
    };
    assert!(errors.fields.contains_key(GATE), "{errors:?}");

    // Reflection lists what this listener serves: both versions and health, nothing of
    // rampart.v1.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(flagd_channel(&cluster, follower).await);
    let ask = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.expect("an answer").expect("one");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "flagd.evaluation.v1.Service",
            "flagd.evaluation.v2.Service",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );

    // Health answers for both versions on this listener.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(flagd_channel(&cluster, follower).await);
    for service in [
        "",
        "flagd.evaluation.v1.Service",
        "flagd.evaluation.v2.Service",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    cluster.stop().await;
}

/// The stream's next event, within 10 s.
async fn next(
    events: &mut tonic::Streaming<v2::EventStreamResponse>,
    what: &str,
) -> v2::EventStreamResponse {
    tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 10s"))
        .expect("an event")
        .unwrap_or_else(|| panic!("the stream ended before {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kill_switch_reaches_the_event_stream_and_a_leaderless_node_is_unavailable() {
    let mut cluster = Cluster::start_with(3, with_flagd).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let leader_index = cluster
        .nodes
        .iter()
        .position(|n| n.node.id == leader)
        .expect("the leader");
    set_up(&cluster, follower).await;
    let mut flagd = v2::service_client::ServiceClient::new(flagd_channel(&cluster, follower).await);
    let mut events = flagd
        .event_stream(v2::EventStreamRequest {})
        .await
        .expect("EventStream")
        .into_inner();
    let ready = next(&mut events, "provider_ready").await;
    assert_eq!(ready.r#type, "provider_ready");

    // A hold changes no unit's answer: no event. The kill switch does: one, naming the gate.
    override_gate(
        &cluster,
        leader_index,
        request(pb::OverrideKind::Hold, "ios", 0.0),
    )
    .await;
    let killed = override_gate(
        &cluster,
        leader_index,
        request(pb::OverrideKind::Kill, "", 0.0),
    )
    .await;
    let change = next(&mut events, "configuration_change").await;
    assert_eq!(change.r#type, "configuration_change");
    let flags = match field(change.data.as_ref().expect("data"), "flags") {
        Kind::StructValue(s) => s.clone(),
        other => panic!("flags: {other:?}"),
    };
    let flag = match flags.fields.get(GATE).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StructValue(s)) => s.clone(),
        other => panic!("{GATE}: {other:?} in {flags:?}"),
    };
    assert_eq!(number(&flag, "gate_version"), killed as f64, "{flag:?}");
    let disabled = flagd
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: GATE.into(),
            context: context(&[("targetingKey", "user-0"), ("platform", "web")]),
        })
        .await
        .expect("ResolveBoolean")
        .into_inner();
    assert_eq!(
        (
            disabled.value,
            disabled.variant.as_deref(),
            disabled.reason.as_str()
        ),
        (Some(false), Some("old-search"), "DISABLED")
    );

    // The leader and the other follower stop: the follower knows no leader, and after
    // LEADERLESS it answers UNAVAILABLE and ends its streams.
    let other = (0..3)
        .find(|i| *i != follower && *i != leader_index)
        .expect("a third node");
    let mut stopping: Vec<usize> = vec![leader_index, other];
    stopping.sort_unstable_by(|a, b| b.cmp(a));
    for i in stopping {
        cluster.nodes.remove(i).stop().await.expect("stop");
    }
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match events.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stream ends within 15s");
    assert_eq!(ended.map(|s| s.code()), Some(Code::Unavailable));
    let status = wait_until(Duration::from_secs(15), "UNAVAILABLE", || {
        let mut flagd = flagd.clone();
        async move {
            flagd
                .resolve_boolean(v2::ResolveBooleanRequest {
                    flag_key: GATE.into(),
                    context: context(&[("targetingKey", "user-0"), ("platform", "web")]),
                })
                .await
                .err()
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_the_flagd_listener_needs_no_client_certificate() {
    let certs = tempfile::tempdir().expect("dir");
    let authority = common::certs::ca("flagd CA");
    let files = common::certs::issue(certs.path(), "node", &authority);
    let cluster = Cluster::start_with(1, move |config, dir| {
        with_flagd(config, dir);
        config.tls = Some(files.clone());
    })
    .await;
    let addr = cluster.nodes[0].flagd_addr.expect("a flagd listener");
    // A provider trusting the CA, with no certificate of its own (flagd providers bring none).
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            authority.cert.pem(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS connection without a client certificate");
    let status = v2::service_client::ServiceClient::new(channel)
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "no-such-gate".into(),
            context: context(&[("targetingKey", "user-1")]),
        })
        .await
        .expect_err("no gate");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Plaintext to the TLS port gets no answer.
    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plain {
        let answer = v2::service_client::ServiceClient::new(channel)
            .resolve_boolean(v2::ResolveBooleanRequest::default())
            .await;
        assert!(answer.is_err(), "plaintext was served on the TLS listener");
    }
    cluster.stop().await;
}
