//! The operator console over real HTTP against real clusters (the browser drives the same
//! pages in tests/console/): every page from every node, a rollback's evidence on the gate and
//! decision pages, a kill thrown from a form reaching every node and the events stream, forms
//! refused without their CSRF token or reason, and with an access file: sign-in, a reader
//! without actions, an operator with them.

mod common;

use std::time::Duration;

use common::{now_ms, wait_until, with_http, Cluster, FAST_CONTRACT};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

/// A client that does not follow redirects (the tests read the 303s).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A browser's worth of state: the session cookie the console set.
#[derive(Default)]
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    fn keep(&mut self, response: &reqwest::Response) {
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Strict"),
                "{set}"
            );
            let pair = set.split(';').next().expect("cookie pair");
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair.to_owned())
            };
        }
    }

    async fn get(&mut self, client: &reqwest::Client, url: &str) -> (StatusCode, String) {
        let mut request = client.get(url);
        if let Some(c) = &self.cookie {
            request = request.header(header::COOKIE, c);
        }
        let response = request.send().await.expect("GET");
        self.keep(&response);
        let status = response.status();
        (status, response.text().await.expect("page"))
    }

    /// Posts a form; the status, the redirect's target and the body.
    async fn post(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = client
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = &self.cookie {
            request = request.header(header::COOKIE, c);
        }
        let response = request.send().await.expect("POST");
        self.keep(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("location").to_owned());
        (status, location, response.text().await.expect("body"))
    }
}

/// The value of the page's first CSRF field.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

async fn gate_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("GET");
    response.json().await.expect("JSON")
}

