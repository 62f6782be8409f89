//! A real Python peer on RabbitMQ: small aio-pika 6.8 scripts
//! (`tests/py/`, the library munggoggo 0.4 is built on) against Rust agents,
//! the client and the `munggoggo` command line:
//! (a) Python calls a Rust `#[rpc]` method through aio-pika's RPC pattern,
//! (b) a Rust agent and the CLI call a method Python exposes,
//! (c) Python decodes messages a Rust agent sends in 0.4 wire mode as 0.4's
//! `SerializableObject` does.
//!
//! With the `otel` feature they run with tracing on: munggoggo's
//! OpenTelemetry layer exports every span (to memory), so the Python side
//! gets the trace headers and the Rust side makes its spans as it would in
//! production.
//!
//! The scripts run in the venv at `MUNGGOGGO_PY_VENV` (default
//! `~/.cache/munggoggo/py-venv`), which `.ci/run` builds from PyPI. Without
//! the venv or the broker the tests are skipped with a message, unless `CI`
//! is set: then they fail.

use std::process::Command;

use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, AgentOptions, WireMode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod py_common;
use py_common::{broker, broker_in, python, script, unique, url, Script};

#[agent(identity = "py-calc")]
#[derive(Default)]
struct Calc;

#[agent]
impl Calc {
    /// Exposed to Python under this (test-specific) name.
    #[rpc]
    async fn py_interop_multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

/// munggoggo 0.4's demo payload (`date` as float epoch seconds, as 0.4's
/// dataclasses-json writes datetimes).
#[derive(Debug, Serialize, Deserialize, Message)]
struct DemoData {
    message: String,
    date: Option<f64>,
}

#[agent(identity = "py-sender")]
#[derive(Default)]
struct Sender;

#[agent]
impl Sender {}

/// munggoggo's OpenTelemetry layer on an in-memory exporter, installed
/// once for the process.
#[cfg(feature = "otel")]
fn tracing_on() -> &'static opentelemetry_sdk::trace::InMemorySpanExporter {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;
    static EXPORTER: std::sync::OnceLock<(InMemorySpanExporter, SdkTracerProvider)> =
        std::sync::OnceLock::new();
    let (exporter, _) = EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(munggoggo::otel::layer(&provider));
        tracing::subscriber::set_global_default(subscriber).expect("the test's subscriber");
        (exporter, provider)
    });
    exporter
}

/// Tracing off: nothing is exported.
#[cfg(not(feature = "otel"))]
struct Off;

