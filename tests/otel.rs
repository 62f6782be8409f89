//! Spans exported to OpenTelemetry (feature `otel`), read back from the
//! SDK's in-memory exporter: a chain A -> B -> C forms one trace with the
//! right parent of each span, on the embedded bus and on RabbitMQ across
//! two runtimes; a call's span is the parent of the called method's, whose
//! reply carries the method's span; a malformed or oversized `traceparent`
//! is ignored with a debug line and the message is handled in a new trace.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::unique;
use munggoggo::bus::Route;
use munggoggo::message::Properties;
use munggoggo::otel::opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use munggoggo::otel::opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use munggoggo::otel::tracing_opentelemetry::OpenTelemetrySpanExt;
use munggoggo::tracecontext::TRACEPARENT;
use munggoggo::RuntimeHandle;
use relay::{Hop, Relay};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// The process's one subscriber: munggoggo's OpenTelemetry layer on an
/// in-memory exporter, and the debug lines of munggoggo's events.
struct Otel {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    lines: Arc<Mutex<Vec<String>>>,
}

fn otel() -> &'static Otel {
    static OTEL: OnceLock<Otel> = OnceLock::new();
    OTEL.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let events = Lines(Arc::clone(&lines)).with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_event() && m.target().starts_with("munggoggo")
        }));
        let subscriber = tracing_subscriber::registry()
            .with(munggoggo::otel::layer(&provider))
            .with(events);
        tracing::subscriber::set_global_default(subscriber).expect("the test's subscriber");
        Otel {
            exporter,
            _provider: provider,
            lines,
        }
    })
}

/// Keeps every event's fields as one line of text.
struct Lines(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
}

/// The finished spans of one trace.
fn trace(trace_id: TraceId) -> Vec<SpanData> {
    let spans = otel().exporter.get_finished_spans().expect("spans");
    spans
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// The span named `name` of agent `agent` (attribute `agent`, or `callee` for a call).
fn span_of<'a>(spans: &'a [SpanData], name: &str, key: &str, agent: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name && attribute(s, key).as_deref() == Some(agent))
        .unwrap_or_else(|| {
            let seen: Vec<_> = spans
                .iter()
                .map(|s| (s.name.clone(), s.attributes.clone()))
                .collect();
            panic!("no `{name}` span of {agent} in the trace: {seen:#?}")
        })
}

/// A test span of the test's own: the root of the trace.
fn root() -> (tracing::Span, TraceId, SpanId) {
    let root = tracing::info_span!("test");
    let cx = root.context();
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid(), "the test's span is exported");
    (root, sc.trace_id(), sc.span_id())
}

/// A -> B -> C -> the client, with A and C on `rt1` and B on `rt2` (or
/// `rt1` too); shuts the runtimes down.
async fn chain(rt1: RuntimeHandle, other: Option<RuntimeHandle>) {
    otel();
    let rt2 = other.as_ref().unwrap_or(&rt1);
    let client = rt1.client(unique("otel-t")).await.unwrap();
    let (a, b, c) = (unique("otel-a"), unique("otel-b"), unique("otel-c"));
    let t = client.identity().to_owned();
    rt1.spawn_as(&c, Relay { next: t.clone() }).await.unwrap();
    rt2.spawn_as(&b, Relay { next: c.clone() }).await.unwrap();
    rt1.spawn_as(&a, Relay { next: b.clone() }).await.unwrap();
    let (root, trace_id, root_id) = root();
    client
        .send(&a, &Hop { n: 0 })
        .instrument(root.clone())
        .await
        .unwrap();
    let got = client
        .recv_timeout(Duration::from_secs(10))
        .await
        .expect("the chain ends at the client");
    drop(root);
    let received = got.properties.trace.clone().expect("a traceparent");
    assert_eq!(
        received.trace_id(),
        trace_id.to_bytes(),
        "the message carries the trace"
    );
    client.shutdown().await;
    rt1.shutdown().await;
    if let Some(rt2) = other {
        rt2.shutdown().await;
    }
    let spans = trace(trace_id);
    let mut ids = vec![root_id];
    for agent in [&a, &b, &c, &t] {
        let span = span_of(&spans, "handler", "agent", agent);
        assert_eq!(
            span.parent_span_id,
            *ids.last().unwrap(),
            "the parent of {agent}'s handler is the span before it"
        );
        ids.push(span.span_context.span_id());
    }
    assert_eq!(received.span_id(), ids[3].to_bytes(), "C's send names C's span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_on_the_embedded_bus_is_one_trace() {
    let rt = common::buses::memory().await;
    chain(rt, None).await;
}

#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_across_two_runtimes_on_rabbitmq_is_one_trace() {
    let Some(rt1) = common::buses::amqp().await else {
        return;
    };
    let Some(rt2) = common::buses::amqp().await else {
        return;
    };
    chain(rt1, Some(rt2)).await;
}

