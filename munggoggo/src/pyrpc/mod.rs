//! Exposed methods: munggoggo 0.4's way to call methods, aio-pika's RPC
//! pattern (docs/protocol.md, "Exposed methods"), both ways.
//!
//! - **Calling** a method a 0.4 agent exposes: [`Context::call_exposed`]
//!   publishes a pickled dict of keyword arguments to the queue named after
//!   the method, with the caller's control queue as `reply_to`; the reply
//!   (`result`, or `error` with the pickled exception) completes the
//!   pending call there, in the agent's control lane. [`Context::call`]
//!   takes this way by itself when the target is a 0.4 agent.
//! - **Serving**: an agent whose [`AgentOptions::expose_methods`] is set
//!   also consumes the method queue of each of its `#[rpc]` methods (on
//!   RabbitMQ), so that 0.4 agents and any aio-pika `RPC` call them. A call
//!   runs like any other call of the method, in the agent's task.
//!
//! [`AgentOptions::expose_methods`]: crate::AgentOptions::expose_methods

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use smol_str::ToSmolStr;

use crate::bus::{control_queue, Bus, Delivery, Route};
use crate::context::Context;
use crate::error::CallError;
use crate::error::{Error, Result};
use crate::message::{Properties, SmolStr};
use crate::protocol::RpcCall;
use crate::runtime::calls::Reply;
use crate::runtime::core::Core;
use crate::trace::{Category, TraceRecord};

pub mod pickle;

/// The AMQP `type` of a call.
pub const CALL: &str = "call";
/// The AMQP `type` of a successful reply.
pub const RESULT: &str = "result";
/// The AMQP `type` of a reply carrying a pickled exception.
pub const ERROR: &str = "error";

/// `Reply::c_type` of a pickle reply that could not be read.
const UNREADABLE: &str = "unreadable";

impl Context {
    /// Calls `method` as munggoggo 0.4 agents expose it (aio-pika's RPC
    /// pattern) with named parameters (`kwargs`: a struct or a map), within
    /// the agent's call timeout. Whichever agent exposing the method takes
    /// the call answers it: the pattern addresses methods, not agents.
    ///
    /// ```no_run
    /// # async fn f(ctx: &munggoggo::Context) -> munggoggo::Result<()> {
    /// let product: i64 = ctx
    ///     .call_exposed("example_rpc_method", serde_json::json!({"x": 6, "y": 7}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: [`Error::Remote`] with the text of the Python exception,
    /// [`Error::Exposed`] when no agent exposes the method or a body cannot
    /// be read, [`Error::Timeout`].
    pub async fn call_exposed<R: DeserializeOwned>(&self, method: &str, kwargs: impl Serialize) -> Result<R> {
        self.call_exposed_with_timeout(method, kwargs, self.core.options.call_timeout)
            .await
    }

