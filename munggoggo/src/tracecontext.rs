//! W3C trace context (`traceparent`, `tracestate`) on every message, so
//! that a chain of messages across agents and processes forms one trace.
//! It travels as [`Properties::trace`] (on RabbitMQ as the two headers;
//! the embedded bus passes it on as it is).
//!
//! Every message an agent sends carries a trace context: inside a
//! handler, behaviour step or `#[rpc]` method, the trace of the run (a
//! handler's and a method's run continue the trace of the message that
//! started them, with a span id of their own); elsewhere a new trace. A
//! context the sender set itself (the field, or a `traceparent` header) is
//! kept. This needs no feature: a process in the middle of a chain passes
//! the trace on whether or not it exports spans (feature `otel`, module
//! `otel`).
//!
//! A `traceparent` that is malformed or oversized, from a foreign sender,
//! is ignored with a debug line: the run starts a new trace. munggoggo 0.4
//! agents ignore the headers and send none, so a chain that crosses a 0.4
//! agent goes on in a new trace after it.

use std::future::Future;
use std::sync::Arc;

use crate::message::{Properties, Received};
use crate::traceparent::from_wire;
pub use crate::traceparent::{TraceContext, TRACEPARENT, TRACESTATE};

tokio::task_local! {
    /// The context of the run in progress on this task.
    static CURRENT: TraceContext;
}

/// The context of the handler, behaviour step or `#[rpc]` method running on
/// this task (with feature `otel`, else the current `tracing` span's when
/// it belongs to an exported trace).
pub fn current() -> Option<TraceContext> {
    match CURRENT.try_with(TraceContext::clone) {
        Ok(context) => Some(context),
        #[cfg(feature = "otel")]
        Err(_) => crate::otel::current(),
        #[cfg(not(feature = "otel"))]
        Err(_) => None,
    }
}

/// Runs `future` with `context` as the current one.
pub(crate) async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The context of a message received.
pub(crate) fn incoming(msg: &Received) -> Option<TraceContext> {
    msg.properties.trace.clone()
}

/// Starts a run (its `span`) that continues `parent`, or a new trace: with
/// feature `otel` and an OpenTelemetry layer the span joins the trace and
/// its ids are the run's; else the run gets a span id of its own.
pub(crate) fn start(span: &tracing::Span, parent: Option<&TraceContext>) -> TraceContext {
    #[cfg(feature = "otel")]
    if let Some(context) = crate::otel::start(span, parent) {
        return context;
    }
    let _ = span;
    match parent {
        Some(parent) => parent.child(),
        None => TraceContext::root(),
    }
}

/// Runs a call of `method` on `target`: with feature `otel` and an
/// OpenTelemetry layer, in a `call` span of its own (the parent of the
/// called method's span), else as it is.
pub(crate) async fn call<F: Future>(target: &str, method: &str, future: F) -> F::Output {
    #[cfg(feature = "otel")]
    {
        use tracing::Instrument;
        let span = tracing::debug_span!("call", callee = target, method);
        if let Some(context) = crate::otel::start(&span, current().as_ref()) {
            return scope(context, future).instrument(span).await;
        }
    }
    let _ = (target, method);
    future.await
}

/// Puts the trace context on a message about to be published: the one
/// its sender set ([`Properties::trace`], else a `traceparent` in its
/// headers), else the current one, else a new trace. On the embedded bus
/// it travels as it is; on RabbitMQ as the two headers.
pub(crate) fn stamp(properties: &mut Arc<Properties>) {
    if properties.trace.is_some() {
        return;
    }
    let context = from_wire(&properties.headers)
        .or_else(current)
        .unwrap_or_else(TraceContext::root);
    Arc::make_mut(properties).trace = Some(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[tokio::test]
    async fn a_stamp_continues_the_current_run_and_keeps_a_senders_context() {
        let run = TraceContext::parse(EXAMPLE, None).unwrap();
        let mut p = Arc::new(Properties::new("T", "a"));
        scope(run.clone(), async { stamp(&mut p) }).await;
        assert_eq!(p.trace.as_ref(), Some(&run));
        let mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut own = Properties::new("T", "a");
        own.headers.insert(TRACEPARENT.into(), mine.into());
        let mut own = Arc::new(own);
        scope(run.clone(), async { stamp(&mut own) }).await;
        assert_eq!(
            own.trace.as_ref().map(TraceContext::traceparent).as_deref(),
            Some(mine)
        );
        let mut outside = Arc::new(Properties::new("T", "a"));
        stamp(&mut outside);
        let started = outside.trace.clone().unwrap();
        assert_ne!(started.trace_id(), run.trace_id());
    }
}