/// One second of `fast` in `cohort` at `at`: control healthy, treatment at `bad` errors per 200.
fn lines(at: i64, bad: u64) -> String {
    let at = rampart::engine::signal::format_time(at);
    [("treatment", bad), ("control", 1)]
        .iter()
        .map(|(arm, events)| {
            json!({"gate": "fast", "metric": "error_rate", "cohort": "mobile", "arm": arm,
                "at": at, "events": events, "trials": 200})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_shows_a_rollback_and_acts_from_any_node() {
    let cluster = Cluster::start_with(3, with_http).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.follower(leader);
    let client = client();
    let put = client
        .put(cluster.url(follower, "/v1/contracts/fast"))
        .body(FAST_CONTRACT)
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    let first_window: i64 = {
        let g = gate_json(&client, &cluster.url(follower, "/v1/gates/fast")).await;
        let since = g["cohorts"][0]["stage_since"]
            .as_str()
            .expect("stage_since");
        rampart::engine::signal::parse_time("stage_since", since).expect("time")
    };
    // The treatment's error rate at 10% against a 5% ceiling, every second until it rolls back.
    let mut n = 0;
    let rolled_back = wait_until(Duration::from_secs(30), "the rollback", || {
        n += 1;
        let (client, signals) = (&client, cluster.url(follower, "/v1/signals"));
        let gate = cluster.url(follower, "/v1/gates/fast");
        async move {
            let now = now_ms();
            if now > first_window + 50 {
                client
                    .post(signals)
                    .header("idempotency-key", format!("console-{n}"))
                    .body(lines(now, 20))
                    .send()
                    .await
                    .expect("signals");
            }
            // The engine writes a decision per window: the rollback is soon not the last.
            let list = gate_json(client, &format!("{gate}/decisions?limit=1000")).await;
            list["decisions"].as_array().and_then(|ds| {
                ds.iter()
                    .find(|d| {
                        d["action"]
                            .as_str()
                            .is_some_and(|a| a.starts_with("rollback"))
                    })
                    .and_then(|d| d["version"].as_u64())
            })
        }
    })
    .await;

    // Every page from every node: the gates, the gate with the rollback and its evidence, the
    // decision, the cluster.
    for i in 0..3 {
        let mut b = Browser::default();
        let (status, page) = b.get(&client, &cluster.url(i, "/")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(b.cookie.is_some(), "a session cookie is set");
        assert!(page.contains("data-gate=\"fast\""), "{page}");
        let (status, page) = b.get(&client, &cluster.url(i, "/console/gates/fast")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains(&format!(
                "data-version=\"{rolled_back}\" data-action=\"rollback"
            )),
            "the rollback is in the decisions table: {page}"
        );
        assert!(page.contains("data-metric=\"error_rate\""), "{page}");
        assert!(page.contains("<svg"), "charts are drawn: {page}");
        assert!(
            page.contains("form class=\"act\""),
            "no access file: actions shown"
        );
        let (status, page) = b
            .get(
                &client,
                &cluster.url(i, &format!("/console/gates/fast/decisions/{rolled_back}")),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("data-metric=\"error_rate\" data-cohort=\"mobile\" data-zone=\"kill\""),
            "the kill-zone evidence: {page}"
        );
        assert!(page.contains("the engine on leader node"), "{page}");
        let (status, page) = b.get(&client, &cluster.url(i, "/console/cluster")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page.matches("<tr data-node=").count(), 3, "{page}");
        assert!(page.contains("data-role=\"leader\""), "{page}");
    }
    let (status, page) = Browser::default()
        .get(&client, &cluster.url(0, "/console/gates/nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (status, page) = Browser::default()
        .get(&client, &cluster.url(0, "/?sort=size"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("data-field=\"sort\""), "{page}");

    // A second gate, healthy (the rollback's kill zone already turned the first one's switch
    // on), and node 3's events stream for it, open before the kill.
    let calm = FAST_CONTRACT.replace("gate: fast", "gate: calm");
    let put = client
        .put(cluster.url(cluster.index_of(leader), "/v1/contracts/calm"))
        .body(calm)
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    let mut events = client
        .get(cluster.url(2, "/console/events?gate=calm"))
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()[header::CONTENT_TYPE], "text/event-stream");

    // Forms: refused without the CSRF token, without a cookie, without a reason.
    let mut b = Browser::default();
    let actions = cluster.url(1, "/console/gates/calm/actions");
    let (_, page) = b.get(&client, &cluster.url(1, "/console/gates/calm")).await;
    let token = csrf(&page);
    let kill = [
        ("csrf", token.as_str()),
        ("kind", "kill"),
        ("cohort", ""),
        ("actor", "sre"),
        ("reason", "drill from the console"),
    ];
    let (status, _, page) = b.post(&client, &actions, &kill[1..]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-field=\"csrf\""), "{page}");
    let (status, _, page) = Browser::default().post(&client, &actions, &kill).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another session's token: {page}"
    );
    let (status, _, page) = b.post(&client, &actions, &kill[..4]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("data-field=\"reason\""), "{page}");
    let unchanged = gate_json(&client, &cluster.url(0, "/v1/gates/calm")).await;
    assert_eq!(unchanged["kill_switch"], false, "{unchanged}");

    // The kill, from node 2's page: a 303 back to the gate naming the decision, the switch on
    // every node, the decision on node 3's stream.
    let (status, location, page) = b.post(&client, &actions, &kill).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let location = location.expect("a redirect");
    let version: u64 = location
        .strip_prefix("/console/gates/calm?done=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{location}"));
    for i in 0..3 {
        let on = cluster.url(i, "/v1/gates/calm?consistency=local");
        wait_until(Duration::from_secs(10), "the kill on every node", || {
            let (client, on) = (&client, on.clone());
            async move { (gate_json(client, &on).await["kill_switch"] == true).then_some(()) }
        })
        .await;
    }
    let decision = gate_json(
        &client,
        &cluster.url(
            0,
            &format!(
                "/v1/gates/calm/decisions?after_version={}&limit=1",
                version - 1
            ),
        ),
    )
    .await;
    assert_eq!(
        decision["decisions"][0]["reason"], "kill by sre: drill from the console",
        "{decision}"
    );
    assert_eq!(
        decision["decisions"][0]["decided_by"], "operator:sre",
        "{decision}"
    );
    let wanted = format!("\"version\":{version}");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&wanted) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("the decision on the events stream in time")
            .expect("stream")
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: decision"), "{seen}");
    assert!(
        seen.contains(&format!("\"changed\":true,\"gate\":\"calm\",{wanted}")),
        "the kill is marked as a change: {seen}"
    );
    let (_, page) = b
        .get(
            &client,
            &cluster.url(0, &format!("/console/gates/calm?done={version}")),
        )
        .await;
    assert!(page.contains("kill switch on"), "{page}");
    cluster.stop().await;
}

const CLUSTER_TOKEN: &str = "cluster-token-cluster-token-0123456789";
const READER: &str = "reader-token-reader-token-0123456789ab";
const OPERATOR: &str = "operator-token-operator-token-01234567";

fn access(config: &mut rampart::node::NodeConfig, dir: &std::path::Path) {
    let path = dir.join(format!("access-{}.toml", config.id));
    let text = format!(
        "cluster_token = \"{CLUSTER_TOKEN}\"\n\
         [[tokens]]\nname = \"dash\"\nrole = \"reader\"\ntoken = \"{READER}\"\n\
         [[tokens]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = \"{OPERATOR}\"\n"
    );
    std::fs::write(&path, text).expect("access file");
    config.access = Some(path);
    with_http(config, dir);
}

/// Signs `b` in with `token` through the sign-in form.
async fn sign_in(b: &mut Browser, client: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    let (status, page) = b.get(client, &format!("{base}/console/sign-in")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let form = [("csrf", csrf(&page)), ("token", token.to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, page) = b
        .post(client, &format!("{base}/console/sign-in"), &form)
        .await;
    if status == StatusCode::SEE_OTHER {
        assert_eq!(location.as_deref(), Some("/"), "{page}");
    }
    status
}

/// One node configured by `configure` with the gate `fast` (put with `token`), a client and
/// the node's HTTP base URL.
async fn one_node_with_fast(
    configure: fn(&mut rampart::node::NodeConfig, &std::path::Path),
    token: Option<&str>,
) -> (Cluster, reqwest::Client, String) {
    let cluster = Cluster::start_with(1, configure).await;
    let client = client();
    let base = cluster.nodes[0].http_url().expect("http");
    let mut put = client
        .put(format!("{base}/v1/contracts/fast"))
        .body(FAST_CONTRACT);
    if let Some(token) = token {
        put = put.bearer_auth(token);
    }
    let put = put.send().await.expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    (cluster, client, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_an_access_file_only_a_signed_in_operator_acts() {
    let (cluster, client, base) = one_node_with_fast(access, Some(OPERATOR)).await;

    // Nobody signed in: the node wants a token, and the page says where to give it.
    let mut nobody = Browser::default();
    let (status, page) = nobody.get(&client, &format!("{base}/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(page.contains("/console/sign-in"), "{page}");
    assert_eq!(
        sign_in(
            &mut nobody,
            &client,
            &base,
            "not-a-token-not-a-token-0123456789"
        )
        .await,
        StatusCode::UNAUTHORIZED
    );

    // A reader sees the gate and no action; a forged form is refused by the role.
    let mut reader = Browser::default();
    assert_eq!(
        sign_in(&mut reader, &client, &base, READER).await,
        StatusCode::SEE_OTHER
    );
    let (status, page) = reader
        .get(&client, &format!("{base}/console/gates/fast"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("dash (reader)"), "{page}");
    assert!(
        !page.contains("form class=\"act\""),
        "a reader gets no actions: {page}"
    );
    assert!(!page.contains("name=\"kind\""), "{page}");
    let token = csrf(&page);
    let (status, _, page) = reader
        .post(
            &client,
            &format!("{base}/console/gates/fast/actions"),
            &[("csrf", &token), ("kind", "hold"), ("reason", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("data-code=\"permission_denied\""), "{page}");

    // An operator acts, recorded under their token's name.
    let mut operator = Browser::default();
    assert_eq!(
        sign_in(&mut operator, &client, &base, OPERATOR).await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = operator
        .get(&client, &format!("{base}/console/gates/fast"))
        .await;
    assert!(page.contains("form class=\"act\""), "{page}");
    assert!(
        !page.contains("name=\"actor\""),
        "the token names the operator: {page}"
    );
    let token = csrf(&page);
    let (status, location, page) = operator
        .post(
            &client,
            &format!("{base}/console/gates/fast/actions"),
            &[
                ("csrf", &token),
                ("kind", "hold"),
                ("cohort", "mobile"),
                ("reason", "looking"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let version: u64 = location
        .as_deref()
        .and_then(|l| l.strip_prefix("/console/gates/fast?done="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{location:?}"));
    let read = |path: String| {
        let client = &client;
        async move {
            let response = client.get(path).bearer_auth(READER).send().await;
            response.expect("GET").json::<Value>().await.expect("JSON")
        }
    };
    let list = read(format!(
        "{base}/v1/gates/fast/decisions?after_version={}&limit=1",
        version - 1
    ))
    .await;
    assert_eq!(
        list["decisions"][0]["decided_by"], "operator:oncall",
        "{list}"
    );
    assert_eq!(list["decisions"][0]["action"], "override:hold", "{list}");
    let g = read(format!("{base}/v1/gates/fast")).await;
    assert_eq!(g["cohorts"][0]["status"], "held", "{g}");

    // Signing out ends the session: the node wants a token again.
    let (_, page) = operator.get(&client, &format!("{base}/")).await;
    let token = csrf(&page);
    let (status, _, _) = operator
        .post(
            &client,
            &format!("{base}/console/sign-out"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = operator.get(&client, &format!("{base}/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    cluster.stop().await;
}

/// A multipart/form-data body of `fields` (name, file name, value) and its content type.
fn multipart(fields: &[(&str, Option<&str>, &str)]) -> (String, String) {
    let boundary = "rampart-console-test-boundary";
    let mut body = String::new();
    for (name, file, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(file) = file {
            body.push_str(&format!(
                "; filename=\"{file}\"\r\nContent-Type: application/x-ndjson"
            ));
        }
        body.push_str(&format!("\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backtest_page_replays_a_pasted_contract_over_an_uploaded_file() {
    let (cluster, client, base) = one_node_with_fast(with_http, None).await;

    // The form starts from the gate's contract in force.
    let mut b = Browser::default();
    let (status, page) = b
        .get(&client, &format!("{base}/console/backtest?gate=fast"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("gate: fast"), "{page}");
    let token = csrf(&page);

    // Three healthy seconds, then mobile's treatment at 15% errors against a 5% ceiling, and
    // one line that is not a signal.
    let t0 = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    let mut trace: Vec<String> = (0..6)
        .map(|s| lines(t0 + s * 1000 + 100, if s < 3 { 1 } else { 30 }))
        .collect();
    trace.push("{\"gate\": \"fast\"}".to_owned());
    let signals = trace.join("\n");
    let run = |fields: Vec<(&'static str, Option<&'static str>, String)>| {
        let (client, base, cookie) = (&client, &base, b.cookie.clone());
        async move {
            let borrowed: Vec<(&str, Option<&str>, &str)> = fields
                .iter()
                .map(|(n, f, v)| (*n, *f, v.as_str()))
                .collect();
            let (content_type, body) = multipart(&borrowed);
            let mut request = client
                .post(format!("{base}/console/backtest"))
                .header(header::CONTENT_TYPE, content_type)
                .body(body);
            if let Some(c) = cookie {
                request = request.header(header::COOKIE, c);
            }
            let response = request.send().await.expect("POST");
            let status = response.status();
            (status, response.text().await.expect("page"))
        }
    };
    let (status, page) = run(vec![
        ("csrf", None, token.clone()),
        ("contract", None, FAST_CONTRACT.to_owned()),
        ("signals", Some("trace.jsonl"), signals.clone()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("data-verdict=\"rollback"),
        "the rollback: {page}"
    );
    assert!(
        page.contains("data-cohort=\"mobile\" data-status=\"rolled_back\""),
        "{page}"
    );
    assert!(
        page.contains("<svg class=\"windows\""),
        "window charts: {page}"
    );
    assert!(
        page.contains("<tr data-line=\"13\""),
        "the bad line, by number: {page}"
    );
    // Nothing was stored: the live gate is untouched.
    let g = gate_json(&client, &format!("{base}/v1/gates/fast")).await;
    assert_eq!(g["kill_switch"], false, "{g}");
    assert_eq!(g["cohorts"][0]["status"], "ramping", "{g}");

    // A broken contract comes back with its field named and the text kept.
    let broken = FAST_CONTRACT.replace("ladder: [10, 50, 100]", "ladder: [50, 10]");
    let (status, page) = run(vec![
        ("csrf", None, token.clone()),
        ("contract", None, broken.clone()),
        ("signals_text", None, signals.clone()),
    ])
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("data-field=\"contract\""), "{page}");
    assert!(
        page.contains("ladder: [50, 10]"),
        "the contract is kept: {page}"
    );
    // Signals both uploaded and pasted, or neither, name the field; no token is a 403.
    let (status, page) = run(vec![
        ("csrf", None, token.clone()),
        ("contract", None, FAST_CONTRACT.to_owned()),
    ])
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("data-field=\"signals\""), "{page}");
    let (status, page) = run(vec![
        ("contract", None, FAST_CONTRACT.to_owned()),
        ("signals_text", None, signals),
    ])
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    cluster.stop().await;
}
