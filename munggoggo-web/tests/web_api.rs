//! The dashboard's HTTP endpoints and their error cases, on the embedded
//! bus, through tower's `oneshot` (no listener).
//!
//! Run with `cargo test -p munggoggo-web --test web_api`.

mod web_common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use munggoggo::bus::{control_queue, Opened, Outgoing, Route};
use munggoggo::message::Properties;
use munggoggo::{AgentHandle, Runtime, RuntimeHandle, State};
use munggoggo_web::{Dashboard, DashboardOptions};
use serde_json::{json, Value};
use tower::ServiceExt;
use web_common::{legacy_agent, unique, within, Calc, Job, Lamp, Toggle, Worker};

/// A runtime with a worker and a calculator under unique names, and a
/// dashboard that sees both.
struct Net {
    runtime: RuntimeHandle,
    dashboard: Dashboard,
    router: Router,
    worker: AgentHandle,
    calc: AgentHandle,
}

/// Has the worker's `job` handler fail once (job 13), and waits until the
/// dashboard counted the error.
async fn fail_a_job(net: &Net, sender: &munggoggo::runtime::Client) {
    let worker = net.worker.identity();
    sender.send(worker, &Job { n: 13 }).await.expect("sent");
    within(
        "the dashboard sees the error",
        net.dashboard.wait_until(|peers| {
            peers
                .iter()
                .filter(|p| p.name == worker)
                .flat_map(|p| &p.behaviours)
                .any(|b| b.method == "job" && b.errors == Some(1))
        }),
    )
    .await;
}

async fn net(options: DashboardOptions) -> Net {
    let worker_id = unique("worker");
    let calc_id = unique("calc");
    let runtime = Runtime::memory()
        .agent_as(&worker_id, Worker::default())
        .agent_as(&calc_id, Calc)
        .start()
        .await
        .expect("agents start");
    let options = options
        .refresh(Duration::from_millis(50))
        .call_timeout(Duration::from_millis(500));
    let dashboard = Dashboard::start(&runtime, options)
        .await
        .expect("dashboard starts");
    within(
        "the dashboard sees both agents",
        dashboard.wait_until(|peers| {
            peers.iter().any(|p| p.name == worker_id) && peers.iter().any(|p| p.name == calc_id)
        }),
    )
    .await;
    Net {
        router: dashboard.router(),
        worker: runtime.agent(&worker_id).expect("worker runs"),
        calc: runtime.agent(&calc_id).expect("calc runs"),
        dashboard,
        runtime,
    }
}

/// One request; POSTs carry `Content-Type: application/json`.
async fn call(router: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    call_with(router, method, uri, body, &[]).await
}