/// A call from the test's span: call span, then the method's span, then
/// (over the bus) the reply naming the method's span.
/// `over_bus`: whether the reply is a message (on the embedded bus a call
/// inside the runtime is handed over, and traced without headers).
async fn call(rt: RuntimeHandle, over_bus: bool) {
    otel();
    let client = rt.client(unique("otel-caller")).await.unwrap();
    let callee = unique("otel-callee");
    let handle = rt.spawn_as(&callee, Relay { next: String::new() }).await.unwrap();
    let (root, trace_id, root_id) = root();
    let doubled: i64 = client
        .call(&callee, "double", serde_json::json!({ "x": 21 }))
        .instrument(root.clone())
        .await
        .unwrap();
    assert_eq!(doubled, 42);
    drop(root);
    let replies: Vec<_> = handle
        .traces()
        .sent(None)
        .into_iter()
        .filter(|e| e.record.properties.kind.as_deref() == Some("RPC"))
        .filter(|e| over_bus || e.record.properties.trace.is_some())
        .collect();
    client.shutdown().await;
    rt.shutdown().await;
    let spans = trace(trace_id);
    let call = span_of(&spans, "call", "callee", &callee);
    assert_eq!(
        call.parent_span_id, root_id,
        "the call is a child of the caller's span"
    );
    let rpc = span_of(&spans, "rpc", "agent", &callee);
    assert_eq!(
        rpc.parent_span_id,
        call.span_context.span_id(),
        "the method continues the call"
    );
    // Over RabbitMQ the reply is a message: it names the method's span.
    assert_eq!(replies.len(), usize::from(over_bus), "{replies:?}");
    for reply in replies {
        let reply = reply.record.properties.trace.clone().expect("traced reply");
        assert_eq!(reply.trace_id(), trace_id.to_bytes());
        assert_eq!(reply.span_id(), rpc.span_context.span_id().to_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_its_method_are_linked_on_the_embedded_bus() {
    call(common::buses::memory().await, false).await;
}

#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_its_reply_are_linked_on_rabbitmq() {
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    call(rt, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_oversized_traceparent_is_ignored_with_a_debug_line() {
    let otel = otel();
    let rt = common::buses::memory().await;
    let client = rt.client(unique("otel-t")).await.unwrap();
    let relay = unique("otel-relay");
    let handle = rt
        .spawn_as(
            &relay,
            Relay {
                next: client.identity().to_owned(),
            },
        )
        .await
        .unwrap();
    let malformed = format!("garbage-{relay}");
    let oversized = format!("01-{}-00f067aa0ba902b7-01-{}", "ab".repeat(16), "x".repeat(5000));
    for bad in [&malformed, &oversized] {
        let mut properties = Properties::new("Hop", client.identity());
        properties
            .headers
            .insert(TRACEPARENT.to_owned(), bad.as_str().into());
        client
            .emit(
                Route::Direct(relay.as_str().into()),
                properties,
                br#"{"n":0}"#.to_vec().into(),
            )
            .await
            .unwrap();
        let got = client
            .recv_timeout(Duration::from_secs(10))
            .await
            .expect("handled");
        let context = got.properties.trace.clone().expect("a new trace");
        assert_ne!(context.traceparent(), *bad);
    }
    assert_eq!(handle.behaviour("hop").unwrap().errors, 0, "no failure");
    client.shutdown().await;
    rt.shutdown().await;
    let lines = otel.lines.lock().unwrap().clone();
    for reason in [format!("garbage-{relay}"), "oversized".to_owned()] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("malformed traceparent ignored") && l.contains(&reason)),
            "a debug line for {reason}: {lines:#?}"
        );
    }
    // The relay's runs are in new traces, one each, not in the header's.
    let spans = otel.exporter.get_finished_spans().unwrap();
    let runs: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "handler" && attribute(s, "agent").as_deref() == Some(relay.as_str()))
        .collect();
    assert_eq!(runs.len(), 2);
    let header_trace = TraceId::from_bytes([0xab; 16]);
    assert!(runs.iter().all(|r| r.span_context.trace_id() != header_trace));
    assert_ne!(runs[0].span_context.trace_id(), runs[1].span_context.trace_id());
}
