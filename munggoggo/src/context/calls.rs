//! Calls and system requests to other agents: `#[rpc]` methods by name,
//! ping, behaviours, traces, shutdown, description. Each is an RPC message
//! routed by identity; the reply completes the pending call directly (see
//! [`crate::rpc`]).

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Context;
use crate::bus::{control_queue, Route};
use crate::error::{CallError, Error, ErrorCode, Result};
use crate::introspect::{AgentDescription, DESCRIBE_AGENT};
use crate::message::{self, Properties};
use crate::protocol::{rpc_body, ListTraceStore, ManageBehav, RpcCall, REQUEST};
use crate::runtime::calls::CallTrace;
use crate::runtime::core::Core;
use crate::trace::TraceQuery;

/// What times a call for the metrics (nothing without them).
#[cfg(feature = "metrics")]
type CallTimer = crate::metrics::CallTimer;
#[cfg(not(feature = "metrics"))]
type CallTimer = ();

impl Context {
    /// Calls the `#[rpc]` method `method` of agent `target` with `params`
    /// (a tuple or array for positional parameters, a struct or map for
    /// named ones) and decodes its result, within the agent's call timeout.
    ///
    /// ```no_run
    /// # async fn f(ctx: &munggoggo::Context) -> munggoggo::Result<()> {
    /// let product: i64 = ctx.call("calc", "multiply", (3, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<R: DeserializeOwned>(
        &self,
        target: &str,
        method: &str,
        params: impl Serialize,
    ) -> Result<R> {
        self.call_with_timeout(target, method, params, self.core.options.call_timeout)
            .await
    }

    /// [`Context::call`] with a timeout of its own.
    pub async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        target: &str,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> Result<R> {
        let call = self.call_untraced(target, method, params, timeout);
        crate::tracecontext::call(target, method, call).await
    }

    /// [`Context::call_with_timeout`] without a span of its own.
    async fn call_untraced<R: DeserializeOwned>(
        &self,
        target: &str,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> Result<R> {
        if target == self.identity() && !self.core.spec.rpcs.is_empty() {
            return Err(Error::SelfCall(target.to_owned()));
        }
        #[cfg(feature = "metrics")]
        let mut timer = crate::metrics::CallTimer::start(&self.core.metrics, method);
        #[cfg(not(feature = "metrics"))]
        let timer: CallTimer = ();
        let params = serde_json::to_value(params).map_err(|source| Error::Encode {
            type_name: "RpcCall".to_owned(),
            source,
        })?;
        let call = RpcCall::request(method, params);
        let in_process = self.core.endpoint.in_process();
        let reply: RpcCall = match in_process.then(|| self.core.peers.local(target)).flatten() {
            Some(callee) => match call_in_process(&self.core, &callee, call, timeout).await? {
                // The result as it is, without the reply a call over the
                // bus would have got around it.
                Ok(result) => return self.decode_result(target, method, result, timer),
                Err(e) => {
                    let mut reply = RpcCall::request(method, serde_json::Value::Null);
                    reply.set_outcome(Err(e));
                    reply
                }
            },
            // Only a Rust agent has a control queue and knows `RpcCall`; a
            // munggoggo 0.4 agent is called through its exposed methods (at
            // once when it is known to be one).
            None => {
                let known = self.core.peers.py04.contains(target);
                // Boxed, as the call to a 0.4 agent below: inline, these
                // futures would make every call's future (the in-process
                // one included) several times larger, and it is moved
                // whole when it is awaited or boxed.
                let reply = match known {
                    true => Err(Error::UnknownTarget(target.to_owned())),
                    false => Box::pin(self.request_via(target, "RpcCall", &call, timeout, false)).await,
                };
                match reply {
                    Err(Error::UnknownTarget(_)) => {
                        let py04 = crate::pyrpc::call_py04(self, target, method, call.params, timeout, known);
                        let result = Box::pin(py04).await;
                        #[cfg(feature = "metrics")]
                        if result.is_ok() {
                            timer.succeeded();
                        }
                        return result;
                    }
                    reply => reply?,
                }
            }
        };
        if let Some(error) = reply.error {
            return Err(Error::Remote {
                target: target.to_owned(),
                error,
                code: reply
                    .code
                    .as_deref()
                    .and_then(|word| ErrorCode::from_word(word, reply.known)),
            });
        }
        self.decode_result(target, method, reply.result, timer)
    }

    /// Decodes the result of a call that succeeded.
    fn decode_result<R: DeserializeOwned>(
        &self,
        target: &str,
        method: &str,
        result: serde_json::Value,
        #[allow(unused_mut, unused_variables)] mut timer: CallTimer,
    ) -> Result<R> {
        let result = serde_json::from_value(result).map_err(|e| Error::BadReply {
            target: target.to_owned(),
            reason: format!("the result of `{method}` does not decode: {e}"),
        });
        #[cfg(feature = "metrics")]
        if result.is_ok() {
            timer.succeeded();
        }
        result
    }

    /// Pings agent `target` (system RPC `Ping`) and returns the round-trip time.
    pub async fn ping(&self, target: &str) -> Result<Duration> {
        #[derive(Serialize, Deserialize)]
        struct Ping {
            #[serde(default)]
            ping: String,
        }
        #[derive(Deserialize)]
        struct Pong {}
        let started = tokio::time::Instant::now();
        let _: Pong = self
            .request(
                target,
                "Ping",
                &Ping { ping: "ping".into() },
                self.core.options.call_timeout,
            )
            .await?;
        Ok(started.elapsed())
    }

    /// The full names of agent `target`'s behaviours (system RPC
    /// `ListBehav`; the reply shows a state machine's state after its
    /// name, which is left out here: see [`Context::behaviour_status`]).
    pub async fn list_behaviours(&self, target: &str) -> Result<Vec<String>> {
        #[derive(Serialize, Deserialize)]
        struct ListBehav {
            behavs: Vec<String>,
        }
        let reply: ListBehav = self
            .request(
                target,
                "ListBehav",
                &ListBehav { behavs: Vec::new() },
                self.core.options.call_timeout,
            )
            .await?;
        Ok(reply
            .behavs
            .into_iter()
            .map(|entry| match crate::fsm::behaviour_name(&entry) {
                name if name.len() < entry.len() => name.to_owned(),
                _ => entry,
            })
            .collect())
    }

    /// The status of every behaviour of agent `target`: state, runs, errors
    /// and last error (system RPC `BehavStatus`, which munggoggo for Rust
    /// adds; for a munggoggo 0.4 agent it fails at once with
    /// [`Error::Remote`], so fall back to [`Context::list_behaviours`] there).
    ///
    /// ```no_run
    /// # async fn f(ctx: &munggoggo::Context) -> munggoggo::Result<()> {
    /// for b in ctx.behaviour_status("calc").await? {
    ///     println!("{} {}: {} runs, {} errors", b.name, b.state, b.runs, b.errors);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn behaviour_status(&self, target: &str) -> Result<Vec<crate::BehaviourStatus>> {
        #[derive(Serialize, Deserialize)]
        struct BehavStatus {
            #[serde(default)]
            behaviours: Vec<crate::BehaviourStatus>,
        }
        let reply: BehavStatus = self
            .request_rust_only(
                target,
                "BehavStatus",
                &BehavStatus {
                    behaviours: Vec::new(),
                },
                self.core.options.call_timeout,
            )
            .await?;
        Ok(reply.behaviours)
    }

    /// Starts or stops behaviour `behaviour` of agent `target` (system RPC
    /// `ManageBehav`, `command` = `start` or `stop`); returns 0.4's result
    /// text, such as `"agent1.ping started."`.
    pub async fn manage_behaviour(&self, target: &str, behaviour: &str, command: &str) -> Result<String> {
        let request = ManageBehav {
            behav: behaviour.to_owned(),
            command: command.to_owned(),
            result: String::new(),
        };
        let reply: ManageBehav = self
            .request(target, "ManageBehav", &request, self.core.options.call_timeout)
            .await?;
        Ok(reply.result)
    }

    /// Agent `target`'s trace entries (system RPC `ListTraceStore`), oldest
    /// first, each `[epoch seconds, record, category]` as 0.4 sends them.
    pub async fn list_traces(&self, target: &str, query: &TraceQuery) -> Result<Vec<serde_json::Value>> {
        let request = ListTraceStore {
            limit: query.limit,
            app_id: query.sender.clone(),
            category: query.category.clone(),
            traces: Vec::new(),
        };
        let reply: ListTraceStore = self
            .request(target, "ListTraceStore", &request, self.core.options.call_timeout)
            .await?;
        Ok(reply.traces)
    }

    /// Asks agent `target` to shut down (system RPC `Shutdown`); it answers
    /// first, then stops gracefully.
    pub async fn shutdown_agent(&self, target: &str) -> Result<String> {
        #[derive(Serialize, Deserialize)]
        struct Shutdown {
            #[serde(default)]
            result: String,
        }
        let reply: Shutdown = self
            .request(
                target,
                "Shutdown",
                &Shutdown {
                    result: String::new(),
                },
                self.core.options.call_timeout,
            )
            .await?;
        Ok(reply.result)
    }

    /// Sends a system request and waits for the reply with the same
    /// correlation id.
    pub(crate) async fn request<Q: Serialize, R: DeserializeOwned>(
        &self,
        target: &str,
        c_type: &str,
        payload: &Q,
        timeout: Duration,
    ) -> Result<R> {
        self.request_via(target, c_type, payload, timeout, true).await
    }

    /// A request only Rust agents know, sent to the control queue alone: a
    /// munggoggo 0.4 agent (it has none) would drop it and leave the caller
    /// waiting for the timeout, so it gets [`Error::Remote`] at once.
    pub(crate) async fn request_rust_only<Q: Serialize, R: DeserializeOwned>(
        &self,
        target: &str,
        c_type: &str,
        payload: &Q,
        timeout: Duration,
    ) -> Result<R> {
        match self.request_via(target, c_type, payload, timeout, false).await {
            Err(Error::UnknownTarget(_)) => {
                // Nobody at all is UnknownTarget; a 0.4 agent answers pings.
                self.ping(target).await?;
                Err(Error::Remote {
                    target: target.to_owned(),
                    error: format!("`{target}` is a munggoggo 0.4 agent, which does not know `{c_type}`"),
                    code: None,
                })
            }
            reply => reply,
        }
    }

    /// [`Context::request`]; without `identity_queue`, only to a Rust
    /// agent's control queue (a munggoggo 0.4 agent is then unknown).
    async fn request_via<Q: Serialize, R: DeserializeOwned>(
        &self,
        target: &str,
        c_type: &str,
        payload: &Q,
        timeout: Duration,
        identity_queue: bool,
    ) -> Result<R> {
        let c_data = serde_json::to_string(payload).map_err(|source| Error::Encode {
            type_name: c_type.to_owned(),
            source,
        })?;
        let body = rpc_body(c_type, c_data, REQUEST)?;
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut buf)
            .to_owned();
        let properties = || {
            let mut properties = Properties::new(message::RPC, self.identity());
            properties.correlation_id = Some(id.as_str().into());
            properties.reply_to = Some(control_queue(self.identity()).into());
            properties
        };
        let first = properties();
        let mut waiting = self.core.pending.insert(id.clone());
        // A Rust agent takes requests on its control queue, apart from its
        // user traffic; a munggoggo 0.4 agent has none, so the request then
        // goes to its identity queue.
        let sent = match self
            .send_request(control_queue(target), first, body.clone())
            .await
        {
            Err(Error::UnknownTarget(_)) if identity_queue => {
                self.send_request(target.to_owned(), properties(), body).await
            }
            sent => sent,
        };
        sent.map_err(|e| match e {
            Error::UnknownTarget(_) => Error::UnknownTarget(target.to_owned()),
            e => e,
        })?;
        let reply = match tokio::time::timeout(timeout, waiting.reply()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(Error::AgentStopped(self.identity().to_owned())),
            Err(_) => {
                return Err(Error::Timeout {
                    target: target.to_owned(),
                    timeout,
                });
            }
        };
        if reply.c_type == "RpcError" {
            #[derive(Deserialize)]
            struct RpcError {
                #[serde(default)]
                error: String,
            }
            let error = serde_json::from_str::<RpcError>(&reply.c_data)
                .map(|e| e.error)
                .unwrap_or(reply.c_data);
            return Err(Error::Remote {
                target: target.to_owned(),
                error,
                code: None,
            });
        }
        serde_json::from_str(&reply.c_data).map_err(|e| Error::BadReply {
            target: target.to_owned(),
            reason: format!("`{}` reply does not decode: {e}", reply.c_type),
        })
    }

    /// Publishes a request to queue `to` and waits for its confirm.
    async fn send_request(&self, to: String, properties: Properties, body: Bytes) -> Result<()> {
        let traced = body.clone();
        self.core
            .publish(Route::Direct(to.into()), properties, body, traced)
            .await?
            .wait()
            .await
    }

    /// Asks agent `target` to describe itself (system request
    /// `DescribeAgent`): type, behaviours with kinds and counters, `#[rpc]`
    /// methods. For a munggoggo 0.4 agent, which does not know the request,
    /// it fails at once with [`crate::Error::Remote`]; its pong
    /// ([`Context::peers`]) is all there is to know about it.
    pub async fn describe_agent(&self, target: &str) -> Result<AgentDescription> {
        self.request_rust_only(
            target,
            DESCRIBE_AGENT,
            &serde_json::json!({}),
            self.options().call_timeout,
        )
        .await
    }
}

