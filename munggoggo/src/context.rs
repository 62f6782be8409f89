//! [`Context`]: what handlers get to act on the bus and on their own agent.

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use crate::agent::{AgentOptions, AgentSpec, BehaviourKind, Route as HandlerRoute};
use crate::behaviour::{AtomicState, Behaviour, BehaviourStatus, State};
use crate::bus::{Confirm, Endpoint, Outgoing, Route};
use crate::error::{Error, Result};
use crate::message::{self, Message, Properties};
use crate::trace::{Category, TraceRecord, TraceStore};

/// Requests to an agent's task (calls and the stop request have lanes of
/// their own).
#[derive(Debug)]
pub(crate) enum Control {
    /// (Re)start behaviour `i`.
    Start(usize),
    /// Stop behaviour `i`.
    Stop(usize),
}

/// How many start/stop requests may wait for the agent's task.
pub(crate) const CONTROL_QUEUE: usize = 64;

/// The state of one running agent, shared by its task, its dispatcher, its
/// handlers (through [`Context`]) and its [`crate::AgentHandle`].
pub(crate) struct Core {
    pub(crate) identity: Arc<str>,
    pub(crate) options: AgentOptions,
    pub(crate) spec: &'static AgentSpec,
    pub(crate) endpoint: Arc<dyn Endpoint>,
    pub(crate) traces: TraceStore,
    pub(crate) behaviours: Vec<Behaviour>,
    pub(crate) state: AtomicState,
    pub(crate) control: mpsc::Sender<Control>,
    /// Calls of `#[rpc]` methods waiting for the agent's task (bounded).
    pub(crate) calls: mpsc::Sender<crate::system::IncomingCall>,
    /// Set when the agent is asked to stop.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) pending: crate::rpc::Pending,
    pub(crate) peers: crate::peers::PeerTable,
    /// User deliveries the dispatcher holds (read ahead or in the window).
    pub(crate) buffered: std::sync::atomic::AtomicUsize,
    /// Woken whenever the agent handled something (for tests that wait).
    pub(crate) activity: tokio::sync::Notify,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Binding keys set with [`Context::set_topics`], by behaviour index.
    topics: Mutex<Vec<Option<Vec<String>>>>,
}

impl Core {
    pub(crate) fn new(
        identity: &str,
        options: AgentOptions,
        spec: &'static AgentSpec,
        endpoint: Arc<dyn Endpoint>,
        control: mpsc::Sender<Control>,
        calls: mpsc::Sender<crate::system::IncomingCall>,
    ) -> Self {
        Core {
            identity: identity.into(),
            traces: TraceStore::with_body_limit(options.trace_size, options.trace_body_limit),
            behaviours: spec
                .behaviours
                .iter()
                .map(|b| Behaviour::new(identity, *b))
                .collect(),
            options,
            spec,
            endpoint,
            state: AtomicState::new(State::Init),
            control,
            calls,
            shutdown: watch::channel(false).0,
            pending: crate::rpc::Pending::default(),
            peers: crate::peers::PeerTable::default(),
            buffered: std::sync::atomic::AtomicUsize::new(0),
            activity: tokio::sync::Notify::new(),
            tasks: Mutex::new(Vec::new()),
            topics: Mutex::new(vec![None; spec.behaviours.len()]),
        }
    }