async fn call_with(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if method == "POST"
        && !headers
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case("content-type"))
    {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .expect("a valid request");
    let response = within(uri, router.clone().oneshot(request))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

/// Asserts a JSON error body with this code.
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn peers_show_behaviours_states_counters_and_methods() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let (status, body) = call(&net.router, "GET", "/api/peers", None).await;
    assert_eq!(status, StatusCode::OK);
    let peers = body["peers"].as_array().expect("a list of peers");
    assert!(
        peers
            .iter()
            .all(|p| !p["name"].as_str().unwrap_or_default().starts_with("munggoggo-")),
        "the dashboard does not list itself: {body}"
    );
    let me = peers
        .iter()
        .find(|p| p["name"] == worker)
        .expect("the worker is listed");
    assert_eq!(me["state"], "running");
    assert_eq!(me["flavour"], "rust");
    assert_eq!(me["agent_type"], "Worker");
    let behaviours = me["behaviours"].as_array().expect("behaviours");
    let tick = behaviours.iter().find(|b| b["method"] == "tick").expect("tick");
    assert_eq!(tick["name"], format!("{worker}.tick"));
    assert_eq!(tick["kind"], "periodic");
    assert_eq!(tick["state"], "running");
    assert_eq!(tick["runs"], 0);
    assert_eq!(tick["errors"], 0);
    let jobs = behaviours.iter().find(|b| b["method"] == "jobs").expect("jobs");
    assert_eq!(jobs["topics"], json!(["jobs.#"]));
    let job = behaviours.iter().find(|b| b["method"] == "job").expect("job");
    assert_eq!(job["message_type"], "Job");

    let (status, calc) = call(
        &net.router,
        "GET",
        &format!("/api/peers/{}", net.calc.identity()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let methods: Vec<&str> = calc["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(methods, ["multiply", "fail", "slow"]);
    assert_eq!(calc["methods"][0]["params"], json!(["x", "y"]));

    let (status, body) = call(&net.router, "GET", "/api/peers/nobody-here", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
    assert!(body["error"]["known"]
        .as_array()
        .is_some_and(|k| k.contains(&json!(worker))));

    // A failing handler shows in the counters and the last error.
    let sender = net.runtime.client(unique("sender")).await.expect("a client");
    fail_a_job(&net, &sender).await;
    let (_, me) = call(&net.router, "GET", &format!("/api/peers/{worker}"), None).await;
    let job = me["behaviours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["method"] == "job")
        .cloned()
        .unwrap();
    assert!(
        job["last_error"].as_str().is_some_and(|e| e.contains("unlucky")),
        "{job}"
    );
}

#[tokio::test]
async fn behaviours_stop_and_start() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/behaviours/tick/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["behaviour"], format!("{worker}.tick"));
    assert_eq!(body["command"], "stop");
    assert_eq!(body["state"], "init");
    assert_eq!(net.worker.behaviour("tick").expect("tick").state, State::Init);

    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/behaviours/tick/start"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "running");
    assert_eq!(net.worker.behaviour("tick").expect("tick").state, State::Running);

    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/behaviours/nope/stop"),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_behaviour");
    assert!(
        body["error"]["known"]
            .as_array()
            .is_some_and(|k| k.contains(&json!("tick"))),
        "{body}"
    );

    let ghost = unique("ghost");
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{ghost}/behaviours/tick/stop"),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
}

#[tokio::test]
async fn traces_filter_by_limit_sender_and_category() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let a = net.runtime.client(unique("a")).await.expect("a client");
    let b = net.runtime.client(unique("b")).await.expect("a client");
    a.send(worker, &Job { n: 1 }).await.expect("sent");
    b.send(worker, &Job { n: 2 }).await.expect("sent");
    a.send(worker, &Job { n: 3 }).await.expect("sent");
    within(
        "the worker handles three jobs",
        net.worker
            .wait_until(|w| w.behaviour("job").is_some_and(|b| b.runs >= 3)),
    )
    .await
    .expect("the worker runs");

    let uri = format!(
        "/api/agents/{worker}/traces?category=incoming&sender={}",
        a.identity()
    );
    let (status, body) = call(&net.router, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let traces = body["traces"].as_array().expect("traces");
    let bodies: Vec<&str> = traces.iter().filter_map(|t| t["body"].as_str()).collect();
    assert_eq!(bodies, [r#"{"n":1}"#, r#"{"n":3}"#]);
    assert!(traces
        .iter()
        .all(|t| t["from"] == a.identity() && t["to"] == worker && t["type"] == "Job"));

    let uri = format!("/api/agents/{worker}/traces?category=incoming&limit=1");
    let (_, body) = call(&net.router, "GET", &uri, None).await;
    let traces = body["traces"].as_array().expect("traces");
    assert_eq!(traces.len(), 1, "{body}");
    assert_eq!(traces[0]["body"], r#"{"n":3}"#);

    // The dashboard's own requests are left out unless asked for.
    let (_, plain) = call(&net.router, "GET", &format!("/api/agents/{worker}/traces"), None).await;
    assert!(plain["traces"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| !t["from"].as_str().unwrap().starts_with("munggoggo-")));
    let (_, all) = call(
        &net.router,
        "GET",
        &format!("/api/agents/{worker}/traces?tools=true"),
        None,
    )
    .await;
    assert!(all["traces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["from"].as_str().unwrap().starts_with("munggoggo-")));

    let (status, body) = call(
        &net.router,
        "GET",
        &format!("/api/agents/{worker}/traces?limit=many"),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call(
        &net.router,
        "GET",
        &format!("/api/agents/{}/traces", unique("ghost")),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
}

#[tokio::test]
async fn messages_are_sent_broadcast_and_published() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/messages"),
        Some(r#"{"type": "Job", "body": {"n": 5}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sent"], "send");
    assert_eq!(body["bytes"], 7);
    within(
        "the job is done",
        net.worker
            .wait_until(|w| w.behaviour("job").is_some_and(|b| b.runs == 1)),
    )
    .await
    .expect("the worker runs");

    // What a user sends with the dashboard is in the trace; its own requests are not.
    let uri = format!("/api/agents/{worker}/traces?category=incoming");
    let (_, traces) = call(&net.router, "GET", &uri, None).await;
    let traces = traces["traces"].as_array().expect("traces");
    assert!(
        traces
            .iter()
            .any(|t| t["from"] == net.dashboard.identity() && t["body"] == r#"{"n":5}"#),
        "{traces:?}"
    );
    assert!(traces.iter().all(|t| t["type"] != "RPC"), "{traces:?}");

    let (status, body) = call(
        &net.router,
        "POST",
        "/api/broadcast",
        Some(r#"{"type": "Job", "body": {"n": 1}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within(
        "the broadcast job is done",
        net.worker
            .wait_until(|w| w.behaviour("job").is_some_and(|b| b.runs == 2)),
    )
    .await
    .expect("the worker runs");

    let (status, body) = call(
        &net.router,
        "POST",
        "/api/publish",
        Some(r#"{"topic": "jobs.new", "body": "hello"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "PUBSUB");
    assert_eq!(body["topic"], "jobs.new");
    within(
        "the topic handler runs",
        net.worker
            .wait_until(|w| w.behaviour("jobs").is_some_and(|b| b.runs == 1)),
    )
    .await
    .expect("the worker runs");

    // Bad input: 4xx with a JSON error body.
    let uri = format!("/api/agents/{worker}/messages");
    let (status, body) = call(&net.router, "POST", &uri, Some(r#"{"type": "Job", "body": "#)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call(&net.router, "POST", &uri, Some(r#"{"body": 1}"#)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call(&net.router, "POST", &uri, Some(r#"{"type": "RPC", "body": 1}"#)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call_with(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"type": "Job", "body": {"n": 1}}"#),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = format!(r#"{{"type": "Job", "body": "{}"}}"#, "x".repeat(200 * 1024));
    let (status, body) = call(&net.router, "POST", &uri, Some(&huge)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let ghost = unique("ghost");
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{ghost}/messages"),
        Some(r#"{"type": "Job", "body": {"n": 1}}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
    let (status, body) = call(
        &net.router,
        "POST",
        "/api/publish",
        Some(r#"{"topic": "", "body": 1}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call(&net.router, "GET", "/api/nothing", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        net.worker.behaviour("job").expect("job").runs,
        2,
        "no bad request reached the worker"
    );
}

#[tokio::test]
async fn methods_are_called_with_errors_for_bad_calls() {
    let net = net(DashboardOptions::default()).await;
    let uri = format!("/api/agents/{}/call", net.calc.identity());
    let (status, body) = call(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"method": "multiply", "params": [3, 4]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], 12);
    let (status, body) = call(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"method": "multiply", "params": {"x": 5, "y": 6}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], 30);

    let (status, body) = call(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"method": "divide", "params": []}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_method");
    assert_eq!(body["error"]["known"], json!(["multiply", "fail", "slow"]));
    let (status, body) = call(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"method": "multiply", "params": ["a"]}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_params");
    let (status, body) = call(
        &net.router,
        "POST",
        &uri,
        Some(r#"{"method": "multiply", "params": 3}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_params");
    let (status, body) = call(&net.router, "POST", &uri, Some(r#"{"method": "fail"}"#)).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "call_failed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("it broke"),
        "{body}"
    );
    let (status, body) = call(&net.router, "POST", &uri, Some(r#"{"method": "slow"}"#)).await;
    assert_error(status, &body, StatusCode::GATEWAY_TIMEOUT, "timeout");
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{}/call", unique("ghost")),
        Some(r#"{"method": "multiply", "params": [1, 2]}"#),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
}

#[tokio::test]
async fn an_agent_is_shut_down() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity().to_owned();
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/shutdown"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], format!("Shutdown of {worker} initiated."));
    within("the worker stops", net.worker.stopped()).await;
    within(
        "the dashboard sees the worker leave",
        net.dashboard
            .wait_until(|peers| peers.iter().all(|p| p.name != worker)),
    )
    .await;
    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/shutdown"),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown_agent");
}

#[tokio::test]
async fn a_token_guards_every_changing_endpoint() {
    let net = net(DashboardOptions::default().token(Some("s3cret".to_owned()))).await;
    let worker = net.worker.identity();
    let changing = [
        format!("/api/agents/{worker}/behaviours/tick/stop"),
        format!("/api/agents/{worker}/behaviours/tick/start"),
        format!("/api/agents/{worker}/messages"),
        format!("/api/agents/{worker}/call"),
        format!("/api/agents/{worker}/shutdown"),
        "/api/broadcast".to_owned(),
        "/api/publish".to_owned(),
        "/jsonrpc".to_owned(),
    ];
    for uri in &changing {
        let (status, body) = call(&net.router, "POST", uri, Some("{}")).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, body) = call_with(
            &net.router,
            "POST",
            uri,
            Some("{}"),
            &[("authorization", "Bearer wrong")],
        )
        .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(net.worker.state(), State::Running, "nothing got through");
    let (status, body) = call_with(
        &net.router,
        "POST",
        &format!("/api/agents/{worker}/behaviours/tick/stop"),
        None,
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(net.worker.behaviour("tick").expect("tick").state, State::Init);
    // Reading needs no token.
    let (status, info) = call(&net.router, "GET", "/api/info", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["auth_required"], true);
    assert_eq!(info["identity"], net.dashboard.identity());
    let (status, _) = call(&net.router, "GET", "/api/peers", None).await;
    assert_eq!(status, StatusCode::OK);
    // With a token, any host name will do.
    let (status, _) = call_with(
        &net.router,
        "GET",
        "/api/peers",
        None,
        &[("host", "dashboard.example:8000")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_token_only_local_host_names_are_answered() {
    let net = net(DashboardOptions::default()).await;
    for host in [
        "127.0.0.1:8000",
        "localhost:8000",
        "[::1]:8000",
        "192.168.1.7",
        "LOCALHOST",
    ] {
        let (status, body) = call_with(&net.router, "GET", "/api/peers", None, &[("host", host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    for host in ["rebound.example:8000", "localhost.example", "evil"] {
        let (status, body) = call_with(&net.router, "GET", "/api/peers", None, &[("host", host)]).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden_host");
        let (status, body) = call_with(
            &net.router,
            "POST",
            &format!("/api/agents/{}/shutdown", net.worker.identity()),
            None,
            &[("host", host)],
        )
        .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden_host");
    }
    assert_eq!(net.worker.state(), State::Running);
}

/// A JSON-RPC request.
async fn rpc(router: &Router, body: &str) -> (StatusCode, Value) {
    call(router, "POST", "/jsonrpc", Some(body)).await
}

#[tokio::test]
async fn json_rpc_calls_methods_with_standard_errors() {
    let net = net(DashboardOptions::default()).await;
    let calc = net.calc.identity();
    let (status, body) = rpc(
        &net.router,
        &format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.multiply", "params": [6, 7], "id": 1}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "jsonrpc": "2.0", "result": 42, "id": 1 }));

    let cases = [
        ("{not json".to_owned(), StatusCode::BAD_REQUEST, -32700),
        (
            r#"{"method": "x.y", "id": 1}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": 5, "id": 1}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "x.y", "params": 3, "id": 1}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        ("[]".to_owned(), StatusCode::BAD_REQUEST, -32600),
        (
            r#"{"jsonrpc": "2.0", "method": "nodot", "id": 1}"#.to_owned(),
            StatusCode::NOT_FOUND,
            -32601,
        ),
        (
            format!(
                r#"{{"jsonrpc": "2.0", "method": "{}.multiply", "id": 1}}"#,
                unique("ghost")
            ),
            StatusCode::NOT_FOUND,
            -32601,
        ),
        (
            format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.divide", "id": 1}}"#),
            StatusCode::NOT_FOUND,
            -32601,
        ),
        (
            format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.multiply", "params": ["a", "b"], "id": 1}}"#),
            StatusCode::BAD_REQUEST,
            -32602,
        ),
        (
            format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.fail", "id": 1}}"#),
            StatusCode::BAD_GATEWAY,
            -32001,
        ),
    ];
    for (request, expected, code) in cases {
        let (status, body) = rpc(&net.router, &request).await;
        assert_eq!(status, expected, "{request} -> {body}");
        assert_eq!(body["jsonrpc"], "2.0", "{body}");
        assert_eq!(body["error"]["code"], code, "{request} -> {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, body) = rpc(
        &net.router,
        &format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.divide", "id": "x"}}"#),
    )
    .await;
    assert_eq!(body["id"], "x");
    assert_eq!(
        body["error"]["data"]["methods"],
        json!(["multiply", "fail", "slow"])
    );

    // A notification gets no answer; a batch gets one per request with an id.
    let (status, body) = rpc(
        &net.router,
        &format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.multiply", "params": [1, 1]}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = rpc(
        &net.router,
        &format!(
            r#"[{{"jsonrpc": "2.0", "method": "{calc}.multiply", "params": [2, 3], "id": 1}},
                {{"jsonrpc": "2.0", "method": "{calc}.multiply", "params": [1, 1]}},
                {{"jsonrpc": "2.0", "method": "{calc}.nope", "id": 2}}]"#
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = body.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 2, "{body}");
    assert_eq!(answers[0]["result"], 6);
    assert_eq!(answers[1]["error"]["code"], -32601);

    // Last: the calculator is busy for an hour after this one.
    let (status, body) = rpc(
        &net.router,
        &format!(r#"{{"jsonrpc": "2.0", "method": "{calc}.slow", "id": 9}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
    assert_eq!(body["id"], 9);
}

#[tokio::test]
async fn openapi_document_page_and_assets() {
    let net = net(DashboardOptions::default()).await;
    let (status, doc) = call(&net.router, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for path in [
        "/api/peers",
        "/api/peers/{agent}",
        "/api/agents/{agent}/traces",
        "/api/agents/{agent}/behaviours/{behaviour}/stop",
        "/api/agents/{agent}/call",
        "/api/publish",
        "/jsonrpc",
        "/ws",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    for schema in [
        "AgentView",
        "BehaviourView",
        "ErrorBody",
        "CallRequest",
        "Event",
        "TraceView",
        "RpcView",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} is documented"
        );
    }
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());

    for (uri, kind, needle) in [
        ("/", "text/html", "<svg"),
        ("/app.js", "text/javascript", "WebSocket"),
        ("/style.css", "text/css", "--"),
    ] {
        let response = net
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(kind), "{uri}: {content_type}");
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&text).contains(needle),
            "{uri} holds {needle}"
        );
    }
}

#[tokio::test]
async fn a_munggoggo_0_4_agent_shows_as_a_peer_and_is_steered() {
    let net = net(DashboardOptions::default()).await;
    let legacy = unique("legacy");
    let state = legacy_agent(&net.runtime, &legacy).await;
    within(
        "the dashboard sees the 0.4 agent",
        net.dashboard
            .wait_until(|peers| peers.iter().any(|p| p.name == legacy)),
    )
    .await;
    let (status, peer) = call(&net.router, "GET", &format!("/api/peers/{legacy}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer["flavour"], "0.4");
    assert_eq!(peer["agent_type"], Value::Null);
    assert_eq!(peer["behaviours"][0]["name"], format!("{legacy}.PingBehav"));
    assert_eq!(peer["behaviours"][0]["state"], "running");
    assert_eq!(peer["behaviours"][0]["runs"], Value::Null);

    let (status, body) = call(
        &net.router,
        "POST",
        &format!("/api/agents/{legacy}/behaviours/PingBehav/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["behaviour"], format!("{legacy}.PingBehav"));
    assert_eq!(body["state"], "init");
    assert_eq!(*state.lock().unwrap(), "init");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_gets_405_with_allow() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let guarded = Dashboard::start(
        &net.runtime,
        DashboardOptions::default().token(Some("s3cret".to_owned())),
    )
    .await
    .expect("a dashboard with a token starts");
    for router in [&net.router, &guarded.router()] {
        for uri in [
            format!("/api/agents/{worker}/behaviours/tick/stop"),
            format!("/api/agents/{worker}/messages"),
            format!("/api/agents/{worker}/shutdown"),
            "/api/publish".to_owned(),
            "/jsonrpc".to_owned(),
        ] {
            // Neither the token nor the content type matters: the method is wrong.
            let response = router
                .clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            assert_eq!(
                response.headers().get(header::ALLOW).map(|a| a.as_bytes()),
                Some(&b"POST"[..]),
                "GET {uri}"
            );
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_error(
                status,
                &body,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            );
        }
        let response = router
            .clone()
            .oneshot(
                Request::post("/api/peers")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let allow = response
            .headers()
            .get(header::ALLOW)
            .map_or("", |a| a.to_str().unwrap())
            .to_owned();
        assert!(allow.split(',').any(|m| m.trim() == "GET"), "{allow}");
    }
    // The right method still goes through the guard.
    let (status, body) = call(
        &guarded.router(),
        "POST",
        &format!("/api/agents/{worker}/behaviours/tick/stop"),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(net.worker.behaviour("tick").expect("tick").state, State::Running);
}

/// Calls `method` of `agent` as a peer in another process does: an
/// `RpcCall` over the bus from an endpoint of its own (agents of one
/// runtime call each other without messages). Returns the caller's
/// identity and the reply's `c_data`.
async fn call_over_the_bus(
    runtime: &RuntimeHandle,
    agent: &str,
    method: &str,
    params: Value,
) -> (String, Value) {
    let caller = unique("remote");
    let options = web_common::raw_endpoint();
    let Opened {
        endpoint, mailbox, ..
    } = runtime
        .bus()
        .open(&caller, &options)
        .await
        .expect("the caller opens its queues");
    let c_data = json!({ "method": method, "params": params, "result": null, "error": null });
    let body = json!({ "c_type": "RpcCall", "c_data": c_data.to_string(), "request_type": 1 });
    let mut properties = Properties::new("RPC", caller.as_str());
    properties.correlation_id = Some(unique("call").into());
    let confirm = endpoint
        .publish(Outgoing {
            route: Route::Direct(control_queue(agent).into()),
            properties: Arc::new(properties),
            body: body.to_string().into(),
        })
        .await
        .expect("the request is sent");
    confirm.wait().await.expect("the request is confirmed");
    let mut deliveries = futures_util::stream::select_all(mailbox);
    let reply = within("the reply", deliveries.next()).await.expect("a reply");
    let _ = reply.acker.ack().await;
    let envelope: Value = serde_json::from_slice(&reply.received.body).expect("a JSON reply");
    assert_eq!(envelope["request_type"], 2, "{envelope}");
    let c_data = serde_json::from_str(envelope["c_data"].as_str().expect("c_data")).expect("JSON c_data");
    (caller, c_data)
}

/// The one entry of `agent`'s traces (of `category`) that `caller` sent or got.
async fn rpc_entry(router: &Router, agent: &str, category: &str, caller: &str) -> Value {
    let uri = format!("/api/agents/{agent}/traces?category={category}");
    let (status, body) = call(router, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries: Vec<&Value> = body["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .filter(|t| t["type"] == "RPC" && (t["from"] == caller || t["to"] == caller))
        .collect();
    assert_eq!(entries.len(), 1, "{body}");
    entries[0].clone()
}

#[tokio::test]
async fn an_rpc_reply_shows_its_result_not_the_request_it_repeats() {
    let net = net(DashboardOptions::default()).await;
    let calc = net.calc.identity();
    let (caller, reply) = call_over_the_bus(&net.runtime, calc, "multiply", json!([3, 4])).await;
    assert_eq!(reply["result"], 12, "{reply}");

    let request = rpc_entry(&net.router, calc, "incoming", &caller).await;
    assert_eq!(request["rpc"]["request"], "RpcCall", "{request}");
    assert_eq!(request["rpc"]["reply"], false, "{request}");
    assert_eq!(request["rpc"]["method"], "multiply", "{request}");
    assert_eq!(request["rpc"]["data"], json!([3, 4]), "{request}");

    // A reply is its request with the result filled in: the body opens
    // with the request's method and parameters.
    let answer = rpc_entry(&net.router, calc, "outgoing", &caller).await;
    assert!(
        answer["body"]
            .as_str()
            .unwrap()
            .contains(r#"\"method\":\"multiply\",\"params\""#),
        "{answer}"
    );
    assert_eq!(answer["to"], caller.as_str());
    assert_eq!(answer["rpc"]["reply"], true, "{answer}");
    assert_eq!(answer["rpc"]["method"], "multiply", "{answer}");
    assert_eq!(answer["rpc"]["data"], 12, "{answer}");
    assert_eq!(answer["rpc"]["error"], Value::Null, "{answer}");

    // A failed call: the error, not the request.
    let (caller, reply) = call_over_the_bus(&net.runtime, calc, "fail", json!([])).await;
    assert!(
        reply["error"].as_str().is_some_and(|e| e.contains("it broke")),
        "{reply}"
    );
    let answer = rpc_entry(&net.router, calc, "outgoing", &caller).await;
    assert_eq!(answer["rpc"]["reply"], true, "{answer}");
    assert_eq!(answer["rpc"]["error"], reply["error"], "{answer}");
    assert_eq!(answer["rpc"]["data"], Value::Null, "{answer}");
}

/// Runs the page's script under Node.js on a stand-in DOM: the page's
/// `start()` runs, the snapshot `event` is applied and drawn, and the
/// stand-in prints the agents table (the header from `html`, each row's
/// cells with their colspan) and the message list as JSON.
const PAGE_HARNESS: &str = r##"
"use strict";
const fs = require("fs");
const vm = require("vm");
const [script, html, event] = process.argv.slice(2).map((f) => fs.readFileSync(f, "utf8"));

class El {
  constructor(tag) {
    this.tagName = String(tag).toUpperCase();
    this.children = [];
    this.attributes = {};
    this.dataset = {};
    this.className = "";
    this.hidden = false;
    this.value = "";
    this.own = "";
  }
  get textContent() { return this.own + this.children.map((c) => c.textContent).join(""); }
  set textContent(text) { this.own = String(text); this.children = []; }
  get text() { return this.textContent; }
  append(...nodes) {
    for (const n of nodes) {
      if (typeof n === "string") { const t = new El("#text"); t.own = n; this.children.push(t); }
      else this.children.push(n);
    }
  }
  replaceChildren(...nodes) { this.own = ""; this.children = []; this.append(...nodes); }
  replaceChild(fresh, old) { this.children[this.children.indexOf(old)] = fresh; }
  setAttribute(name, value) { this.attributes[name] = String(value); }
  getAttribute(name) { return name in this.attributes ? this.attributes[name] : null; }
  addEventListener() {}
  remove() {}
  querySelector() { return new El("button"); }
  get cells() { return this.children.filter((c) => c.tagName === "TD" || c.tagName === "TH"); }
  get tBodies() { return this.children.filter((c) => c.tagName === "TBODY"); }
  get options() { return this.children.filter((c) => c.tagName === "OPTION"); }
  get lastChild() { return this.children[this.children.length - 1] || this; }
  get outerHTML() { return JSON.stringify([this.tagName, this.className, this.attributes, this.textContent]); }
}

const byId = new Map();
const document = {
  createElement: (tag) => new El(tag),
  createElementNS: (_, tag) => new El(tag),
  querySelectorAll: () => [],
  getElementById(id) {
    if (!byId.has(id)) {
      const node = new El(id === "agents" ? "table" : "div");
      if (id === "agents") node.append(new El("tbody"));
      if (id === "live") node.append(new El("span"));
      byId.set(id, node);
    }
    return byId.get(id);
  },
};
const parsed = JSON.parse(event);
const httpPeers = parsed.http_peers || { peers: [] };
const sockets = [];
class WebSocket { constructor(url) { this.url = url; sockets.push(this); } }
const info = { identity: "munggoggo-dashboard-test", bus: "memory://", auth_required: false };
const context = vm.createContext({
  document, WebSocket, console, setTimeout, clearTimeout, performance, JSON, Date,
  location: { protocol: "http:", host: "dashboard.test" },
  localStorage: { getItem: () => null, setItem() {} },
  // `/api/peers` answers what the event file's `http_peers` says (none
  // by default); every other path the dashboard's info.
  fetch: async (path) => ({ ok: true, status: 200, json: async () => path === "/api/peers" ? httpPeers : info }),
  prompt: () => null, confirm: () => false,
});
vm.runInContext(script, context);

(async () => {
  for (let i = 0; i < 10 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 0));
  if (sockets.length === 0) throw new Error("the page opened no WebSocket");
  // The event `none`: the feed says nothing (yet).
  if (parsed.event !== "none") sockets[0].onmessage({ data: event });
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
  vm.runInContext("render()", context);
  const table = html.slice(html.indexOf('id="agents"'));
  const head = table.slice(0, table.indexOf("</thead>"));
  const headers = [...head.matchAll(/<th[^>]*>([^<]*)<\/th>/g)].map((m) => m[1]);
  const rows = document.getElementById("agents").tBodies[0].children.map((row) => ({
    class: row.className,
    agent: row.getAttribute("data-agent"),
    behaviour: row.getAttribute("data-behaviour"),
    cells: row.cells.map((c) => ({ text: c.textContent, colspan: Number(c.getAttribute("colspan") || 1) })),
  }));
  const messages = document.getElementById("messages").children.map((li) => {
    const body = li.children.find((c) => c.className === "body");
    return { from: li.getAttribute("data-from"), to: li.getAttribute("data-to"), body: body && body.textContent };
  });
  // The states of the state machines drawn in the graph.
  const walk = (node) => [node, ...node.children.flatMap(walk)];
  const states = walk(document.getElementById("graph"))
    .filter((n) => n.getAttribute && n.getAttribute("class") && n.getAttribute("class").startsWith("fsm-state"))
    .map((n) => ({ machine: n.getAttribute("data-machine"), state: n.getAttribute("data-state"), class: n.getAttribute("class"), text: n.textContent }));
  const arcs = walk(document.getElementById("graph"))
    .filter((n) => n.getAttribute && (n.getAttribute("class") || "").startsWith("fsm-edge"))
    .map((n) => ({ from: n.getAttribute("data-from"), to: n.getAttribute("data-to"), class: n.getAttribute("class") }));
  console.log(JSON.stringify({ headers, rows, messages, states, arcs }));
  process.exit(0);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"##;

/// What [`PAGE_HARNESS`] prints: the page's drawing of `event`; `None`
/// (the test skipped) without Node.js, unless `CI` is set.
async fn draw_page(router: &Router, event: &Value) -> Option<Value> {
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    if std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_err()
    {
        munggoggo_test_support::skip(format_args!("no Node.js (`{node}`) to run the page's script"));
        return None;
    }
    let (_, script) = call(router, "GET", "/app.js", None).await;
    let (_, html) = call(router, "GET", "/", None).await;
    let dir = std::env::temp_dir().join(unique("munggoggo-page"));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let files = [
        ("harness.js", PAGE_HARNESS.to_owned()),
        ("app.js", script.as_str().expect("the script").to_owned()),
        ("index.html", html.as_str().expect("the page").to_owned()),
        ("event.json", event.to_string()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).expect("written");
    }
    let output = std::process::Command::new(&node)
        .current_dir(&dir)
        .args(["harness.js", "app.js", "index.html", "event.json"])
        .output()
        .expect("node runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the page's script failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}")))
}

/// The text of the cell of `row` under the header `column` (cells span
/// columns by their colspan).
fn cell_under(page: &Value, row: &Value, column: &str) -> String {
    let headers: Vec<&str> = page["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let index = headers
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column} in {headers:?}"));
    let mut first = 0;
    for cell in row["cells"].as_array().expect("cells") {
        let span = cell["colspan"].as_u64().unwrap_or(1) as usize;
        if index < first + span {
            return cell["text"].as_str().unwrap_or_default().to_owned();
        }
        first += span;
    }
    panic!("row {row} has no cell under {column}");
}

/// A page whose feed is slow to send its first snapshot (a busy machine, a
/// reconnect) still shows the agents the API lists.
#[tokio::test]
async fn the_page_shows_the_agents_before_the_feed_s_first_snapshot() {
    let net = net(DashboardOptions::default()).await;
    let (_, peers) = call(&net.router, "GET", "/api/peers", None).await;
    let event = json!({ "event": "none", "http_peers": peers });
    let Some(page) = draw_page(&net.router, &event).await else {
        return;
    };
    let shown: Vec<&str> = page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["class"].as_str().unwrap_or_default().starts_with("agent-row"))
        .filter_map(|r| r["agent"].as_str())
        .collect();
    for agent in [net.worker.identity(), net.calc.identity()] {
        assert!(shown.contains(&agent), "{agent} is not on the page: {page}");
    }
}

#[tokio::test]
async fn the_page_shows_each_value_under_its_column_and_what_a_reply_answers() {
    let net = net(DashboardOptions::default()).await;
    let worker = net.worker.identity();
    let calc = net.calc.identity();
    let sender = net.runtime.client(unique("sender")).await.expect("a client");
    fail_a_job(&net, &sender).await;
    let (caller, _) = call_over_the_bus(&net.runtime, calc, "multiply", json!([3, 4])).await;
    let reply = rpc_entry(&net.router, calc, "outgoing", &caller).await;
    let (_, peers) = call(&net.router, "GET", "/api/peers", None).await;
    let event = json!({ "event": "snapshot", "peers": peers["peers"], "traces": [reply] });
    let Some(page) = draw_page(&net.router, &event).await else {
        return;
    };
    let rows = page["rows"].as_array().expect("rows");
    let row = |class: &str, key: &str, name: &str| {
        rows.iter()
            .find(|r| r["class"].as_str().unwrap_or_default().starts_with(class) && r[key] == name)
            .unwrap_or_else(|| panic!("a row for {name}: {page}"))
    };

    // The agent rows: no method names under Last error.
    let calc_row = row("agent-row", "agent", calc);
    assert_eq!(cell_under(&page, calc_row, "Last error"), "", "{calc_row}");
    assert!(
        cell_under(&page, calc_row, "Behaviour").contains("multiply"),
        "{calc_row}"
    );
    assert_eq!(cell_under(&page, calc_row, "State"), "running", "{calc_row}");
    assert_eq!(
        cell_under(&page, row("agent-row", "agent", worker), "Errors"),
        "1"
    );
    let job = row("behaviour-row", "behaviour", &format!("{worker}.job"));
    assert!(cell_under(&page, job, "Last error").contains("unlucky"), "{job}");
    assert_eq!(cell_under(&page, job, "Errors"), "1", "{job}");

    // The reply says what it answers.
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{page}");
    let body = messages[0]["body"].as_str().expect("a body");
    assert!(body.contains("12") && !body.contains("params"), "{body}");
}

/// A replicated agent with a singleton job, for [`replicas_show_their_group_and_the_singleton_standby`].
#[munggoggo::agent(replicated)]
#[derive(Default)]
struct Compactor;

#[munggoggo::agent]
impl Compactor {
    #[behaviour(periodic = "1h", singleton)]
    async fn compact(&mut self) {}
}

#[tokio::test]
async fn replicas_show_their_group_and_the_singleton_standby() {
    let group = unique("compactor");
    let runtime = Runtime::memory()
        .agent_as(&group, Compactor)
        .agent_as(&group, Compactor)
        .start()
        .await
        .expect("two replicas start");
    let dashboard = Dashboard::start(
        &runtime,
        DashboardOptions::default().refresh(Duration::from_millis(50)),
    )
    .await
    .expect("dashboard starts");
    let replicas = |peers: &[munggoggo_web::AgentView]| -> Vec<munggoggo_web::AgentView> {
        peers
            .iter()
            .filter(|p| p.group.as_deref() == Some(group.as_str()))
            .cloned()
            .collect()
    };
    within(
        "the dashboard sees both replicas, one running the singleton",
        dashboard.wait_until(|peers| {
            let replicas = replicas(peers);
            let states: Vec<&str> = replicas
                .iter()
                .flat_map(|r| &r.behaviours)
                .map(|b| b.state.as_str())
                .collect();
            replicas.len() == 2 && states.contains(&"running") && states.contains(&"standby")
        }),
    )
    .await;
    let (status, body) = call(&dashboard.router(), "GET", "/api/peers", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&Value> = body["peers"]
        .as_array()
        .expect("a list of peers")
        .iter()
        .filter(|p| p["group"] == group.as_str())
        .collect();
    assert_eq!(listed.len(), 2, "{body}");
    for replica in &listed {
        let name = replica["name"].as_str().expect("a name");
        assert!(
            name.starts_with(&format!("{group}@")),
            "a replica's own name: {name}"
        );
    }
    runtime.shutdown().await;
}

/// A state machine on the dashboard: its states and where it is, in the
/// API and on the page (the current state highlighted), kept up to date
/// as it moves.
#[tokio::test]
async fn a_state_machine_is_drawn_with_its_current_state_kept_live() {
    let net = net(DashboardOptions::default()).await;
    let lamp = net
        .runtime
        .spawn_as(unique("lamp"), Lamp::default())
        .await
        .expect("the lamp starts");
    let id = lamp.identity().to_owned();
    let light = format!("{id}.light");
    let state_on_dashboard = |state: &'static str| {
        let (id, light) = (id.clone(), light.clone());
        net.dashboard.wait_until(move |peers| {
            peers
                .iter()
                .filter(|p| p.name == id)
                .flat_map(|p| &p.behaviours)
                .any(|b| b.name == light && b.machine.as_ref().is_some_and(|m| m.state == state))
        })
    };
    within("the dashboard sees the lamp off", state_on_dashboard("Off")).await;
    let sender = net.runtime.client(unique("switcher")).await.expect("a client");
    sender.send(&id, &Toggle {}).await.expect("sent");
    within("the dashboard sees the lamp on", state_on_dashboard("On")).await;

    let (_, peers) = call(&net.router, "GET", "/api/peers", None).await;
    let machine = peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .flat_map(|p| p["behaviours"].as_array().expect("behaviours"))
        .find(|b| b["name"] == light.as_str())
        .map(|b| b["machine"].clone())
        .expect("the machine in /api/peers");
    assert_eq!(machine["name"], "Light", "{machine}");
    assert_eq!(machine["state"], "On", "{machine}");
    assert_eq!(machine["transitions"], 1, "{machine}");
    assert_eq!(machine["initial"], "Off", "{machine}");
    assert_eq!(
        machine["states"],
        json!([
            { "name": "Off", "to": ["On"], "timeout_ms": null, "timeout_to": null, "final": false },
            { "name": "On", "to": ["Off"], "timeout_ms": 3_600_000, "timeout_to": "Off", "final": false },
        ])
    );
    let entered = lamp
        .behaviour("light")
        .and_then(|b| b.machine)
        .expect("a machine");
    assert_eq!(machine["entered_ms"], entered.entered_ms, "{machine}");

    let event = json!({ "event": "snapshot", "peers": peers["peers"], "traces": [] });
    let Some(page) = draw_page(&net.router, &event).await else {
        return;
    };
    let states: Vec<(&str, &str)> = page["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter(|s| s["machine"] == light.as_str())
        .map(|s| (s["state"].as_str().unwrap(), s["class"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("Off", "fsm-state"), ("On", "fsm-state current")],
        "{page}"
    );
    let arcs: Vec<(&str, &str, &str)> = page["arcs"]
        .as_array()
        .expect("arcs")
        .iter()
        .map(|a| {
            (
                a["from"].as_str().unwrap(),
                a["to"].as_str().unwrap(),
                a["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        arcs,
        [
            ("Off", "On", "fsm-edge"),
            ("On", "Off", "fsm-edge"),
            ("On", "Off", "fsm-edge timeout")
        ],
        "{page}"
    );
    let row = page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["behaviour"] == light.as_str())
        .unwrap_or_else(|| panic!("a row for {light}: {page}"));
    assert_eq!(cell_under(&page, row, "State"), "running On", "{row}");
}

/// Waits until the dashboard shows `agent` with its `job` handler's rate
/// known and all `sent` jobs counted; returns the agent's view as the API
/// gives it.
async fn live_view(dashboard: &Dashboard, router: &Router, agent: &str, sent: u64) -> Value {
    within(
        "the dashboard shows the handler's rate",
        dashboard.wait_until(|peers| {
            peers.iter().filter(|p| p.name == agent).any(|p| {
                p.rate.is_some_and(|r| r > 0.0)
                    && p.behaviours
                        .iter()
                        .any(|b| b.method == "job" && b.runs == Some(sent))
            })
        }),
    )
    .await;
    let (status, view) = call(router, "GET", &format!("/api/peers/{agent}"), None).await;
    assert_eq!(status, StatusCode::OK);
    view
}

fn behaviour<'a>(view: &'a Value, method: &str) -> &'a Value {
    view["behaviours"]
        .as_array()
        .expect("behaviours")
        .iter()
        .find(|b| b["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {view}"))
}

/// The page's live figures: each agent's and behaviour's rate over the
/// last seconds, and, where the agent's runtime collects metrics, the p50
/// and p99 of its handlers' times; a backlog larger than the read-ahead.
#[tokio::test]
async fn rates_and_handler_times_are_shown_live() {
    const JOBS: u64 = 1_000;
    let timed = unique("worker");
    let untimed = unique("worker");
    let bus = munggoggo::bus::memory::MemoryBus::new();
    let builder = Runtime::with_bus(bus.clone()).agent_as(&timed, Worker::default());
    #[cfg(feature = "metrics")]
    let builder = builder.metrics(munggoggo::metrics::Metrics::new());
    let runtime = builder.start().await.expect("agents start");
    // A runtime on the same bus without metrics: its runs are not timed.
    let plain = Runtime::with_bus(bus)
        .agent_as(&untimed, Worker::default())
        .start()
        .await
        .expect("agents start");
    let dashboard = Dashboard::start(
        &runtime,
        DashboardOptions::default().refresh(Duration::from_millis(50)),
    )
    .await
    .expect("dashboard starts");
    let router = dashboard.router();
    within(
        "the dashboard sees both workers",
        dashboard.wait_until(|peers| {
            [&timed, &untimed]
                .iter()
                .all(|w| peers.iter().any(|p| &&p.name == w))
        }),
    )
    .await;
    let sender = runtime.client(unique("sender")).await.expect("a client");
    for _ in 0..JOBS {
        for worker in [&timed, &untimed] {
            sender.send(worker, &Job { n: 1 }).await.expect("sent");
        }
    }

    let view = live_view(&dashboard, &router, &timed, JOBS).await;
    let job = behaviour(&view, "job");
    assert!(job["rate"].as_f64().is_some_and(|r| r > 0.0), "{job}");
    assert_eq!(view["rate"], job["rate"], "only `job` handled messages: {view}");
    let tick = behaviour(&view, "tick");
    assert_eq!(tick["rate"], 0.0, "{tick}");
    assert_eq!(tick["p50_ms"], Value::Null, "the hourly tick did not run: {tick}");
    assert_eq!(behaviour(&view, "jobs")["p50_ms"], Value::Null, "{view}");
    if cfg!(feature = "metrics") {
        let (p50, p99) = (job["p50_ms"].as_f64(), job["p99_ms"].as_f64());
        assert!(
            p50.is_some_and(|p| p > 0.0) && p99 >= p50,
            "p50 and p99 of the handler: {job}"
        );
        assert_eq!(view["p50_ms"], job["p50_ms"], "{view}");
        assert_eq!(view["p99_ms"], job["p99_ms"], "{view}");
    }

    let view = live_view(&dashboard, &router, &untimed, JOBS).await;
    assert!(view["rate"].as_f64().is_some_and(|r| r > 0.0), "{view}");
    assert_eq!(view["p50_ms"], Value::Null, "no metrics, no times: {view}");
    assert_eq!(behaviour(&view, "job")["p99_ms"], Value::Null, "{view}");

    // The page shows them under their columns.
    let (_, peers) = call(&router, "GET", "/api/peers", None).await;
    let event = json!({ "event": "snapshot", "peers": peers["peers"], "traces": [] });
    let Some(page) = draw_page(&router, &event).await else {
        return;
    };
    let rows = page["rows"].as_array().expect("rows");
    let row = |key: &str, name: &str| {
        rows.iter()
            .find(|r| r[key] == name)
            .unwrap_or_else(|| panic!("a row for {name}: {page}"))
    };
    let timed_row = row("agent", &timed);
    let rate = cell_under(&page, timed_row, "Per s");
    assert!(rate.parse::<f64>().is_ok_and(|r| r > 0.0), "{timed_row}");
    let times = cell_under(&page, timed_row, "p50 / p99 ms");
    if cfg!(feature = "metrics") {
        let (p50, p99) = times.split_once(" / ").expect("two figures");
        assert!(
            p50.parse::<f64>().is_ok() && p99.parse::<f64>().is_ok(),
            "{times}"
        );
    }
    let untimed_row = row("agent", &untimed);
    assert_eq!(cell_under(&page, untimed_row, "p50 / p99 ms"), "\u{2013}");
    let tick = row("behaviour", &format!("{timed}.tick"));
    assert_eq!(cell_under(&page, tick, "Per s"), "0");
    plain.shutdown().await;
    runtime.shutdown().await;
}