/// Calls an `#[rpc]` method of `callee`, an agent of the same runtime on
/// the embedded bus (see [`crate::bus::Endpoint::in_process`]): the call
/// goes to the callee's task and its answer comes back directly, with the
/// checks, errors and timeout of a call over the bus, and without
/// encoding the request and the reply as messages and decoding them
/// again. What comes back is the outcome the reply of a call over the bus
/// would have carried.
async fn call_in_process(
    caller: &Core,
    callee: &Core,
    call: RpcCall,
    timeout: Duration,
) -> Result<std::result::Result<serde_json::Value, CallError>> {
    // An id as the bus gives one (short on the embedded bus: no allocation).
    let correlation_id = caller.endpoint.message_id();
    // Listed among the caller's pending calls as a call over the bus is,
    // so that it fails at once when the caller stops.
    let mut waiting = caller.pending.insert(correlation_id.clone());
    let trace = CallTrace::new(caller.identity.clone(), caller.traces.clone(), correlation_id);
    let answer = callee.take_call(call, Some(trace));
    let answered = async {
        tokio::select! {
            answer = answer => Ok(answer),
            // Nothing completes an in-process call's entry: it ends only
            // when the caller stops.
            _ = waiting.reply() => Err(Error::AgentStopped(caller.identity.to_string())),
        }
    };
    let outcome = match tokio::time::timeout(timeout, answered).await {
        Ok(Ok(Ok(outcome))) => outcome,
        Ok(Ok(Err(_))) => Err(CallError::Failed(format!(
            "agent `{}` stopped before it answered",
            callee.identity
        ))),
        Ok(Err(stopped)) => return Err(stopped),
        Err(_) => {
            return Err(Error::Timeout {
                target: callee.identity.to_string(),
                timeout,
            })
        }
    };
    Ok(outcome)
}
