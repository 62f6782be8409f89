//! Calls in both directions: [`Pending`], this agent's requests waiting for
//! their reply, [`IncomingCall`], an `#[rpc]` call on its way to the
//! agent's task, and [`CallTrace`], the trace entries of a call between
//! agents of one embedded-bus runtime (which no message carries).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::bus::control_queue;
use crate::error::{CallError, Error};
use crate::message::{self, DeliveryInfo, Properties, SmolStr};
use crate::protocol::{is_observer_traffic, rpc_body, RpcCall, REPLY, REQUEST};
use crate::trace::{Deferred, TraceRecord, TraceStore};

/// A reply, as the pending call receives it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
}

impl IncomingCall {
    /// Records the request of an in-process call in both trace stores;
    /// `callee`: the called agent's identity and trace store.
    pub(crate) fn trace_request(&self, callee: (&SmolStr, &TraceStore)) {
        if let Some(trace) = &self.trace {
            trace.request(callee, &self.call);
        }
    }

    /// Hands the result of a call from inside the process to its caller
    /// (recording the reply in both trace stores first).
    pub(crate) fn answer_local(
        mut self,
        callee: (&SmolStr, &TraceStore),
        result: std::result::Result<serde_json::Value, CallError>,
    ) {
        if let Some(trace) = self.trace.take() {
            trace.reply(callee, &self.call.method, &result);
        }
        if let Some(local) = self.local.take() {
            let _ = local.send(result);
        }
    }
}

/// Calls waiting for their reply, by correlation id.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    calls: Mutex<foldhash::HashMap<SmolStr, oneshot::Sender<Reply>>>,
}

/// A call's place in [`Pending`]: removed when dropped, so a caller that
/// gives up (timeout, dropped future) leaves no entry behind.
pub(crate) struct Waiting<'a> {
    pending: &'a Pending,
    id: SmolStr,
    reply: Option<oneshot::Receiver<Reply>>,
}

impl Waiting<'_> {
    /// The reply; `None` when the agent stopped first.
    pub(crate) async fn reply(&mut self) -> Option<Reply> {
        match self.reply.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.remove(&self.id);
    }
}