    /// [`Context::call_exposed`] with a timeout of its own.
    pub async fn call_exposed_with_timeout<R: DeserializeOwned>(
        &self,
        method: &str,
        kwargs: impl Serialize,
        timeout: Duration,
    ) -> Result<R> {
        let bad = |reason: String| Error::Exposed {
            method: method.to_owned(),
            reason,
        };
        let kwargs = match serde_json::to_value(kwargs) {
            Ok(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Ok(kwargs @ serde_json::Value::Object(_)) => kwargs,
            Ok(other) => {
                return Err(bad(format!(
                    "exposed methods take named parameters: pass a map or a struct (a JSON object), not `{other}`"
                )))
            }
            Err(source) => {
                return Err(Error::Encode {
                    type_name: "call".to_owned(),
                    source,
                })
            }
        };
        let body = Bytes::from(pickle::encode(&kwargs).map_err(|e| bad(e.to_string()))?);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reply_to = control_queue(self.identity());
        let mut properties = Properties::new(CALL, self.identity());
        properties.content_type = Some(SmolStr::new_static(pickle::CONTENT_TYPE));
        properties.correlation_id = Some(id.as_str().into());
        properties.reply_to = Some(reply_to.as_str().into());
        properties.expiration = Some(timeout.as_millis().max(1).to_smolstr());
        properties
            .headers
            .insert("From".to_owned(), serde_json::Value::String(reply_to));
        let mut waiting = self.core.pending.insert(id);
        let traced = Bytes::from(format!("{method}(**{kwargs})"));
        let sent = async {
            self.core
                .publish(Route::Direct(method.into()), properties, body, traced)
                .await?
                .wait()
                .await
        };
        sent.await.map_err(|e| match e {
            Error::UnknownTarget(_) => {
                bad("no agent exposes it (the broker has no queue of that name)".to_owned())
            }
            e => e,
        })?;
        let reply = match tokio::time::timeout(timeout, waiting.reply()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(Error::AgentStopped(self.identity().to_owned())),
            Err(_) => {
                return Err(Error::Timeout {
                    target: method.to_owned(),
                    timeout,
                })
            }
        };
        match reply.c_type.as_str() {
            RESULT => serde_json::from_str(&reply.c_data).map_err(|e| Error::BadReply {
                target: method.to_owned(),
                reason: format!("the result does not decode: {e}"),
            }),
            ERROR => Err(Error::Remote {
                target: method.to_owned(),
                error: reply.c_data,
                code: None,
            }),
            CALL => Err(Error::Timeout {
                target: method.to_owned(),
                timeout,
            }),
            _ => Err(bad(reply.c_data)),
        }
    }
}

/// Calls `method` of agent `target`, which has no control queue: if it is
/// a munggoggo 0.4 agent (it answers a ping, unless it is `known` to be
/// one), through the methods 0.4 agents expose, with `params` as keyword
/// arguments. A method exposed under that name answers, whichever agent
/// exposes it: that is how 0.4's RPC works.
pub(crate) async fn call_py04<R: DeserializeOwned>(
    ctx: &Context,
    target: &str,
    method: &str,
    params: serde_json::Value,
    timeout: Duration,
    known: bool,
) -> Result<R> {
    let agents = &ctx.core.peers.py04;
    if !known {
        ctx.ping(target).await?;
        agents.insert(target);
    }
    tracing::debug!(agent = %ctx.identity(), target, method, "calling a munggoggo 0.4 agent through the method it exposes");
    if params.is_array() && params.as_array().is_some_and(|p| !p.is_empty()) {
        return Err(Error::Exposed {
            method: method.to_owned(),
            reason: format!(
                "`{target}` is a munggoggo 0.4 agent, whose methods take named parameters: pass a map or a struct (a JSON object), not `{params}`"
            ),
        });
    }
    let params = if params.is_object() {
        params
    } else {
        serde_json::Value::Object(Default::default())
    };
    let result = ctx.call_exposed_with_timeout(method, params, timeout).await;
    // The errors of the exposed method name the agent called.
    result.map_err(|e| match e {
        Error::Timeout { timeout, .. } => {
            // Gone, perhaps: the next call looks again.
            agents.remove(target);
            Error::Timeout {
                target: target.to_owned(),
                timeout,
            }
        }
        Error::Remote { error, code, .. } => Error::Remote {
            target: target.to_owned(),
            error,
            code,
        },
        Error::Exposed { method, reason } => Error::Exposed {
            reason: format!(
                "`{target}` is a munggoggo 0.4 agent, called through the method it exposes: {reason}"
            ),
            method,
        },
        e => e,
    })
}

/// Whether a delivery on the control queue is a reply of the aio-pika
/// pattern (types `result` and `error`, or a dead-lettered `call`).
pub(crate) fn is_reply(delivery: &Delivery) -> bool {
    let props = &delivery.received.properties;
    props.correlation_id.is_some() && matches!(props.kind.as_deref(), Some(RESULT | ERROR | CALL))
}

/// Completes the call a pickle reply answers, and acknowledges it; an
/// unreadable reply fails the call and is rejected (logged and traced).
pub(crate) async fn complete(core: &Core, delivery: Delivery) {
    let Delivery { received, acker, .. } = delivery;
    let kind = received.properties.kind.clone().unwrap_or_default();
    let id = received.properties.correlation_id.clone().unwrap_or_default();
    let decoded = match kind.as_str() {
        RESULT => pickle::decode(&received.body).map(|v| v.to_string()),
        ERROR => pickle::decode_exception(&received.body),
        _ => Ok(String::new()),
    };
    let (reply, failure) = match decoded {
        Ok(c_data) => (
            Reply {
                c_type: kind.to_string(),
                c_data,
            },
            None,
        ),
        Err(e) => {
            let reason = format!("unreadable `{kind}` reply: {e}");
            let reply = Reply {
                c_type: UNREADABLE.to_owned(),
                c_data: reason.clone(),
            };
            (reply, Some(reason))
        }
    };
    if !core.pending.complete(&id, reply) {
        tracing::warn!(agent = %core.identity, correlation_id = %id, "exposed-method reply for no waiting call (late or unknown) dropped");
    }
    match failure {
        Some(reason) => core.reject_with(&received, acker, reason).await,
        None => {
            if let Err(e) = acker.ack().await {
                tracing::warn!(agent = %core.identity, error = %e, "cannot acknowledge a reply");
            }
        }
    }
}

/// Starts serving the agent's `#[rpc]` methods on their method queues,
/// when it opted in and the bus has such queues; the serving ends when the
/// agent stops.
pub(crate) async fn serve(bus: &Arc<dyn Bus>, core: &Arc<Core>) -> Result<()> {
    if !core.options.expose_methods || core.spec.rpcs.is_empty() {
        return Ok(());
    }
    let methods: Vec<String> = core.spec.rpcs.iter().map(|r| r.method.to_owned()).collect();
    let Some(mut calls) = bus
        .expose(&core.identity, &methods, core.options.prefetch)
        .await?
    else {
        tracing::debug!(agent = %core.identity, "this bus has no method queues; methods not exposed");
        return Ok(());
    };
    tracing::info!(agent = %core.identity, ?methods, "methods exposed to munggoggo 0.4 (aio-pika RPC)");
    let core = Arc::clone(core);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                call = calls.next() => match call {
                    Some(call) => { tokio::spawn(answer(Arc::clone(&core), call)); }
                    None => break,
                },
                () = core.shutdown.wait() => break,
            }
        }
    });
    Ok(())
}

