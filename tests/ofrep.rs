//! OFREP (the OpenFeature Remote Evaluation Protocol) over real HTTP against a 3-node
//! cluster: single and bulk evaluations agree with `rampart.v1.Gates/Evaluate` unit by unit
//! through a follower, the bulk ETag changes exactly when an answer does, a kill switch turns
//! every answer `DISABLED`, OFREP's error codes and shapes, and tokens (bearer or X-API-Key).

mod common;

use common::{with_http, Cluster};
use rampart::proto::v1 as pb;
use rampart::proto::v1::gates_client::GatesClient;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Two cohorts, windows long enough that the engine decides nothing during the test.
const SLOW_CONTRACT: &str = r#"
gate: slow
variants: { treatment: new, fallback: old }
ladder: [10, 50, 100]
stage_min_duration: 1h
window: 1h
grace: 1m
cohorts: [mobile, web]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.05 }
"#;

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.text().await.expect("body");
    let value = serde_json::from_str(&body).unwrap_or_else(|_| json!({"text": body}));
    (status, value)
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (StatusCode, Value) {
    json_of(client.post(url).json(body).send().await.expect("POST")).await
}

async fn put_contract(client: &reqwest::Client, url: String, yaml: &str) {
    let response = client
        .put(url)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .expect("PUT");
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ofrep_answers_as_evaluate_does_from_any_node() {
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let client = reqwest::Client::new();
    put_contract(
        &client,
        cluster.url(follower, "/v1/contracts/slow"),
        SLOW_CONTRACT,
    )
    .await;
    let (status, body) = post(
        &client,
        &cluster.url(follower, "/v1/gates/slow/overrides"),
        &json!({"kind": "set_exposure", "cohort": "web", "exposure": 50, "actor": "sre", "reason": "half"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cluster.wait_converged().await;

    // Unit by unit, OFREP on a follower and Evaluate agree: value, variant, bucket.
    let mut gates = GatesClient::new(cluster.channel(follower).await);
    let one = cluster.url(follower, "/ofrep/v1/evaluate/flags/slow");
    let mut treated = 0;
    for n in 0..300 {
        let unit = format!("user-{n}");
        let cohort = if n % 2 == 0 { "web" } else { "mobile" };
        let (status, got) = post(
            &client,
            &one,
            &json!({"context": {"targetingKey": unit, "cohort": cohort, "country": "fr"}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let want = gates
            .evaluate(pb::EvaluateRequest {
                gate: "slow".into(),
                unit_id: unit.clone(),
                cohort: cohort.into(),
                consistency: pb::Consistency::Local as i32,
            })
            .await
            .expect("Evaluate")
            .into_inner();
        assert_eq!(got["key"], "slow");
        assert_eq!(got["value"], want.treatment, "{unit}: {got}");
        assert_eq!(got["variant"], want.variant.as_str(), "{unit}: {got}");
        // web's exposure is the operator's (set_exposure): a targeting match, not the split.
        let reason = if cohort == "web" {
            "TARGETING_MATCH"
        } else {
            "SPLIT"
        };
        assert_eq!(got["reason"], reason, "{unit}: {got}");
        assert_eq!(got["metadata"]["cohort"], cohort);
        assert_eq!(got["metadata"]["bucket"], want.bucket);
        assert_eq!(got["metadata"]["exposure"], want.exposure);
        assert_eq!(got["metadata"]["gate_version"], want.gate_version);
        treated += usize::from(want.treatment);
    }
    // web at 50% and mobile at the first stage (10%): some units in, most out.
    assert!((30..150).contains(&treated), "{treated} of 300 treated");

    // Bulk: every live gate, the same answer, tagged; the same tag again is a 304.
    let bulk = cluster.url(follower, "/ofrep/v1/evaluate/flags");
    let context = json!({"context": {"targetingKey": "user-0", "cohort": "web"}});
    let response = client
        .post(&bulk)
        .json(&context)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response
        .headers()
        .get("etag")
        .expect("an ETag")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("JSON");
    let flags = body["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 1, "{body}");
    let (_, single) = post(&client, &one, &context).await;
    assert_eq!(flags[0], single);
    let again = client
        .post(&bulk)
        .header("if-none-match", &etag)
        .json(&context)
        .send()
        .await
        .expect("POST");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // Another node answers the same, with the same tag.
    let other = client
        .post(cluster.url(leader_index(&cluster, leader), "/ofrep/v1/evaluate/flags"))
        .header("if-none-match", &etag)
        .json(&context)
        .send()
        .await
        .expect("POST");
    assert_eq!(other.status(), StatusCode::NOT_MODIFIED);

    // The kill switch: every node's answer changes to DISABLED, the fallback, a new tag.
    let (status, body) = post(
        &client,
        &cluster.url(follower, "/v1/gates/slow/overrides"),
        &json!({"kind": "kill", "actor": "sre", "reason": "drill"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cluster.wait_converged().await;
    for i in 0..3 {
        let response = client
            .post(cluster.url(i, "/ofrep/v1/evaluate/flags"))
            .header("if-none-match", &etag)
            .json(&context)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::OK, "node {i}: a new answer");
        assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
        let body: Value = response.json().await.expect("JSON");
        let flag = &body["flags"][0];
        assert_eq!(
            (&flag["value"], &flag["reason"], &flag["variant"]),
            (&json!(false), &json!("DISABLED"), &json!("old")),
            "node {i}: {flag}"
        );
    }

    // Errors in OFREP's codes and shapes.
    let (status, body) = post(
        &client,
        &cluster.url(follower, "/ofrep/v1/evaluate/flags/nope"),
        &context,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (&body["key"], &body["errorCode"]),
        (&json!("nope"), &json!("FLAG_NOT_FOUND")),
        "{body}"
    );
    let (status, body) = post(
        &client,
        &cluster.url(follower, "/ofrep/v1/evaluate/flags/Not%20A%20Gate"),
        &context,
    )
    .await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::NOT_FOUND, &json!("FLAG_NOT_FOUND"))
    );
    let cases = [
        (
            json!({"context": {"targetingKey": 7, "cohort": "web"}}),
            "INVALID_CONTEXT",
            "targetingKey",
        ),
        (
            json!({"context": {"targetingKey": "u", "cohort": "tv"}}),
            "INVALID_CONTEXT",
            "tv",
        ),
        (
            json!({"context": {"targetingKey": "u"}}),
            "INVALID_CONTEXT",
            "cohort",
        ),
        (json!({"context": "u"}), "PARSE_ERROR", "context"),
        (json!([1]), "PARSE_ERROR", "body"),
    ];
    for (request, code, named) in cases {
        let (status, body) = post(&client, &one, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert_eq!(body["errorCode"], code, "{request}: {body}");
        assert!(
            body["errorDetails"]
                .as_str()
                .is_some_and(|d| d.contains(named)),
            "{request}: {body}"
        );
    }
    let bad = client
        .post(&one)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    let (status, body) = json_of(bad).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::BAD_REQUEST, &json!("PARSE_ERROR"))
    );
    // A bulk request whose context is unreadable fails whole; one flag's cohort only that flag.
    let (status, body) = post(&client, &bulk, &json!({"context": 3})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::BAD_REQUEST, &json!("PARSE_ERROR"))
    );
    let (status, body) = post(
        &client,
        &bulk,
        &json!({"context": {"targetingKey": "u", "cohort": "tv"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["flags"][0]["errorCode"], "INVALID_CONTEXT", "{body}");

    // No targeting key: the fallback by default, never a bucket.
    let (status, body) = post(&client, &one, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["value"], &body["reason"], &body["variant"]),
        (&json!(false), &json!("DEFAULT"), &json!("old"))
    );
    let empty = client.post(&one).send().await.expect("POST");
    assert_eq!(
        empty.status(),
        StatusCode::OK,
        "an empty body is an empty context"
    );

    // The configuration says what rampart supports.
    let response = client
        .get(cluster.url(follower, "/ofrep/v1/configuration"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("etag"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["name"], "rampart");
    assert_eq!(
        body["capabilities"]["flagEvaluation"]["supportedTypes"],
        json!(["boolean"])
    );
    assert_eq!(
        body["capabilities"]["cacheInvalidation"]["polling"]["enabled"],
        true
    );
    cluster.stop().await;
}

fn leader_index(cluster: &Cluster, leader: u64) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| n.node.id == leader)
        .expect("the leader is a node")
}

const READER: &str = "reader-token-reader-token-0123456789ab";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_takes_a_bearer_token_or_an_api_key() {
    let cluster = Cluster::start_with(1, |config, dir| {
        with_http(config, dir);
        let path = dir.join("access.toml");
        let text = format!(
            "cluster_token = \"cluster-token-cluster-token-0123456789\"\n\
             [[tokens]]\nname = \"sdk\"\nrole = \"reader\"\ntoken = \"{READER}\"\n"
        );
        std::fs::write(&path, text).expect("access file");
        config.access = Some(path);
    })
    .await;
    cluster.wait_for_leader().await;
    let client = reqwest::Client::new();
    let config = cluster.url(0, "/ofrep/v1/configuration");
    let flag = cluster.url(0, "/ofrep/v1/evaluate/flags/none");

    let anonymous = client.get(&config).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(&config)
        .header("x-api-key", "not-a-token")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(
        client
            .post(&flag)
            .json(&json!({"context": {"targetingKey": "u"}}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an evaluation needs a token"
    );

    let keyed = client
        .get(&config)
        .header("x-api-key", READER)
        .send()
        .await
        .expect("GET");
    assert_eq!(keyed.status(), StatusCode::OK);
    let bearer = client
        .get(&config)
        .bearer_auth(READER)
        .send()
        .await
        .expect("GET");
    assert_eq!(bearer.status(), StatusCode::OK);
    let (status, body) = json_of(
        client
            .post(&flag)
            .header("x-api-key", READER)
            .json(&json!({"context": {"targetingKey": "u"}}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::NOT_FOUND, &json!("FLAG_NOT_FOUND")),
        "a reader evaluates: {body}"
    );
    cluster.stop().await;
}
