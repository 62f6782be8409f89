//! Request/reply between agents: the 0.4 system requests (ping, list
//! behaviours, manage behaviour, list traces, shutdown) and calls of
//! `#[rpc]` methods, with correlation ids and timeouts.
//!
//! On the wire every request and reply is a message of type `RPC` routed by
//! identity, with a body in munggoggo 0.4's RpcMessage envelope:
//! `{"c_type": ..., "c_data": "<JSON string>", "request_type": 1 | 2}`.
//! Replies go to the request's `app_id` and complete the pending call
//! directly, never through the caller's mailbox.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::bus::{control_queue, Route};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::{self, Properties};

/// Why a call of an `#[rpc]` method failed on the callee's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The agent has no `#[rpc]` method of this name.
    #[error("unknown method `{method}` (methods: {})", .known.join(", "))]
    UnknownMethod {
        /// The name that was called.
        method: String,
        /// The agent's methods.
        known: Vec<String>,
    },
    /// A parameter is missing or has the wrong type.
    #[error("bad parameters: {0}")]
    BadParams(String),
    /// The method returned an error (or panicked).
    #[error("{0}")]
    Failed(String),
    /// The agent has too many calls waiting already; it was not called.
    #[error("agent `{agent}` is busy: {waiting} calls are waiting already; try again later")]
    Busy {
        /// The callee's identity.
        agent: String,
        /// How many calls wait.
        waiting: usize,
    },
}

impl From<crate::BoxError> for CallError {
    fn from(e: crate::BoxError) -> Self {
        CallError::Failed(e.to_string())
    }
}

/// `request_type` of a request.
pub(crate) const REQUEST: i64 = 1;
/// `request_type` of a reply.
pub(crate) const REPLY: i64 = 2;

/// munggoggo 0.4's RpcMessage envelope.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RpcMessage {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
    #[serde(default = "default_request_type")]
    pub(crate) request_type: i64,
}

fn default_request_type() -> i64 {
    REQUEST
}

/// `ListTraceStore`'s payload.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct ListTraceStore {
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    #[serde(default)]
    pub(crate) app_id: Option<String>,
    #[serde(default)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) traces: Vec<serde_json::Value>,
}

/// `ManageBehav`'s payload.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct ManageBehav {
    #[serde(default)]
    pub(crate) behav: String,
    #[serde(default)]
    pub(crate) command: String,
    #[serde(default)]
    pub(crate) result: String,
}

/// `RpcCall`'s payload: a call of an `#[rpc]` method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RpcCall {
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) params: serde_json::Value,
    #[serde(default)]
    pub(crate) result: serde_json::Value,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// A reply, as the pending call receives it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
}

/// Calls waiting for their reply, by correlation id.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    calls: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
}

/// A call's place in [`Pending`]: removed when dropped, so a caller that
/// gives up (timeout, dropped future) leaves no entry behind.
pub(crate) struct Waiting<'a> {
    pending: &'a Pending,
    id: String,
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
    pub(crate) fn insert(&self, id: String) -> Waiting<'_> {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What can make calls: a handler's [`Context`], a test