impl Pending {
    /// Registers a call waiting for the reply with correlation id `id`.
    pub(crate) fn insert(&self, id: impl Into<SmolStr>) -> Waiting<'_> {
        let id = id.into();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        Waiting {
            pending: self,
            id,
            reply: Some(rx),
        }
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many calls wait for their reply.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Completes the call waiting for `id`; false when none waits (late or unknown).
    pub(crate) fn complete(&self, id: &str, reply: Reply) -> bool {
        match self.lock().remove(id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting call: the connection is gone.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, foldhash::HashMap<SmolStr, oneshot::Sender<Reply>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call of an `#[rpc]` method on its way to the agent's task, which
/// runs it and answers.
#[derive(Debug)]
pub(crate) struct IncomingCall {
    pub(crate) index: usize,
    pub(crate) call: RpcCall,
    /// Where the answer goes.
    pub(crate) to: String,
    pub(crate) correlation_id: String,
    /// Where a call from inside the process (another agent of an
    /// embedded-bus runtime, a method queue of [`crate::pyrpc`]) takes its
    /// result.
    pub(crate) local: Option<oneshot::Sender<std::result::Result<serde_json::Value, CallError>>>,
    /// The caller of an in-process call, for the trace stores.
    pub(crate) trace: Option<CallTrace>,
    /// The trace the caller's request is part of.
    pub(crate) parent: Option<crate::tracecontext::TraceContext>,
}

/// What a local call's answer arrives on.
pub(crate) type LocalAnswer = oneshot::Receiver<std::result::Result<serde_json::Value, CallError>>;

impl IncomingCall {
    /// A call whose result comes back on the receiver instead of going out
    /// as a reply.
    pub(crate) fn local(call: RpcCall, trace: Option<CallTrace>) -> (Box<Self>, LocalAnswer) {
        let (tx, rx) = oneshot::channel();
        let incoming = Box::new(IncomingCall {
            index: usize::MAX,
            call,
            to: String::new(),
            correlation_id: String::new(),
            local: Some(tx),
            trace,
            parent: crate::tracecontext::current(),
        });
        (incoming, rx)
    }
}

/// The caller's side of an in-process call, so that the callee's task can
/// record the request and the reply in both trace stores as the bus would
/// have carried them (the caller waits meanwhile, so the work costs it
/// nothing).
pub(crate) struct CallTrace {
    caller: SmolStr,
    traces: TraceStore,
    correlation_id: SmolStr,
}

impl std::fmt::Debug for CallTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTrace")
            .field("caller", &self.caller)
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

impl CallTrace {
    /// The trace of a call from the agent `caller` with this trace store.
    pub(crate) fn new(caller: SmolStr, traces: TraceStore, correlation_id: SmolStr) -> Self {
        CallTrace {
            caller,
            traces,
            correlation_id,
        }
    }

    /// Records the request (before its parameters are taken); `callee`:
    /// the called agent's identity and trace store.
    pub(crate) fn request(&self, callee: (&SmolStr, &TraceStore), call: &RpcCall) {
        let caller = (&self.caller, &self.traces);
        self.record(caller, callee, &call.method, || {
            Traced::Params(call.params.clone())
        });
    }

    /// Records the reply.
    pub(crate) fn reply(
        &self,
        callee: (&SmolStr, &TraceStore),
        method: &str,
        outcome: &std::result::Result<serde_json::Value, CallError>,
    ) {
        let caller = (&self.caller, &self.traces);
        self.record(callee, caller, method, || Traced::Outcome(outcome.clone()));
    }

    /// Records one message: outgoing in the store of `from`, incoming in
    /// that of `to` (except the traffic of a CLI observer, as on the bus).
    /// Both entries keep what the message carries and encode it only if
    /// they are read.
    fn record(
        &self,
        from: (&SmolStr, &TraceStore),
        to: (&SmolStr, &TraceStore),
        method: &str,
        carried: impl FnOnce() -> Traced,
    ) {
        let traced_by = |traces: &TraceStore, peer: &str| {
            traces.capacity() > 0 && !is_observer_traffic(Some(message::RPC), peer)
        };
        let (outgoing, incoming) = (traced_by(from.1, to.0), traced_by(to.1, from.0));
        if !outgoing && !incoming {
            return;
        }
        let message: Arc<dyn Deferred> = Arc::new(TracedCall {
            from: from.0.clone(),
            to: to.0.clone(),
            correlation_id: self.correlation_id.clone(),
            timestamp: message::now_secs(),
            // Inline (no allocation) for a method name of up to 23 bytes.
            method: SmolStr::new(method),
            carried: carried(),
        });
        if outgoing {
            from.1.append_deferred(&message, true);
        }
        if incoming {
            to.1.append_deferred(&message, false);
        }
    }
}

/// A request or reply of an in-process call, as the trace keeps it: what
/// its record is made of when read. (It has no message id: it was never
/// published.) Its `RpcCall` is made only then, so that a call costs its
/// trace a copy of the parameters and of the result, not of the call.
struct TracedCall {
    from: SmolStr,
    /// The receiver, whose control queue the bus would have carried it to.
    to: SmolStr,
    correlation_id: SmolStr,
    /// When it was sent (UTC seconds).
    timestamp: u64,
    method: SmolStr,
    carried: Traced,
}

/// What a traced request or reply carries.
enum Traced {
    /// A request's parameters.
    Params(serde_json::Value),
    /// A reply's result or error.
    Outcome(std::result::Result<serde_json::Value, CallError>),
}

impl TracedCall {
    /// The `RpcCall` the bus would have carried, and its request type.
    fn call(&self) -> (RpcCall, i64) {
        match &self.carried {
            Traced::Params(params) => (RpcCall::request(&self.method, params.clone()), REQUEST),
            Traced::Outcome(outcome) => {
                let mut reply = RpcCall::request(&self.method, serde_json::Value::Null);
                reply.set_outcome(outcome.clone());
                (reply, REPLY)
            }
        }
    }
}

impl Deferred for TracedCall {
    fn sender(&self) -> &str {
        &self.from
    }

    fn is_control(&self) -> bool {
        false
    }

    fn record(&self, outgoing: bool) -> TraceRecord {
        let properties = Arc::new(Properties {
            kind: Some(SmolStr::new_static(message::RPC)),
            app_id: Some(self.from.clone()),
            correlation_id: Some(self.correlation_id.clone()),
            timestamp: Some(self.timestamp),
            content_type: Some(SmolStr::new_static(message::JSON_CONTENT_TYPE)),
            ..Properties::default()
        });
        let (call, request_type) = self.call();
        let encoded = serde_json::to_string(&call).map_err(|source| Error::Encode {
            type_name: "RpcCall".to_owned(),
            source,
        });
        let body = encoded
            .and_then(|c_data| rpc_body("RpcCall", c_data, request_type))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot encode a traced call");
                Bytes::new()
            });
        let queue = SmolStr::from(control_queue(&self.to));
        if outgoing {
            return TraceRecord::outgoing(queue.clone(), queue, &properties, body);
        }
        let delivery = DeliveryInfo {
            routing_key: queue.clone(),
            consumer_tag: queue,
            ..DeliveryInfo::default()
        };
        TraceRecord::delivered(properties, Arc::new(delivery), body)
    }
}