/// Runs one call from a method queue and answers it to its `reply_to`.
async fn answer(core: Arc<Core>, delivery: Delivery) {
    let Delivery { received, acker, .. } = delivery;
    core.traces
        .append(Category::Incoming, TraceRecord::incoming(&received));
    let method = received.delivery.routing_key.clone();
    let outcome = match pickle::decode(&received.body) {
        Ok(params @ serde_json::Value::Object(_)) => run(&core, &method, params).await,
        Ok(other) => Err(Failure::BadInput(format!(
            "the call's parameters are not a dict of keyword arguments: `{other}`"
        ))),
        Err(e) => Err(Failure::BadInput(format!(
            "the call's parameters cannot be read: {e}"
        ))),
    };
    let (kind, body) = match outcome {
        Ok(value) => (RESULT, pickle::encode(&value)),
        Err(failure) => {
            let text = match failure {
                Failure::Method(e) => e.to_string(),
                Failure::BadInput(reason) => {
                    tracing::warn!(agent = %core.identity, %method, sender = %received.origin(), reason = %reason, "exposed-method call refused");
                    core.traces.append(
                        Category::Rejected,
                        TraceRecord::incoming(&received).with_reason(reason.clone()),
                    );
                    reason
                }
            };
            (
                ERROR,
                pickle::encode_exception(&format!("{}: {text}", core.identity)),
            )
        }
    };
    let reply_to = received.properties.reply_to.clone().filter(|r| !r.is_empty());
    match (reply_to, body) {
        (Some(reply_to), Ok(body)) => {
            let mut properties = Properties::new(kind, core.identity.clone());
            properties.content_type = Some(SmolStr::new_static(pickle::CONTENT_TYPE));
            properties.correlation_id = received.properties.correlation_id.clone();
            let traced = Bytes::from(format!("{kind} of {method}"));
            let sent = match core
                .publish(Route::Direct(reply_to), properties, body.into(), traced)
                .await
            {
                Ok(confirm) => confirm.wait().await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::warn!(agent = %core.identity, %method, error = %e, "cannot answer an exposed-method call");
            }
        }
        (None, _) => {
            tracing::info!(agent = %core.identity, %method, "exposed-method call without reply_to: result dropped")
        }
        (_, Err(e)) => tracing::warn!(agent = %core.identity, %method, error = %e, "cannot pickle the reply"),
    }
    if let Err(e) = acker.ack().await {
        tracing::warn!(agent = %core.identity, error = %e, "cannot acknowledge an exposed-method call");
    }
}

/// Why a call from a method queue got no result.
enum Failure {
    /// The body could not be read: logged and traced as bad input.
    BadInput(String),
    /// The method (or the agent) answered with an error.
    Method(CallError),
}

/// Hands the call to the agent's task and waits for the method's result.
async fn run(
    core: &Core,
    method: &str,
    params: serde_json::Value,
) -> std::result::Result<serde_json::Value, Failure> {
    let call = RpcCall::request(method, params);
    let outcome = core
        .take_call(call, None)
        .await
        .unwrap_or_else(|_| Err(CallError::Failed(format!("agent `{}` stopped", core.identity))));
    outcome.map_err(Failure::Method)
}