    /// The binding keys of topic handler `i`: those set with
    /// [`Context::set_topics`], else those of its attribute.
    pub(crate) fn binding_keys(&self, i: usize) -> Vec<String> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        match (topics.get(i).cloned().flatten(), self.behaviours[i].spec.kind) {
            (Some(keys), _) => keys,
            (None, BehaviourKind::Handler(HandlerRoute::Topic(keys))) => {
                keys.iter().map(|k| (*k).to_owned()).collect()
            }
            (None, _) => Vec::new(),
        }
    }

    /// The queue name of topic handler `i`: `<identity>.<method>.pubsub_queue`.
    pub(crate) fn subscription_queue(&self, i: usize) -> String {
        format!("{}.pubsub_queue", self.behaviours[i].name)
    }

    pub(crate) fn find_behaviour(&self, name: &str) -> Option<usize> {
        self.behaviours.iter().position(|b| b.is_named(name))
    }

    fn unknown_behaviour(&self, name: &str) -> Error {
        Error::UnknownBehaviour {
            agent: self.identity.to_string(),
            behaviour: name.to_owned(),
            known: self.behaviours.iter().map(|b| b.name.to_string()).collect(),
        }
    }

    /// Starts behaviour `i`; false when it was running already.
    pub(crate) fn start_behaviour(&self, i: usize) -> Result<bool> {
        let state = &self.behaviours[i].state;
        if state.get() == State::Running {
            return Ok(false);
        }
        self.send_control(Control::Start(i))?;
        state.set(State::Running);
        Ok(true)
    }

    /// Stops behaviour `i` (it then reports `init`).
    pub(crate) fn stop_behaviour(&self, i: usize) -> Result<()> {
        self.send_control(Control::Stop(i))?;
        self.behaviours[i].state.set(State::Init);
        Ok(())
    }

    fn send_control(&self, control: Control) -> Result<()> {
        self.control.try_send(control).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Busy(format!(
                "agent `{}` has {CONTROL_QUEUE} start/stop requests waiting",
                self.identity
            )),
            mpsc::error::TrySendError::Closed(_) => Error::AgentStopped(self.identity.to_string()),
        })
    }

    /// Asks the agent's task to stop.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn abort_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// Publishes and records the message as outgoing; inside a handler or
    /// behaviour run the confirm is left to the runtime (see
    /// [`crate::runtime::invocation`]), elsewhere it is waited for.
    pub(crate) async fn emit(&self, route: Route, properties: Properties, body: Bytes) -> Result<()> {
        let confirm = self.publish(route, properties, body.clone(), body).await?;
        crate::runtime::invocation::settle(confirm).await
    }

    /// Publishes `body`, recording `traced` as its body in the trace store
    /// (a trace listing must not carry the previous listings, or each
    /// listing would contain all earlier ones). Returns once the message
    /// is on its way, with its confirm.
    pub(crate) async fn publish(
        &self,
        route: Route,
        properties: Properties,
        body: Bytes,
        traced: Bytes,
    ) -> Result<Confirm> {
        let target = match &route {
            Route::Direct(identity) => identity.as_str(),
            Route::Fanout => "fanout",
            Route::Topic(_) => "publish",
        };
        let properties = Arc::new(self.stamp_user(properties));
        if !crate::system::is_observer_traffic(properties.kind.as_deref(), target) {
            self.traces.append(
                Category::Outgoing,
                TraceRecord::outgoing(target, route.routing_key(), &properties, traced),
            );
        }
        self.endpoint
            .publish(Outgoing {
                route,
                properties,
                body,
            })
            .await
    }

    /// Publishes a message nobody waits for (a reply, a pong): a failure
    /// is logged at debug level once its confirm says so.
    pub(crate) async fn publish_detached(
        &self,
        route: Route,
        properties: Properties,
        body: Bytes,
        traced: Bytes,
    ) {
        let to = route.routing_key().to_owned();
        match self.publish(route, properties, body, traced).await {
            Ok(confirm) if confirm.is_done() => {}
            Ok(confirm) => {
                let identity = Arc::clone(&self.identity);
                tokio::spawn(async move {
                    if let Err(e) = confirm.wait().await {
                        tracing::debug!(agent = %identity, to, error = %e, "reply not delivered (the peer left?)");
                    }
                });
            }
            Err(e) => {
                tracing::debug!(agent = %self.identity, to, error = %e, "reply not delivered (the peer left?)")
            }
        }
    }
}

/// A handle on one agent, given to its handlers: its identity, sending,
/// its traces and behaviours, spawning and stopping. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("identity", &self.identity())
            .finish()
    }
}

