//! The HTTP edge over real HTTP against a 3-node cluster: probes, the JSON API (contracts,
//! signals with per-line rejections and idempotency, gates, decisions, overrides, cluster),
//! the Argo Rollouts verdict, the Flagger hooks, `/metrics`, and access control with tokens.

mod common;

use std::time::Duration;

use common::{now_ms, wait_until, with_http, Cluster, FAST_CONTRACT};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.text().await.expect("body");
    let value = serde_json::from_str(&body).unwrap_or_else(|_| json!({"text": body}));
    (status, value)
}

async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    json_of(client.get(url).send().await.expect("GET")).await
}

/// One healthy second of `fast` (both arms), as JSON lines at `at`.
fn healthy_lines(at: i64, cohort: &str) -> String {
    let at = rampart::engine::signal::format_time(at);
    [true, false]
        .iter()
        .map(|t| {
            json!({"gate": "fast", "metric": "error_rate", "cohort": cohort,
                "arm": if *t { "treatment" } else { "control" }, "at": at, "events": 1, "trials": 200})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a metric line `name{labels} value` in a scrape.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_json_api_hooks_and_metrics_over_real_http() {
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let client = reqwest::Client::new();

    for i in 0..3 {
        let (status, body) = get(&client, &cluster.url(i, "/healthz")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = get(&client, &cluster.url(i, "/readyz")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // A contract through a follower (forwarded to the leader), YAML as written.
    let put = client
        .put(cluster.url(follower, "/v1/contracts/fast"))
        .header("content-type", "application/yaml")
        .body(FAST_CONTRACT)
        .send()
        .await
        .expect("PUT");
    let (status, body) = json_of(put).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["contract_version"], 1);
    // The path and the body must agree on the gate.
    let (status, body) = json_of(
        client
            .put(cluster.url(follower, "/v1/contracts/other"))
            .body(FAST_CONTRACT)
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "gate");
    // A JSON contract with two cohorts, its gate taken from the path.
    let two = json!({"variants": {"treatment": "new", "fallback": "old"}, "ladder": [10, 100],
        "window": "1h", "stage_min_duration": "1h", "cohorts": ["mobile", "desktop"],
        "metrics": [{"name": "error_rate", "kind": "rate", "better": "lower", "guardrail": true, "kill": {"above": 0.05}}]});
    let put_two = |path: &'static str| {
        let request = client.put(cluster.url(follower, path)).json(&two);
        async move { json_of(request.send().await.expect("PUT")).await }
    };
    let (status, body) = put_two("/v1/contracts/two").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(&client, &cluster.url(follower, "/v1/contracts/two")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["yaml"]
            .as_str()
            .unwrap_or_default()
            .contains("desktop"),
        "{body}"
    );
    let version = body["contract_version"].clone();
    // `?if_changed=true`: the same contract again writes nothing; a bad flag names itself.
    for (path, unchanged) in [
        ("/v1/contracts/two?if_changed=true", true),
        ("/v1/contracts/two?if_changed=false", false),
    ] {
        let (status, body) = put_two(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["unchanged"], unchanged, "{path}: {body}");
        assert_eq!(
            body["contract_version"] == version,
            unchanged,
            "{path}: {body}"
        );
    }
    let (status, body) = put_two("/v1/contracts/two?if_changed=yes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "if_changed", "{body}");
    // An invalid contract names its field.
    let (status, body) = json_of(
        client
            .put(cluster.url(follower, "/v1/contracts/bad"))
            .json(&json!({"ladder": [10, 100], "window": "1h", "metrics": []}))
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_argument");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    // Signals: the key is required; good lines are kept beside a bad one.
    let signals_url = cluster.url(follower, "/v1/signals");
    let (status, body) = json_of(
        client
            .post(&signals_url)
            .body(healthy_lines(now_ms(), "mobile"))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "Idempotency-Key");
    // Wait for the gate's first full window: signals before it are refused by design.
    let first_window = cluster.nodes[0]
        .node
        .state
        .read()
        .state
        .gates
        .values()
        .find(|g| g.key.to_string() == "fast")
        .map(|g| g.first_window)
        .expect("gate");
    wait_until(Duration::from_secs(10), "the first window", || async {
        (now_ms() > first_window + 50).then_some(())
    })
    .await;
    let bad = json!({"gate": "fast", "metric": "error_rate", "cohort": "mobile", "arm": "treatment",
        "at": rampart::engine::signal::format_time(now_ms()), "events": 300, "trials": 200});
    let body = format!("{}\n{bad}\nnot json\n", healthy_lines(now_ms(), "mobile"));
    let push = || {
        client
            .post(&signals_url)
            .header("idempotency-key", "http-test-1")
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
    };
    let (status, first) = json_of(push().await.expect("POST")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["accepted"], 2, "{first}");
    assert_eq!(first["duplicate"], false);
    let lines: Vec<u64> = first["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![3, 4], "in the body's order: {first}");
    let events = first["rejections"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["line"] == 3))
        .expect("line 3");
    assert_eq!(events["field"], "events", "{first}");
    let (status, again) = json_of(push().await.expect("POST")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["duplicate"], true,
        "a retry counts nothing twice: {again}"
    );
    let (_, gate) = get(&client, &cluster.url(follower, "/v1/gates/fast")).await;
    assert_eq!(gate["signals_accepted"], 2, "{gate}");
    // The window aggregates hold the accepted lines, once, beside the rejected ones.
    let (status, w) = get(
        &client,
        &cluster.url(
            follower,
            "/v1/gates/fast/windows?cohort=mobile&metric=error_rate",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    let windows = w["windows"].as_array().expect("windows");
    let sum = |arm: &str| -> u64 {
        windows
            .iter()
            .map(|x| x[format!("samples_{arm}")].as_u64().expect("samples"))
            .sum()
    };
    assert_eq!((sum("treatment"), sum("control")), (200, 200), "{w}");
    assert!(windows.iter().all(|x| x["cohort"] == "mobile"), "{w}");
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/fast/windows?metric=nope"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/fast/windows?since=yesterday"),
    )
    .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("since")),
        "{body}"
    );
    // A JSON array names positions by index.
    let array = json!([{"gate": "fast"}]);
    let (status, body) = json_of(
        client
            .post(&signals_url)
            .header("idempotency-key", "http-test-2")
            .json(&array)
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejections"][0]["index"], 0, "{body}");

    // Reads and their errors.
    let (status, body) = get(&client, &cluster.url(follower, "/v1/gates")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["gates"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = get(&client, &cluster.url(follower, "/v1/gates/nope")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/fast?consistency=eventual"),
    )
    .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("consistency"))
    );
    let (status, body) = get(&client, &cluster.url(follower, "/v1/gates/fast?colour=red")).await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("colour"))
    );
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/fast?consistency=local"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["read"]["consistency"], "local");
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/fast/evaluate?unit=u-1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["bucket"].is_u64(), "{body}");
    let (status, body) = get(&client, &cluster.url(follower, "/v1/cluster")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["leader"], leader);
    assert_eq!(body["nodes"].as_array().map(Vec::len), Some(3), "{body}");

    // The Argo verdict, from any node.
    for i in 0..3 {
        let (status, v) = get(&client, &cluster.url(i, "/v1/gates/fast/verdict")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["cohort"], "mobile");
        assert_eq!(v["abort"], false, "{v}");
        assert_eq!(v["stale"], false, "{v}");
    }
    let (status, body) = get(&client, &cluster.url(follower, "/v1/gates/two/verdict")).await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("cohort"))
    );
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/two/verdict?cohort=tv"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let flagger = |hook: &str| {
        client
            .post(cluster.url(follower, &format!("/v1/flagger/{hook}")))
            .json(
                &json!({"name": "checkout", "namespace": "shop", "phase": "Progressing",
                "metadata": {"gate": "two", "cohort": "desktop"}}),
            )
            .send()
    };
    let go = flagger("confirm-rollout").await.expect("hook");
    assert_eq!(go.status(), StatusCode::OK);
    let wait = flagger("confirm-promotion").await.expect("hook");
    assert_eq!(wait.status(), StatusCode::FORBIDDEN);
    assert!(wait.text().await.expect("text").contains("two/desktop"));
    let no = flagger("rollback").await.expect("hook");
    assert_eq!(no.status(), StatusCode::FORBIDDEN);

    // A kill through the API: the verdict aborts, Flagger's rollback hook confirms.
    let (status, body) = json_of(
        client
            .post(cluster.url(follower, "/v1/gates/two/overrides"))
            .json(&json!({"kind": "kill", "actor": "sre", "reason": "drill"}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kill_switch"], true);
    let (status, body) = json_of(
        client
            .post(cluster.url(follower, "/v1/gates/two/overrides"))
            .json(&json!({"kind": "explode", "reason": "x"}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("kind"))
    );
    cluster.wait_converged().await;
    for i in 0..3 {
        let (_, v) = get(
            &client,
            &cluster.url(i, "/v1/gates/two/verdict?cohort=desktop"),
        )
        .await;
        assert_eq!(v["decision"], "kill", "{v}");
        assert_eq!(v["abort"], true, "{v}");
        assert!(
            v["summary"].as_str().is_some_and(|s| s.contains("drill")),
            "{v}"
        );
    }
    assert_eq!(
        flagger("rollback").await.expect("hook").status(),
        StatusCode::OK
    );
    assert_eq!(
        flagger("confirm-traffic-increase")
            .await
            .expect("hook")
            .status(),
        StatusCode::FORBIDDEN
    );
    let (status, body) = get(
        &client,
        &cluster.url(follower, "/v1/gates/two/decisions?limit=1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["decisions"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );

    // Metrics: one leader among the three; the kill switch on every node; counters moved.
    let mut leaders = 0.0;
    for i in 0..3 {
        let response = client
            .get(cluster.url(i, "/metrics"))
            .send()
            .await
            .expect("scrape");
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/openmetrics-text")));
        let text = response.text().await.expect("text");
        assert!(text.ends_with("# EOF\n"), "{text}");
        leaders += metric(&text, "rampart_server_is_leader").expect("is_leader");
        assert_eq!(metric(&text, "rampart_server_has_leader"), Some(1.0));
        assert_eq!(
            metric(&text, "rampart_gate_kill_switch{gate=\"two\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            metric(&text, "rampart_gate_signals_accepted_total{gate=\"fast\"}"),
            Some(2.0),
            "{text}"
        );
        assert!(
            text.contains("rampart_disk_wal_fsync_duration_seconds_count"),
            "{text}"
        );
        if i == follower {
            assert_eq!(
                metric(&text, "rampart_signals_accepted_total"),
                Some(2.0),
                "{text}"
            );
            // Lines the edge could not read count once, though the body was sent twice.
            for field in ["events", "line"] {
                assert_eq!(
                    metric(
                        &text,
                        &format!(
                            "rampart_signals_rejected_total{{field=\"{field}\",reason=\"invalid\"}}"
                        )
                    ),
                    Some(1.0),
                    "{text}"
                );
            }
            assert!(
                metric(&text, "rampart_http_requests_total{route=\"/v1/signals\",method=\"POST\",code=\"200\"}")
                    .is_some_and(|n| n >= 3.0),
                "{text}"
            );
        }
    }
    assert_eq!(leaders, 1.0, "exactly one node says it leads");

    // With the leader and one follower gone, the last node answers the verdict, stale.
    let last = (0..3)
        .find(|i| *i != follower && cluster.nodes[*i].node.id != leader)
        .expect("the other follower");
    let verdict_url = cluster.url(last, "/v1/gates/two/verdict?cohort=desktop");
    let readyz = cluster.url(last, "/readyz");
    let mut nodes = cluster.nodes;
    let kept = nodes.remove(last);
    for n in nodes {
        n.stop().await.expect("stop");
    }
    let stale = wait_until(Duration::from_secs(10), "a stale verdict", || async {
        let (status, v) = get(&client, &verdict_url).await;
        (status == StatusCode::OK && v["stale"] == true).then_some(v)
    })
    .await;
    assert_eq!(
        stale["decision"], "kill",
        "still the last known decision: {stale}"
    );
    assert_eq!(
        client.get(&readyz).send().await.expect("readyz").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    kept.stop().await.expect("stop");
}

/// Flagger's answer to `hook` on `gate` from node `i`: the status and its one line.
async fn flagger_hook(
    client: &reqwest::Client,
    cluster: &Cluster,
    i: usize,
    hook: &str,
    gate: &str,
) -> (StatusCode, String) {
    let response = client
        .post(cluster.url(i, &format!("/v1/flagger/{hook}")))
        .json(
            &json!({"name": "checkout", "namespace": "shop", "phase": "Progressing",
            "metadata": {"gate": gate}}),
        )
        .send()
        .await
        .expect("hook");
    (response.status(), response.text().await.expect("text"))
}

/// Contracts listed and deleted through a follower, linearizable reads on the followers, a
/// refused retry counted once, and Flagger's "go on" answers once rampart would go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contracts_reads_and_flagger_go_answers_through_followers() {
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let followers: Vec<usize> = (0..3)
        .filter(|i| cluster.nodes[*i].node.id != leader)
        .collect();
    let client = reqwest::Client::new();
    let on = |path: &str| cluster.url(follower, path);
    // Hour-long windows: none closes during the test, so only the overrides move the cohort.
    let hourly = json!({"variants": {"treatment": "new", "fallback": "old"}, "ladder": [10, 50, 100],
        "window": "1h", "stage_min_duration": "1h", "cohorts": ["web"],
        "metrics": [{"name": "error_rate", "kind": "rate", "better": "lower", "guardrail": true, "kill": {"above": 0.05}}]});
    let (status, put) = json_of(
        client
            .put(on("/v1/contracts/hourly"))
            .json(&hourly)
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");

    // The list names the gate, at the version just written.
    let (status, list) = get(&client, &on("/v1/contracts")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let contracts = list["contracts"].as_array().expect("contracts");
    assert_eq!(contracts.len(), 1, "{list}");
    assert_eq!(contracts[0]["gate"], "hourly", "{list}");
    assert_eq!(
        contracts[0]["contract_version"], put["contract_version"],
        "{list}"
    );

    // Signals the state machine refuses, sent twice under one key, count once.
    let at = rampart::engine::signal::format_time(now_ms());
    let refused = [("hourly", "tablet"), ("nope", "web")]
        .iter()
        .map(|(gate, cohort)| {
            json!({"gate": gate, "metric": "error_rate", "cohort": cohort, "arm": "treatment",
                "at": at, "events": 1, "trials": 10})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    for _ in 0..2 {
        let (status, body) = json_of(
            client
                .post(on("/v1/signals"))
                .header("idempotency-key", "refused-twice")
                .header("content-type", "application/x-ndjson")
                .body(refused.clone())
                .send()
                .await
                .expect("POST"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rejected"], 2, "{body}");
    }
    let scrape = client
        .get(on("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    for (field, reason) in [("cohort", "unknown_cohort"), ("gate", "unknown_gate")] {
        assert_eq!(
            metric(
                &scrape,
                &format!("rampart_signals_rejected_total{{field=\"{field}\",reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{scrape}"
        );
    }

    // A ramping cohort may take more traffic but not be promoted yet.
    let (status, text) = wait_until(Duration::from_secs(10), "the follower's go", || async {
        let answer = flagger_hook(
            &client,
            &cluster,
            follower,
            "confirm-traffic-increase",
            "hourly",
        )
        .await;
        (answer.0 == StatusCode::OK).then_some(answer)
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.starts_with("go: hourly/web is ramping at 10%"),
        "{text}"
    );
    let (status, text) =
        flagger_hook(&client, &cluster, follower, "confirm-promotion", "hourly").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");

    // An operator takes the cohort to the last stage: every follower reads that version at
    // once when it asks for a linearizable read, and Flagger may promote.
    let mut written = 0;
    for (kind, exposure) in [("set_exposure", json!(100)), ("resume", Value::Null)] {
        let (status, decision) = json_of(
            client
                .post(on("/v1/gates/hourly/overrides"))
                .json(&json!({"kind": kind, "exposure": exposure, "actor": "sre", "reason": "ship it"}))
                .send()
                .await
                .expect("POST"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{decision}");
        written = decision["version"].as_u64().expect("version");
        for &i in &followers {
            let (status, gate) = get(
                &client,
                &cluster.url(i, "/v1/gates/hourly?consistency=linearizable"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{gate}");
            assert_eq!(gate["version"], written, "node {i} after {kind}: {gate}");
            assert_eq!(gate["read"]["consistency"], "linearizable", "{gate}");
        }
    }
    let (_, gate) = get(&client, &on("/v1/gates/hourly?consistency=linearizable")).await;
    assert_eq!(gate["cohorts"][0]["status"], "complete", "{gate}");
    let (status, text) = wait_until(
        Duration::from_secs(10),
        "the follower's promotion",
        || async {
            let answer =
                flagger_hook(&client, &cluster, follower, "confirm-promotion", "hourly").await;
            (answer.0 == StatusCode::OK).then_some(answer)
        },
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.starts_with("go: hourly/web is complete at 100% (stage 2)"),
        "{text}"
    );
    let (status, text) = flagger_hook(
        &client,
        &cluster,
        follower,
        "confirm-traffic-increase",
        "hourly",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // Deleted through a follower: gone from every node's contracts, the gate retired.
    let (status, deleted) = json_of(
        client
            .delete(on("/v1/contracts/hourly"))
            .send()
            .await
            .expect("DELETE"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["gate"], "hourly", "{deleted}");
    let retired = deleted["gate_version"].as_u64().expect("gate_version");
    assert!(retired > written, "{deleted}");
    for i in 0..3 {
        wait_until(Duration::from_secs(10), "the delete applied", || async {
            let (status, _) = get(
                &client,
                &cluster.url(i, "/v1/contracts/hourly?consistency=local"),
            )
            .await;
            (status == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
        let (_, list) = get(&client, &cluster.url(i, "/v1/contracts?consistency=local")).await;
        assert_eq!(list["contracts"], json!([]), "node {i}: {list}");
        let (status, gate) = get(
            &client,
            &cluster.url(i, "/v1/gates/hourly?consistency=local"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{gate}");
        assert_eq!(
            (gate["deleted"].clone(), gate["version"].clone()),
            (json!(true), json!(retired)),
            "node {i}: {gate}"
        );
        let (status, text) = flagger_hook(&client, &cluster, i, "confirm-rollout", "hourly").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "node {i}: {text}");
    }
    cluster.stop().await;
}

const CLUSTER_TOKEN: &str = "cluster-token-cluster-token-0123456789";
const READER: &str = "reader-token-reader-token-0123456789ab";
const OPERATOR: &str = "operator-token-operator-token-01234567";

fn access(protect_probes: bool) -> impl Fn(&mut rampart::node::NodeConfig, &std::path::Path) {
    move |config, dir| {
        let path = dir.join(format!("access-{}.toml", config.id));
        let text = format!(
            "cluster_token = \"{CLUSTER_TOKEN}\"\nprotect_probes = {protect_probes}\n\
             [[tokens]]\nname = \"dash\"\nrole = \"reader\"\ntoken = \"{READER}\"\n\
             [[tokens]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = \"{}\"\n",
            rampart::auth::hash_token(OPERATOR)
        );
        std::fs::write(&path, text).expect("access file");
        config.access = Some(path);
        with_http(config, dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_and_roles_guard_the_http_api() {
    let cluster = Cluster::start_with(3, access(false)).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let client = reqwest::Client::new();
    let gates = cluster.url(follower, "/v1/gates");

    let none = client.get(&gates).send().await.expect("GET");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let (_, body) = json_of(none).await;
    assert_eq!(body["field"], "authorization", "{body}");
    let wrong = client
        .get(&gates)
        .bearer_auth("x".repeat(40))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = client
        .get(&gates)
        .bearer_auth(READER)
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status(), StatusCode::OK);

    let put = |token: &'static str| {
        client
            .put(cluster.url(follower, "/v1/contracts/fast"))
            .bearer_auth(token)
            .body(FAST_CONTRACT)
            .send()
    };
    let (status, body) = json_of(put(READER).await.expect("PUT")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "permission_denied");
    // An operator (its token stored hashed) may change contracts and act; the decision
    // names the token.
    let (status, body) = json_of(put(OPERATOR).await.expect("PUT")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, decision) = json_of(
        client
            .post(cluster.url(follower, "/v1/gates/fast/overrides"))
            .bearer_auth(OPERATOR)
            .json(&json!({"kind": "hold", "actor": "sre", "reason": "look"}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(
        decision["decided_by"], "operator:sre (token oncall)",
        "{decision}"
    );

    // Probes are open by default.
    assert_eq!(
        client
            .get(cluster.url(follower, "/metrics"))
            .send()
            .await
            .expect("scrape")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(cluster.url(follower, "/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        StatusCode::OK
    );
    cluster.stop().await;

    let cluster = Cluster::start_with(1, access(true)).await;
    let scrape = cluster.url(0, "/metrics");
    assert_eq!(
        client.get(&scrape).send().await.expect("scrape").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client
            .get(&scrape)
            .bearer_auth(READER)
            .send()
            .await
            .expect("scrape")
            .status(),
        StatusCode::OK
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_in_the_openapi_document_is_served() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .expect("docs/openapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let paths = doc["paths"].as_mapping().expect("paths");
    assert!(paths.len() >= 14, "the document lists the routes");
    let cluster = Cluster::start_with(1, with_http).await;
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, item) in paths {
        let path = path.as_str().expect("path");
        let concrete = path
            .replace("{gate}", "fast")
            .replace("{hook}", "confirm-rollout");
        for (method, _) in item.as_mapping().expect("operations") {
            let method = method.as_str().expect("method").to_uppercase();
            let response = client
                .request(method.parse().expect("method"), cluster.url(0, &concrete))
                .header("idempotency-key", "route-check")
                .json(&json!({}))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let (_, body) = json_of(response).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let unrouted = body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no route"));
            assert!(
                !unrouted,
                "{method} {path} is documented but not served: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 16, "{checked} operations");
    // And an undocumented path answers the API's error shape.
    let (status, body) = get(&client, &cluster.url(0, "/v1/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    cluster.stop().await;
}

/// What schemathesis (tests/schemathesis/run.sh) found: each bad request is a 4xx in the
/// API's error shape naming the part of the request at fault, never a plain-text answer or an
/// input quietly taken for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_found_by_fuzzing_name_their_field() {
    let cluster = Cluster::start_with(1, with_http).await;
    cluster.wait_for_leader().await;
    let client = reqwest::Client::new();
    let put = client
        .put(cluster.url(0, "/v1/contracts/fast"))
        .body(FAST_CONTRACT)
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    let error = |status: StatusCode, field: &str, body: &Value| {
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["code"].is_string() && body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(status.is_client_error(), "{status} {body}");
    };

    // An empty consistency is not the default: the enum has no empty value.
    for path in [
        "/v1/gates?consistency=",
        "/v1/gates/fast?consistency=",
        "/v1/contracts?consistency=",
        "/v1/contracts/fast?consistency=",
        "/v1/gates/fast?consistency=LOCAL",
    ] {
        let (status, body) = get(&client, &cluster.url(0, path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        error(status, "consistency", &body);
    }
    // A path parameter that is not UTF-8 once decoded: JSON naming it, not axum's plain text.
    for (path, field) in [
        ("/v1/gates/%FF", "gate"),
        ("/v1/gates/%FF/verdict", "gate"),
        ("/v1/flagger/%FF", "hook"),
    ] {
        let response = client
            .request(
                if field == "hook" {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                cluster.url(0, path),
            )
            .send()
            .await
            .expect("request");
        assert!(
            response
                .headers()
                .get("content-type")
                .is_some_and(|t| t == "application/json"),
            "{path}: {:?}",
            response.headers()
        );
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        error(status, field, &body);
    }
    // Evaluate's unit is the query's `unit`, not the gRPC field's `unit_id`.
    let (status, body) = get(&client, &cluster.url(0, "/v1/gates/fast/evaluate")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    error(status, "unit", &body);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unit:")),
        "{body}"
    );
    // A method a route does not take: 405 with Allow, in the error shape.
    let response = client
        .post(cluster.url(0, "/v1/gates"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("GET")),
        "{:?}",
        response.headers()
    );
    let (status, body) = json_of(response).await;
    error(status, "method", &body);
    assert_eq!(body["code"], "unimplemented", "{body}");
    // A limit above the most a page holds is that most, not a 400.
    let (status, body) = get(
        &client,
        &cluster.url(0, "/v1/gates/fast/decisions?limit=99999999999"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Flagger's payload fields are typed as documented, even those rampart does not read.
    let (status, body) = json_of(
        client
            .post(cluster.url(0, "/v1/flagger/confirm-rollout"))
            .json(&json!({"phase": 5, "metadata": {"gate": "fast"}}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    error(status, "body", &body);
    // A body sent as JSON is a JSON array of signals: one object is a 400, not a JSON line.
    let (status, body) = json_of(
        client
            .post(cluster.url(0, "/v1/signals"))
            .header("idempotency-key", "fuzzed-1")
            .json(&json!({"gate": "fast"}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    error(status, "body", &body);
    // ... while the same line as JSON lines is read, and refused by line.
    let (status, body) = json_of(
        client
            .post(cluster.url(0, "/v1/signals"))
            .header("idempotency-key", "fuzzed-2")
            .header("content-type", "application/x-ndjson")
            .body(json!({"gate": "fast"}).to_string())
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rejections"][0]["line"], 1, "{body}");
    cluster.stop().await;
}

/// A body over the request limit is refused before it is read, as a 413 in the API's error
/// shape naming the body; a body of exactly the limit is read (and refused for what it says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_request_limit_is_a_413_naming_the_body() {
    let cluster = Cluster::start_with(1, with_http).await;
    cluster.wait_for_leader().await;
    let client = reqwest::Client::new();
    let limit = rampart::api::MAX_REQUEST_BYTES;
    let over = "#".repeat(limit + 1);
    let sent = [
        client
            .post(cluster.url(0, "/v1/signals"))
            .header("idempotency-key", "too-large")
            .header("content-type", "application/x-ndjson")
            .body(over.clone()),
        client
            .put(cluster.url(0, "/v1/contracts/fast"))
            .header("content-type", "application/yaml")
            .body(over),
    ];
    for request in sent {
        let response = request.send().await.expect("request");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|t| t.to_str().ok()),
            Some("application/json"),
            "{:?}",
            response.headers()
        );
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["code"], "invalid_argument", "{body}");
        assert_eq!(body["field"], "body", "{body}");
        assert_eq!(
            body["message"],
            format!("body: is larger than the {limit} bytes a request may carry"),
            "{body}"
        );
    }
    // Exactly the limit is read: a YAML comment is no contract (400, not 413).
    let (status, body) = json_of(
        client
            .put(cluster.url(0, "/v1/contracts/fast"))
            .header("content-type", "application/yaml")
            .body("#".repeat(limit))
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "body", "{body}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_name_only_metrics_a_node_serves() {
    // Three nodes, scraped at the leader (it alone has the replication series) and at a
    // follower.
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let at = cluster.index_of(leader);
    let client = reqwest::Client::new();
    // And a gate, for the gates' series.
    let put = client
        .put(cluster.url(at, "/v1/contracts/fast"))
        .body(FAST_CONTRACT)
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    // And a refused signal, for the rejection series.
    let push = client
        .post(cluster.url(at, "/v1/signals"))
        .header("idempotency-key", "names")
        .body("{\"gate\": \"fast\"}")
        .send()
        .await
        .expect("POST");
    assert_eq!(push.status(), StatusCode::OK);
    // And gRPC calls, for the per-method series: one answered, one refused.
    let mut gates = rampart::proto::v1::gates_client::GatesClient::new(cluster.channel(at).await);
    gates
        .list_gates(rampart::proto::v1::ListGatesRequest::default())
        .await
        .expect("gRPC");
    let missing = gates
        .get_gate(rampart::proto::v1::GetGateRequest {
            gate: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("no such gate");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let scrape = client
        .get(cluster.url(at, "/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    // And a follower, for the follower-only series (its clock against the leader's time,
    // there from the leader's first clock read).
    let follower = (at + 1) % cluster.nodes.len();
    let on_follower = wait_until(Duration::from_secs(10), "a follower's clock series", || {
        let request = client.get(cluster.url(follower, "/metrics"));
        async move {
            let text = request.send().await.ok()?.text().await.ok()?;
            text.contains("rampart_clock_offset_from_leader_seconds{")
                .then_some(text)
        }
    })
    .await;
    // Status codes by their canonical gRPC names, as go-grpc-prometheus labels them.
    for (method, code) in [("ListGates", "OK"), ("GetGate", "NotFound")] {
        let series = format!(
            "rampart_grpc_server_handled_total{{grpc_service=\"rampart.v1.Gates\",grpc_method=\"{method}\",grpc_code=\"{code}\"}}"
        );
        assert_eq!(metric(&scrape, &series), Some(1.0), "{series} in {scrape}");
    }
    let served: std::collections::BTreeSet<&str> = scrape
        .lines()
        .chain(on_follower.lines())
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for file in [
        "cluster/prometheus/alerts.yml",
        "cluster/grafana/rampart.json",
    ] {
        let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR")))
            .expect("file");
        let used = metric_names(&text);
        assert!(used.len() >= 5, "{file} uses rampart's metrics");
        for metric in used {
            let base = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| metric.strip_suffix(s))
                .unwrap_or(&metric);
            assert!(
                served.contains(base),
                "{file} uses {metric}, which a node does not serve"
            );
        }
    }
    cluster.stop().await;
}

/// Every `rampart_...` metric name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("rampart_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// The Argo manifests do what their comments say: the background analysis has an interval
/// and no count (Argo measures it until the Rollout completes) and fails on an abort only;
/// each step's analysis takes a bounded number of verdicts; every template named is shipped.
#[test]
fn argo_aborts_in_the_background_and_bounds_each_step() {
    let read = |file: &str| -> Vec<serde_yaml::Value> {
        let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR")))
            .expect("file");
        serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
            .collect()
    };
    let templates: std::collections::HashMap<String, serde_yaml::Value> =
        read("cluster/argo/analysis-template.yaml")
            .into_iter()
            .map(|t| {
                assert_eq!(t["kind"], "AnalysisTemplate");
                (t["metadata"]["name"].as_str().expect("name").to_owned(), t)
            })
            .collect();
    let metrics = |name: &str| -> Vec<serde_yaml::Value> {
        templates
            .get(name)
            .unwrap_or_else(|| panic!("rollout.yaml names {name}, which is not shipped"))["spec"]
            ["metrics"]
            .as_sequence()
            .expect("metrics")
            .clone()
    };
    let rollout = read("cluster/argo/rollout.yaml").remove(0);
    let canary = &rollout["spec"]["strategy"]["canary"];
    let names = |analysis: &serde_yaml::Value| -> Vec<String> {
        analysis["templates"]
            .as_sequence()
            .expect("templates")
            .iter()
            .map(|t| t["templateName"].as_str().expect("templateName").to_owned())
            .collect()
    };
    for name in names(&canary["analysis"]) {
        for m in metrics(&name) {
            assert!(m["interval"].is_string(), "{name}: {m:?}");
            assert!(m.get("count").is_none(), "{name} would end: {m:?}");
            assert!(m.get("consecutiveSuccessLimit").is_none(), "{name}: {m:?}");
            assert!(m.get("successCondition").is_none(), "{name}: {m:?}");
            assert_eq!(m["failureCondition"], "result.abort == true", "{name}");
            assert_eq!(m["failureLimit"], 0, "{name}");
        }
    }
    let steps: Vec<&serde_yaml::Value> = canary["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .filter_map(|s| s.get("analysis"))
        .collect();
    assert!(!steps.is_empty(), "the steps wait for rampart");
    for step in steps {
        for name in names(step) {
            for m in metrics(&name) {
                let count = m["count"].as_u64().expect("a step's analysis has a count");
                assert!((1..=10).contains(&count), "{name}: {m:?}");
                assert!(count == 1 || m["interval"].is_string(), "{name}: {m:?}");
                assert_eq!(m["successCondition"], "result.promote == true", "{name}");
                assert_eq!(m["failureCondition"], "result.abort == true", "{name}");
            }
        }
    }
}