/// [`Client`](crate::runtime::Client) or an [`AgentHandle`](crate::AgentHandle).
/// The typed clients that `#[agent]` generates take any of them:
///
/// ```
/// use munggoggo::prelude::*;
///
/// #[agent]
/// #[derive(Default)]
/// struct Calc;
///
/// #[agent]
/// impl Calc {
///     #[rpc]
///     async fn multiply(&mut self, x: i64, y: i64) -> i64 {
///         x * y
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> munggoggo::Result<()> {
/// let rt = munggoggo::Runtime::memory().agent(Calc).start().await?;
/// let client = rt.client("tester").await?;
/// // Checked at compile time: `multiply` takes two `i64` and returns one.
/// assert_eq!(Calc::client(&client).multiply(3, 2).await?, 6);
/// // The string form, for other languages and the command line:
/// assert_eq!(client.call::<i64>("calc", "multiply", (3, 2)).await?, 6);
/// rt.shutdown().await;
/// # Ok(()) }
/// ```
pub trait Caller {
    /// The context the calls are made from.
    fn context(&self) -> &Context;
}

impl Caller for Context {
    fn context(&self) -> &Context {
        self
    }
}

impl Caller for crate::runtime::Client {
    fn context(&self) -> &Context {
        self
    }
}

impl Caller for crate::AgentHandle {
    fn context(&self) -> &Context {
        crate::AgentHandle::context(self)
    }
}

/// Filters of a trace query (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// At most this many of the newest matching entries.
    pub limit: Option<usize>,
    /// Only messages from this sender.
    pub sender: Option<String>,
    /// Only this category (`incoming`, `outgoing`, `rejected` or a behaviour name).
    pub category: Option<String>,
}

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
        if target == self.identity() && !self.core.spec.rpcs.is_empty() {
            return Err(Error::SelfCall(target.to_owned()));
        }
        let params = serde_json::to_value(params).map_err(|source| Error::Encode {
            type_name: "RpcCall".to_owned(),
            source,
        })?;
        let call = RpcCall {
            method: method.to_owned(),
            params,
            result: serde_json::Value::Null,
            error: None,
        };
        // Only a Rust agent has a control queue and knows `RpcCall`; a
        // munggoggo 0.4 agent is called through its exposed methods.
        let reply: RpcCall = match self.request_via(target, "RpcCall", &call, timeout, false).await {
            Err(Error::UnknownTarget(_)) => {
                return crate::pyrpc::call_py04(self, target, method, call.params, timeout).await;
            }
            reply => reply?,
        };
        if let Some(error) = reply.error {
            return Err(Error::Remote {
                target: target.to_owned(),
                error,
            });
        }
        serde_json::from_value(reply.result).map_err(|e| Error::BadReply {
            target: target.to_owned(),
            reason: format!("the result of `{method}` does not decode: {e}"),
        })
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

    /// The full names of agent `target`'s behaviours (system RPC `ListBehav`).
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
        Ok(reply.behavs)
    }

    /// The status of every behaviour of agent `target`: state, runs, errors
    /// and last error (system RPC `BehavStatus`, which munggoggo for Rust
    /// adds; a munggoggo 0.4 agent answers it with [`Error::Remote`], so
    /// fall back to [`Context::list_behaviours`] there).
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
            .request(
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
        let id = uuid::Uuid::new_v4().to_string();
        let mut properties = Properties::new(message::RPC, self.identity());
        properties.correlation_id = Some(id.clone());
        properties.reply_to = Some(control_queue(self.identity()));
        let mut waiting = self.core.pending.insert(id);
        // A Rust agent takes requests on its control queue, apart from its
        // user traffic; a munggoggo 0.4 agent has none, so the request then
        // goes to its identity queue.
        let sent = match self
            .send_request(control_queue(target), properties.clone(), body.clone())
            .await
        {
            Err(Error::UnknownTarget(_)) if identity_queue => {
                self.send_request(target.to_owned(), properties, body).await
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
            });
        }
        serde_json::from_str(&reply.c_data).map_err(|e| Error::BadReply {
            target: target.to_owned(),
            reason: format!("`{}` reply does not decode: {e}", reply.c_type),
        })
    }
}

impl Context {
    /// Publishes a request to queue `to` and waits for its confirm.
    async fn send_request(&self, to: String, properties: Properties, body: Bytes) -> Result<()> {
        let traced = body.clone();
        self.core
            .publish(Route::Direct(to), properties, body, traced)
            .await?
            .wait()
            .await
    }
}

/// Encodes an RpcMessage envelope.
pub(crate) fn rpc_body(c_type: &str, c_data: String, request_type: i64) -> Result<Bytes> {
    let msg = RpcMessage {
        c_type: c_type.to_owned(),
        c_data,
        request_type,
    };
    serde_json::to_vec(&msg)
        .map(Bytes::from)
        .map_err(|source| Error::Encode {
            type_name: c_type.to_owned(),
            source,
        })
}
