//! Spans to OpenTelemetry (feature `otel`): every handler run, behaviour
//! step, `#[rpc]` method and outgoing call is a `tracing` span, and with
//! this module's layer installed those spans are exported through
//! `tracing-opentelemetry`, joined across agents and processes by the W3C
//! trace context the messages carry (see [`crate::tracecontext`]).
//!
//! [`init`] is the one-line set-up: the logging of
//! [`init_logging`](crate::init_logging) plus an OTLP/HTTP exporter
//! configured by the standard `OTEL_*` variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://localhost:4318`;
//! `OTEL_SERVICE_NAME`). A program with a subscriber of its own adds
//! [`layer`] to it, with a tracer provider of its choosing.
//!
//! ```no_run
//! # async fn f() -> munggoggo::Result<()> {
//! let _otel = munggoggo::otel::init("my-agents").expect("OTLP exporter");
//! munggoggo::Runtime::from_env()?.run_until_signal().await
//! // dropping `_otel` sends the spans still buffered
//! # }
//! ```

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Metadata, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::traceparent::TraceContext;

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;

/// The name of the instrumentation scope of munggoggo's spans.
pub const SCOPE: &str = "munggoggo";

/// The spans of munggoggo that are exported: one per run and per call.
/// (The long-lived `agent` span of each agent is not: it would hold every
/// run of an agent in one trace.)
const RUN_SPANS: [&str; 4] = ["handler", "behaviour", "rpc", "call"];

/// Whether a span or event goes to OpenTelemetry: munggoggo's run spans
/// (debug level) and its events from `info` up, anything else from `info` up.
fn exported(meta: &Metadata<'_>) -> bool {
    if meta.target().starts_with("munggoggo") && meta.is_span() {
        return RUN_SPANS.contains(&meta.name());
    }
    *meta.level() <= Level::INFO
}

/// The `tracing-opentelemetry` layer for `provider`, filtered to what
/// munggoggo exports: its run spans (handlers, behaviour steps, `#[rpc]`
/// methods, calls) and everything at `info` and above.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_filter(filter())
}

fn filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(exported as fn(&Metadata<'_>) -> bool)
}

/// Keeps the tracer provider of [`init`]; dropping it flushes the spans
/// still buffered and shuts the exporter down.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// The tracer provider (for spans of the program's own).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "OpenTelemetry exporter shut down with an error");
        }
    }
}

/// Installs a global subscriber: the log lines of
/// [`init_logging`](crate::init_logging) (filtered by `RUST_LOG`) and the
/// spans exported over OTLP/HTTP in batches, under the service name
/// `service` unless `OTEL_SERVICE_NAME` names one. Fails when the exporter
/// cannot be built or a global subscriber is set already.
pub fn init(service: &str) -> crate::Result<OtelGuard> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| crate::Error::Config(format!("cannot build the OTLP span exporter: {e}")))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    install(&provider)?;
    Ok(OtelGuard { provider })
}

/// Installs the logging subscriber with [`layer`] for `provider`.
fn install(provider: &SdkTracerProvider) -> crate::Result<()> {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(crate::logging::filter_from_env(crate::logging::DEFAULT_FILTER))
        .with_filter(crate::logging::LockedQueueNoise);
    tracing_subscriber::registry()
        .with(output)
        .with(layer(provider))
        .try_init()
        .map_err(|e| crate::Error::Config(format!("cannot install the OpenTelemetry subscriber: {e}")))
}

/// Joins the run's `span` to the trace of `parent` (a new trace without
/// one) and returns the span's own context; `None` when the span is not
/// exported (no OpenTelemetry layer, or filtered out).
pub(crate) fn start(span: &Span, parent: Option<&TraceContext>) -> Option<TraceContext> {
    if span.is_disabled() {
        return None;
    }
    let parent_cx = match parent {
        Some(parent) => opentelemetry::Context::new().with_remote_span_context(span_context(parent)),
        // Not the agent's span or whatever encloses the run: a new trace.
        None => opentelemetry::Context::new(),
    };
    span.set_parent(parent_cx).ok()?;
    own(span)
}

/// The context of the current `tracing` span, when it is exported.
pub(crate) fn current() -> Option<TraceContext> {
    let span = Span::current();
    if span.is_disabled() {
        return None;
    }
    own(&span)
}

fn own(span: &Span) -> Option<TraceContext> {
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    TraceContext::new(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.trace_flags().to_u8(),
    )
    .map(|c| c.with_trace_state(Some(&state)))
}

/// The OpenTelemetry form of a context received.
pub(crate) fn span_context(context: &TraceContext) -> SpanContext {
    let state = context
        .trace_state()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(context.trace_id()),
        SpanId::from_bytes(context.span_id()),
        TraceFlags::new(context.flags()),
        true,
        state,
    )
}