#[cfg(not(feature = "otel"))]
fn tracing_on() -> Off {
    Off
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_an_exposed_rust_method() {
    let _spans = tracing_on();
    let Some(python) = python() else { return };
    let Some(rt) = broker().await else { return };
    let identity = unique("py-calc");
    let mut options: AgentOptions = Calc::options().exposing();
    options.identity = identity.clone();
    let calc = rt.spawn_with(Calc, options).await.unwrap();
    let script = Script::start(
        &python,
        &["-u", &script("call_rust.py"), &url(), "py_interop_multiply"],
    );
    let output = script.finish().await;
    assert!(output.iter().any(|l| l == "ok result 42"), "{output:?}");
    let error = output
        .iter()
        .find(|l| l.starts_with("ok error"))
        .expect("error checked");
    assert!(
        error.contains("RuntimeError") && error.contains(&identity),
        "{error}"
    );
    assert!(output.iter().any(|l| l.starts_with("ok global")), "{output:?}");
    #[cfg(feature = "otel")]
    {
        // The method ran in a span of its own, exported: tracing was on.
        let spans = _spans.get_finished_spans().expect("spans");
        assert!(
            spans.iter().any(|s| s.name == "rpc"
                && s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "agent" && kv.value.as_str() == identity.as_str())),
            "no exported `rpc` span of {identity}"
        );
    }
    // The refused call is logged and traced as bad input.
    let rejected = calc.context().traces().filter(None, None, Some("rejected"));
    assert!(
        rejected
            .iter()
            .any(|e| e.record.reason.as_deref().is_some_and(|r| r.contains("global"))),
        "{rejected:?}"
    );
    calc.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_the_cli_call_a_method_python_exposes() {
    let _spans = tracing_on();
    let Some(python) = python() else { return };
    let Some(rt) = broker().await else { return };
    let method = unique("py_exposed");
    let mut script = Script::start(&python, &["-u", &script("expose.py"), &url(), &method]);
    assert_eq!(script.line().await, "ready");

    let client = rt.client(unique("py-caller")).await.unwrap();
    let product: i64 = client
        .call_exposed(&method, json!({"x": 6, "y": 7}))
        .await
        .unwrap();
    assert_eq!(product, 42);
    match client.call_exposed::<i64>(&method, json!({"x": 6, "y": 0})).await {
        Err(munggoggo::Error::Remote { error, .. }) => assert_eq!(error, "y must not be 0"),
        other => panic!("expected the Python exception, got {other:?}"),
    }
    match client.call_exposed::<i64>(&method, json!([6, 7])).await {
        Err(munggoggo::Error::Exposed { reason, .. }) => {
            assert!(reason.contains("named parameters"), "{reason}")
        }
        other => panic!("expected a refusal of positional parameters, got {other:?}"),
    }
    match client
        .call_exposed::<i64>(&unique("nobody_exposes"), json!({}))
        .await
    {
        Err(munggoggo::Error::Exposed { reason, .. }) => {
            assert!(reason.contains("no agent exposes it"), "{reason}")
        }
        other => panic!("expected an unknown method, got {other:?}"),
    }

    let cli = |params: &str| {
        Command::new(env!("CARGO_BIN_EXE_munggoggo"))
            .args([
                "--url",
                &url(),
                "--json",
                "call",
                "--exposed",
                "-",
                &method,
                params,
            ])
            .output()
            .expect("the CLI runs")
    };
    let out = cli(r#"{"x": 6, "y": 7}"#);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["result"], json!(42));
    let out = cli(r#"{"x": 6, "y": 0}"#);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("y must not be 0"), "{stderr}");

    script.finish().await;
    client.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_decodes_messages_sent_in_0_4_wire_mode() {
    let _spans = tracing_on();
    let Some(python) = python() else { return };
    let Some(rt) = broker_in(WireMode::Py04).await else {
        return;
    };
    let queue = unique("py-decoder");
    let topic = unique("py.topic").replace('_', ".");
    let mut script = Script::start(
        &python,
        &["-u", &script("decode.py"), &url(), &queue, &topic, "3"],
    );
    assert_eq!(script.line().await, "ready");
    let sender = rt.spawn_as(unique("py-sender"), Sender).await.unwrap();
    let ctx = sender.context();
    let date = 1_546_300_800.0;
    let msg = |text: &str| DemoData {
        message: text.to_owned(),
        date: Some(date),
    };
    ctx.send(&queue, &msg("direct")).await.unwrap();
    ctx.publish(&topic, &msg("topic")).await.unwrap();
    ctx.broadcast(&msg("fanout")).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let line: Value = serde_json::from_str(&script.line().await).unwrap();
        assert_eq!(line["c_type"], "DemoData", "{line}");
        assert_eq!(line["user_id"], "guest", "{line}");
        assert_eq!(line["app_id"], sender.identity(), "{line}");
        assert_eq!(line["timestamp"], true, "{line}");
        assert_eq!(line["decoded"]["date"], "2019-01-01T00:00:00+00:00", "{line}");
        let text = line["decoded"]["message"].as_str().unwrap().to_owned();
        let expected_type = if text == "topic" { "PUBSUB" } else { "DemoData" };
        assert_eq!(line["type"], expected_type, "{line}");
        seen.push(text);
    }
    seen.sort();
    assert_eq!(seen, ["direct", "fanout", "topic"]);
    script.finish().await;
    sender.shutdown().await;
    rt.shutdown().await;
}