impl Context {
    /// The agent's identity.
    pub fn identity(&self) -> &str {
        &self.core.identity
    }

    /// The agent's Rust type name.
    pub fn agent_type(&self) -> &'static str {
        self.core.spec.name
    }

    /// The agent's options.
    pub fn options(&self) -> &AgentOptions {
        &self.core.options
    }

    /// Sends `msg` to the agent with identity `to`. Fails with
    /// [`Error::UnknownTarget`] when no agent has that identity.
    ///
    /// Inside a handler or a behaviour run the send returns once the
    /// message is on its way: the runtime waits for the broker's confirms
    /// of the run's sends before it acknowledges the run's input, and a
    /// send the broker refuses (or returns: unknown identity) fails the run
    /// (error count, trace entry, log line; its input is rejected). Call
    /// [`Context::flush`] to learn the outcome in the handler itself.
    /// Elsewhere (setup, a spawned task, a [`crate::runtime::Client`]) the send
    /// waits for its confirm.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Message)]
    /// struct Pong { n: u64 }
    ///
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.send("pinger", &Pong { n: 1 }).await?; // type "Pong", to the agent `pinger`
    /// # Ok(()) }
    /// ```
    pub async fn send<M: Message + Serialize>(&self, to: &str, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        self.send_raw(to, M::TYPE, body).await
    }

    /// Sends `msg` to every agent (this one included).
    pub async fn broadcast<M: Message + Serialize>(&self, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        self.broadcast_raw(M::TYPE, body).await
    }

    /// Publishes `msg` on `topic` to every matching subscription
    /// (`#[on_message(topic = "sensors.*")]` handlers, on any agent).
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Message)]
    /// struct Reading { celsius: f64 }
    ///
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.publish("sensors.kitchen", &Reading { celsius: 21.5 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish<M: Message + Serialize>(&self, topic: &str, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        self.emit(
            Route::Topic(topic.to_owned()),
            Properties::new(self.core.publish_type::<M>(), self.identity()),
            body,
        )
        .await
    }

    /// Sends a body of any type name to `to`, as 0.4's `direct_send` does.
    pub async fn send_raw(&self, to: &str, kind: &str, body: impl Into<Bytes>) -> Result<()> {
        self.emit(
            Route::Direct(to.to_owned()),
            Properties::new(kind, self.identity()),
            body.into(),
        )
        .await
    }

    /// Broadcasts a body of any type name, as 0.4's `fanout_send` does.
    pub async fn broadcast_raw(&self, kind: &str, body: impl Into<Bytes>) -> Result<()> {
        self.emit(Route::Fanout, Properties::new(kind, self.identity()), body.into())
            .await
    }

    /// Publishes an untyped body on `topic` (type `PUBSUB`), as 0.4's `publish` does.
    pub async fn publish_raw(&self, topic: &str, body: impl Into<Bytes>) -> Result<()> {
        self.emit(
            Route::Topic(topic.to_owned()),
            Properties::new(message::PUBSUB, self.identity()),
            body.into(),
        )
        .await
    }

    /// Publishes a message with properties of your own (`app_id` and
    /// `timestamp` are filled in when missing).
    pub async fn emit(&self, route: Route, mut properties: Properties, body: Bytes) -> Result<()> {
        if properties.app_id.is_none() {
            properties.app_id = Some(self.identity().to_owned());
        }
        if properties.timestamp.is_none() {
            properties.timestamp = Some(message::now_secs());
        }
        self.core.emit(route, properties, body).await
    }

    /// Waits for the confirms of every message this handler or behaviour
    /// run has sent so far; the first failure (such as
    /// [`Error::UnknownTarget`]) is the result. Outside a run sends wait for
    /// their confirm themselves, and this returns at once.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct Order;
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.send("billing", &Order).await?;
    /// ctx.send("shipping", &Order).await?;
    /// ctx.flush().await?; // both reached their queues
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        crate::runtime::invocation::flush().await
    }

    /// How many calls and system requests of this agent wait for their
    /// reply.
    pub fn pending_calls(&self) -> usize {
        self.core.pending.len()
    }

    /// Runs `future` beside the agent; it is aborted when the agent stops.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::spawn(future);
        let mut tasks = self.core.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle.abort_handle());
        handle
    }

    /// Asks the agent to stop: running handlers finish, teardown runs, its
    /// queues are deleted.
    pub fn stop(&self) {
        self.core.request_shutdown();
    }

    /// The agent's state.
    pub fn state(&self) -> State {
        self.core.state.get()
    }

    /// The agent's trace store.
    pub fn traces(&self) -> &TraceStore {
        &self.core.traces
    }

    /// The status of every behaviour and handler.
    pub fn behaviours(&self) -> Vec<BehaviourStatus> {
        self.core.behaviours.iter().map(Behaviour::status).collect()
    }

    /// The status of one behaviour, by full name or method name.
    pub fn behaviour(&self, name: &str) -> Option<BehaviourStatus> {
        self.core
            .find_behaviour(name)
            .map(|i| self.core.behaviours[i].status())
    }

    /// Starts a stopped behaviour (a topic handler subscribes again).
    /// Returns false when it was running already; fails on a stopped agent
    /// ([`Error::AgentStopped`]) or one with too many start/stop requests
    /// waiting ([`Error::Busy`]).
    pub fn start_behaviour(&self, name: &str) -> Result<bool> {
        let i = self
            .core
            .find_behaviour(name)
            .ok_or_else(|| self.core.unknown_behaviour(name))?;
        self.core.start_behaviour(i)
    }

    /// Stops a behaviour: it is not scheduled again, a topic handler
    /// unsubscribes, messages for a stopped type handler are rejected.
    pub fn stop_behaviour(&self, name: &str) -> Result<()> {
        let i = self
            .core
            .find_behaviour(name)
            .ok_or_else(|| self.core.unknown_behaviour(name))?;
        self.core.stop_behaviour(i)
    }

    /// Names of the topics this agent's handlers subscribe to, with the
    /// handler: `(behaviour, binding keys)`.
    pub fn subscriptions(&self) -> Vec<(String, Vec<String>)> {
        self.core
            .behaviours
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.spec.kind, BehaviourKind::Handler(HandlerRoute::Topic(_))))
            .map(|(i, b)| (b.name.to_string(), self.core.binding_keys(i)))
            .collect()
    }

    /// Replaces the binding keys of a topic handler (its method or full
    /// name), for topics that come from configuration. Called in `#[setup]`
    /// it decides what the handler subscribes to; later, a running handler
    /// subscribes again with the new keys.
    ///
    /// ```no_run
    /// # use munggoggo::Context;
    /// # fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.set_topics("readings", &["sensors.kitchen.*", "sensors.hall.#"])?;
    /// # Ok(()) }
    /// ```
    pub fn set_topics<K: AsRef<str>>(&self, handler: &str, keys: &[K]) -> Result<()> {
        let i = self
            .core
            .find_behaviour(handler)
            .ok_or_else(|| self.core.unknown_behaviour(handler))?;
        if !matches!(
            self.core.behaviours[i].spec.kind,
            BehaviourKind::Handler(HandlerRoute::Topic(_))
        ) {
            return Err(Error::Config(format!(
                "`{}` is not a topic handler: only `#[on_message(topic = ...)]` handlers have binding keys",
                self.core.behaviours[i].name
            )));
        }
        let keys: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        for key in &keys {
            crate::bus::validate_binding_key(key)
                .map_err(|reason| Error::Config(format!("binding key `{key}`: {reason}")))?;
        }
        self.core.topics.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(keys);
        if self.state() == State::Running && self.core.behaviours[i].state.get() == State::Running {
            self.core.stop_behaviour(i)?;
            self.core.start_behaviour(i)?;
        }
        Ok(())
    }
}
