//! [`Core`]: the state of one running agent (identity, options, endpoint,
//! behaviours, queues to its task, pending calls, peers, spawned tasks),
//! shared by its task, its handlers (through
//! [`Context`](crate::Context)) and its [`AgentHandle`](crate::AgentHandle).
//!
//! Near 500 lines: the struct and the operations on it that all three
//! share (reject, release, settle, request a stop, take a call), kept
//! beside the fields they touch.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use smol_str::ToSmolStr;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::calls::{CallTrace, IncomingCall, LocalAnswer, Pending};
use super::flag::Flag;
use super::inbox::{Inbox, Refused};
use crate::agent::{AgentOptions, AgentSpec, BehaviourKind, HandlerRoute};
use crate::behaviour::{AtomicState, Behaviour, State};
use crate::bus::{control_queue, Acker, Confirm, Delivery, Endpoint, Outgoing, Route, Source};
use crate::error::{CallError, Error, Result};
use crate::message::{self, Message, Properties, Received, SmolStr};
use crate::peers::{Neighbour, Neighbourhood, PeerBehaviour, PeerStatus};
use crate::protocol;
use crate::trace::{Category, TraceRecord, TraceStore};
use crate::WireMode;

/// Requests to an agent's task (calls and the stop request have lanes of
/// their own), each with the sender of its answer.
#[derive(Debug)]
pub(crate) enum Control {
    /// (Re)start behaviour `i`; answered once it runs (a topic handler once
    /// it is subscribed again), or with the error of its subscription.
    Start(usize, oneshot::Sender<Result<()>>),
    /// Stop behaviour `i`; answered once it stopped (unsubscribed).
    Stop(usize, oneshot::Sender<()>),
    /// This replica got (`true`) or lost the lease of singleton behaviour `i`.
    Lease(usize, bool),
}

/// How many start/stop requests may wait for the agent's task.
pub(crate) const CONTROL_QUEUE: usize = 64;

/// The state of one running agent, shared by its task, its
/// handlers (through [`Context`]) and its [`crate::AgentHandle`].
pub(crate) struct Core {
    /// The agent's identity; a replica's own name (`<group>@<suffix>`).
    pub(crate) identity: SmolStr,
    /// The identity a replicated agent's replicas share (`None`: not
    /// replicated). Its user messages go out under this name.
    pub(crate) group: Option<SmolStr>,
    pub(crate) options: AgentOptions,
    pub(crate) spec: &'static AgentSpec,
    pub(crate) endpoint: Arc<dyn Endpoint>,
    pub(crate) traces: TraceStore,
    pub(crate) behaviours: Vec<Behaviour>,
    pub(crate) state: AtomicState,
    /// Start/stop requests waiting for the agent's task.
    pub(crate) control: Inbox<Control>,
    /// Calls of `#[rpc]` methods waiting for the agent's task (bounded).
    pub(crate) calls: Inbox<Box<IncomingCall>>,
    /// Set when the agent is asked to stop.
    pub(crate) shutdown: Flag,
    /// Set when another connection took the agent's identity while it was
    /// reconnecting: it stops as `crashed` (see [`crate::AgentHandle::failure`]).
    pub(crate) identity_lost: std::sync::atomic::AtomicBool,
    /// Set once the agent's task has ended (see `start::supervise`).
    pub(crate) done: Flag,
    pub(crate) pending: Pending,
    /// The runtime's agents and the remote peers they heard from.
    pub(crate) peers: Arc<Neighbourhood<Core>>,
    /// User deliveries the agent's task holds, read ahead of its handlers.
    pub(crate) buffered: std::sync::atomic::AtomicUsize,
    /// Woken whenever the agent handled something (for tests that wait).
    pub(crate) activity: super::flag::Activity,
    /// Wakes the agent's task for its quiet lanes (see [`super::flag::Quiet`]).
    pub(crate) quiet: Arc<super::flag::Quiet>,
    /// The message ids it handled last, with [`AgentOptions::dedup`].
    pub(crate) recent: Option<Box<super::dedup::RecentIds>>,
    /// Tasks spawned with [`crate::Context::spawn`], aborted when the agent stops.
    tasks: Mutex<Vec<AbortHandle>>,
    /// The task holding or asking for the lease of each singleton
    /// behaviour, by behaviour index (see `start::ask_lease`).
    leases: Mutex<Vec<Option<AbortHandle>>>,
    /// Binding keys set with [`crate::Context::set_topics`], by behaviour
    /// index (empty until the first is set).
    topics: Mutex<Vec<Option<Vec<String>>>>,
    /// Its metrics, when its runtime has them (see [`crate::metrics`]).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::Slot,
}

impl Core {
    pub(crate) fn new(
        identity: &str,
        group: Option<SmolStr>,
        options: AgentOptions,
        spec: &'static AgentSpec,
        machines: Vec<&'static crate::agent::BehaviourSpec>,
        endpoint: Arc<dyn Endpoint>,
        peers: Arc<Neighbourhood<Core>>,
    ) -> Self {
        let call_queue = options.call_queue;
        let recent = super::dedup::RecentIds::new(options.dedup);
        Core {
            identity: identity.into(),
            group,
            traces: TraceStore::with_body_limit(options.trace_size, options.trace_body_limit),
            behaviours: spec
                .behaviours
                .iter()
                .chain(machines)
                .map(|b| Behaviour::new(identity, b))
                .collect(),
            options,
            spec,
            endpoint,
            state: AtomicState::new(State::Init),
            control: Inbox::new(CONTROL_QUEUE),
            calls: Inbox::new(call_queue),
            shutdown: Flag::default(),
            identity_lost: std::sync::atomic::AtomicBool::new(false),
            done: Flag::default(),
            pending: Pending::default(),
            peers,
            buffered: std::sync::atomic::AtomicUsize::new(0),
            activity: super::flag::Activity::default(),
            quiet: super::flag::Quiet::new(),
            recent,
            tasks: Mutex::new(Vec::new()),
            leases: Mutex::new(Vec::new()),
            topics: Mutex::new(Vec::new()),
            #[cfg(feature = "metrics")]
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// The binding keys of topic handler `i`: those set with
    /// [`crate::Context::set_topics`], else those of its attribute.
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

    /// The queue name of topic handler `i`: `<identity>.<method>.pubsub_queue`
    /// (the group's identity for a subscription its replicas share).
    pub(crate) fn subscription_queue(&self, i: usize) -> String {
        match &self.group {
            Some(group) if self.shares_subscription(i) => {
                format!("{group}.{}.pubsub_queue", self.behaviours[i].spec.method)
            }
            _ => format!("{}.pubsub_queue", self.behaviours[i].name),
        }
    }

    /// Whether behaviour `i` runs only on the replica holding its lease:
    /// a singleton behaviour of a replicated agent (an agent that is not
    /// replicated is its group's only member and needs no lease).
    pub(crate) fn is_singleton(&self, i: usize) -> bool {
        let spec = self.behaviours[i].spec;
        self.group.is_some() && spec.singleton && !matches!(spec.kind, BehaviourKind::Handler(_))
    }

    /// Sets the task holding the lease of behaviour `i`; returns the one
    /// it replaces.
    pub(crate) fn lease_task(&self, i: usize, task: Option<AbortHandle>) -> Option<AbortHandle> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() <= i {
            leases.resize_with(i + 1, || None);
        }
        std::mem::replace(&mut leases[i], task)
    }

    /// Gives up the lease of singleton behaviour `i` (it was stopped on
    /// this replica): the next replica in line takes it over.
    pub(crate) fn give_up_lease(&self, i: usize) {
        if let Some(task) = self.lease_task(i, None) {
            task.abort();
        }
        self.behaviours[i]
            .leased
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// The lease of singleton behaviour `i`, shared by the group's replicas.
    pub(crate) fn lease_name(&self, i: usize) -> String {
        format!("{}.{}.singleton", self.sender(), self.behaviours[i].spec.method)
    }

    /// Tells the agent's task that this replica got or lost the lease of
    /// singleton behaviour `i` (waiting while its start/stop requests are
    /// full); false once the task is gone.
    pub(crate) async fn lease_changed(&self, i: usize, held: bool) -> bool {
        let mut request = Control::Lease(i, held);
        loop {
            match self.control.try_send(request) {
                Ok(()) => return true,
                Err(Refused::Full(again)) => request = again,
                Err(Refused::Closed(_)) => return false,
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Whether topic handler `i` shares its subscription queue with the
    /// other replicas of its group (once per group, the default).
    pub(crate) fn shares_subscription(&self, i: usize) -> bool {
        self.group.is_some() && self.behaviours[i].spec.delivery != crate::agent::GroupDelivery::EachReplica
    }

    /// The index of the behaviour with this full or method name.
    pub(crate) fn find_behaviour(&self, name: &str) -> Option<usize> {
        self.behaviours.iter().position(|b| b.is_named(name))
    }

    /// The error for a behaviour name the agent does not have.
    pub(crate) fn unknown_behaviour(&self, name: &str) -> Error {
        Error::UnknownBehaviour {
            agent: self.identity.to_string(),
            behaviour: name.to_owned(),
            known: self.behaviours.iter().map(|b| b.name.to_string()).collect(),
        }
    }

    /// Starts behaviour `i`: `None` when it was running (or starting)
    /// already, else the receiver of the task's answer. The state turns
    /// `running` at once and only once, so of racing starts one asks the
    /// task. Fails on an agent that is stopping or stopped.
    pub(crate) fn start_behaviour(&self, i: usize) -> Result<Option<oneshot::Receiver<Result<()>>>> {
        self.check_running()?;
        let state = &self.behaviours[i].state;
        loop {
            let current = state.get();
            if current == State::Running {
                return Ok(None);
            }
            if state.transition(current, State::Running) {
                break;
            }
        }
        let (answer, answered) = oneshot::channel();
        if let Err(e) = self.send_control(Control::Start(i, answer)) {
            state.transition(State::Running, State::Init);
            return Err(e);
        }
        Ok(Some(answered))
    }

    /// Stops behaviour `i` (it then reports `init`); returns the receiver
    /// of the task's answer. Fails on an agent that is stopping or stopped.
    pub(crate) fn stop_behaviour(&self, i: usize) -> Result<oneshot::Receiver<()>> {
        self.check_running()?;
        let (answer, answered) = oneshot::channel();
        self.send_control(Control::Stop(i, answer))?;
        self.behaviours[i].state.set(State::Init);
        Ok(answered)
    }

    /// Fails with [`Error::AgentStopped`] once the agent is stopping.
    fn check_running(&self) -> Result<()> {
        match self.state.get() {
            State::Stopping | State::Shutdown | State::Crashed => {
                Err(Error::AgentStopped(self.identity.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn send_control(&self, control: Control) -> Result<()> {
        self.control.try_send(control).map_err(|e| match e {
            Refused::Full(_) => Error::Busy(format!(
                "agent `{}` has {CONTROL_QUEUE} start/stop requests waiting",
                self.identity
            )),
            Refused::Closed(_) => Error::AgentStopped(self.identity.to_string()),
        })
    }

    /// Asks the agent's task to stop.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.set();
        std::task::Wake::wake_by_ref(&self.quiet);
    }

    pub(crate) fn abort_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// Publishes and records the message as outgoing; inside a handler or
    /// behaviour run the confirm is left to the runtime (see
    /// [`crate::runtime::invocation`]), elsewhere it is waited for.
    pub(crate) async fn emit(&self, route: Route, properties: Arc<Properties>, body: Bytes) -> Result<()> {
        let confirm = self.publish(route, properties, body.clone(), body).await?;
        // A send on the embedded bus is never pending: without this, a
        // loop of sends would keep its worker thread from the receivers
        // it wakes (tokio's channels take part in the budget the same way).
        tokio::task::coop::consume_budget().await;
        super::invocation::settle(confirm).await
    }

    /// Publishes `body`, recording `traced` as its body in the trace store
    /// (a trace listing must not carry the previous listings, or each
    /// listing would contain all earlier ones). Returns once the message
    /// is on its way, with its confirm.
    pub(crate) async fn publish(
        &self,
        route: Route,
        properties: impl Into<Arc<Properties>>,
        body: Bytes,
        traced: Bytes,
    ) -> Result<Confirm> {
        match self.publish_now(route, properties.into(), body, traced) {
            Ok(published) => published,
            Err(msg) => self.endpoint.publish(msg).await,
        }
    }

    /// Records the message as outgoing and publishes it if the endpoint
    /// can at once (see [`Endpoint::publish_now`]); gives it back if not.
    fn publish_now(
        &self,
        route: Route,
        mut properties: Arc<Properties>,
        body: Bytes,
        traced: Bytes,
    ) -> std::result::Result<Result<Confirm>, Outgoing> {
        self.stamp_user(&mut properties);
        crate::tracecontext::stamp(&mut properties);
        #[cfg(feature = "metrics")]
        crate::metrics::sent(&self.metrics, properties.kind.as_deref());
        if properties.message_id.is_none() {
            Arc::make_mut(&mut properties).message_id = Some(self.endpoint.message_id());
        }
        if self.traces.capacity() > 0
            && !crate::protocol::is_observer_traffic(properties.kind.as_deref(), &route.target())
        {
            self.traces.append_sent(&route, &properties, traced);
        }
        self.endpoint.publish_now(Outgoing {
            route,
            properties,
            body,
        })
    }

    /// Publishes a message nobody waits for (a reply, a pong): a failure
    /// is logged at debug level once its confirm says so.
    pub(crate) async fn publish_detached(
        &self,
        route: Route,
        properties: impl Into<Arc<Properties>>,
        body: Bytes,
        traced: Bytes,
    ) {
        let to = route.routing_key().to_owned();
        match self.publish(route, properties, body, traced).await {
            Ok(confirm) if confirm.is_done() => {}
            Ok(confirm) => {
                let identity = self.identity.clone();
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

    /// Replaces the binding keys of topic handler `i` (validated already).
    pub(crate) fn set_binding_keys(&self, i: usize, keys: Vec<String>) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if topics.len() <= i {
            topics.resize(self.behaviours.len().max(i + 1), None);
        }
        topics[i] = Some(keys);
    }

    /// Keeps `task` to abort it when the agent stops.
    pub(crate) fn track(&self, task: AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// The name its user messages go out under: the group's identity for
    /// a replica, else its own.
    pub(crate) fn sender(&self) -> &SmolStr {
        self.group.as_ref().unwrap_or(&self.identity)
    }

    /// The agent's own status, as its pong reports it.
    pub(crate) fn status(&self) -> PeerStatus {
        PeerStatus {
            name: self.identity.to_string(),
            group: self.group.as_ref().map(ToString::to_string),
            state: self.state.get().as_str().to_owned(),
            behaviours: self
                .behaviours
                .iter()
                .map(|b| PeerBehaviour {
                    name: b.name.to_string(),
                    state: b.state.get().as_str().to_owned(),
                })
                .collect(),
        }
    }

    /// Broadcasts a PingControl; every agent outside the runtime answers
    /// with a PongControl.
    pub(crate) async fn ping_peers(&self) -> Result<()> {
        self.peers.remote.round_started();
        self.send_ping().await
    }

    /// Broadcasts a PingControl without starting a round (the caller did).
    pub(crate) async fn send_ping(&self) -> Result<()> {
        let body = protocol::serialized("PingControl", "{}".to_owned())?;
        let mut properties = Properties::new(message::CONTROL, self.identity.clone());
        properties.correlation_id = Some(uuid::Uuid::new_v4().hyphenated().to_smolstr());
        properties.reply_to = Some(control_queue(&self.identity).into());
        self.emit(Route::Fanout, Arc::new(properties), body).await
    }

    /// Rejects a delivery that no handler will see, with a log line and a trace entry.
    pub(crate) async fn reject(&self, delivery: Delivery, reason: &str) {
        let msg = Arc::new(delivery.received);
        self.reject_with(&msg, delivery.acker, reason.to_owned()).await;
    }

    /// Rejects a message (without requeue), with a log line and a trace entry.
    pub(crate) async fn reject_with(&self, msg: &Arc<Received>, acker: Acker, reason: String) {
        self.reject_from(msg, acker, None, reason).await;
    }

    /// Rejects a message `handler` (if one took it) could not handle: a log
    /// line, a trace entry, and on RabbitMQ a dead letter (see
    /// [`crate::bus::dead_letter`]) before the original is settled.
    pub(crate) async fn reject_from(
        &self,
        msg: &Arc<Received>,
        acker: Acker,
        handler: Option<&str>,
        reason: String,
    ) {
        tracing::warn!(
            agent = %self.identity,
            sender = %msg.origin(),
            kind = msg.message_type(),
            handler,
            reason = %reason,
            "message rejected"
        );
        if self.endpoint.keeps_dead_letters() {
            let letter = crate::bus::dead_letter::DeadLetter::of(msg, &self.identity, handler, &reason);
            let kept = match self.endpoint.publish(letter.outgoing(&msg.properties)).await {
                Ok(confirm) => confirm.wait().await,
                Err(e) => Err(e),
            };
            match kept {
                Ok(()) => {
                    #[cfg(feature = "metrics")]
                    crate::metrics::rejected(&self.metrics, true);
                    self.traces.append(
                        Category::Rejected,
                        TraceRecord::incoming(msg).with_reason(format!("{reason} (dead letter kept)")),
                    );
                    if let Err(e) = acker.ack().await {
                        tracing::warn!(agent = %self.identity, error = %e, "cannot settle a dead-lettered message");
                    }
                    return;
                }
                Err(e) => tracing::error!(
                    agent = %self.identity,
                    sender = %msg.origin(),
                    kind = msg.message_type(),
                    error = %e,
                    "cannot keep the rejected message as a dead letter; it is dropped"
                ),
            }
        }
        #[cfg(feature = "metrics")]
        crate::metrics::rejected(&self.metrics, false);
        self.traces
            .append(Category::Rejected, TraceRecord::incoming(msg).with_reason(reason));
        if let Err(e) = acker.reject().await {
            tracing::warn!(agent = %self.identity, error = %e, "cannot reject a message");
        }
    }

    /// Gives deliveries the stopping agent will not handle back to their
    /// queues, where they wait for its next start (a closed channel has
    /// requeued them already).
    pub(crate) async fn release(&self, deliveries: impl IntoIterator<Item = Delivery>) {
        let mut count = 0usize;
        let mut handed = 0usize;
        for delivery in deliveries {
            count += 1;
            if self.group.is_some() && self.endpoint.in_process() && delivery.source != Source::Fanout {
                // The embedded bus has no requeue: the message goes back to
                // its shared queue, for the other replicas.
                let received = &delivery.received;
                let again = Outgoing {
                    route: Route::Direct(received.delivery.consumer_tag.clone()),
                    properties: Arc::clone(&received.properties),
                    body: received.body.clone(),
                };
                drop(delivery.acker);
                let published = match self.endpoint.publish_now(again) {
                    Ok(published) => published,
                    Err(again) => self.endpoint.publish(again).await,
                };
                match published {
                    Ok(_) => handed += 1,
                    Err(e) => {
                        tracing::warn!(agent = %self.identity, error = %e, "no other replica takes a message this one leaves; it is dropped")
                    }
                }
                continue;
            }
            if let Err(e) = delivery.acker.release().await {
                tracing::debug!(agent = %self.identity, error = %e, "cannot requeue a message");
            }
        }
        if handed > 0 {
            tracing::info!(agent = %self.identity, count = handed, "replica stopped before handling these messages; they go to the other replicas");
            count -= handed;
        }
        if count > 0 {
            tracing::info!(
                agent = %self.identity,
                count,
                "agent stopped before handling these messages; they stay in its queues for its next start"
            );
        }
    }

    // How the agent writes its user messages (see [`crate::WireMode`]).

    /// Encodes a typed user message as the agent's wire mode wants it.
    pub(crate) fn encode<M: Message + Serialize + ?Sized>(&self, msg: &M) -> Result<Bytes> {
        message::encode_as(msg, M::ENVELOPE || self.options.wire.envelope())
    }

    /// The AMQP `type` of a typed topic publication: 0.4 always uses `PUBSUB`.
    pub(crate) fn publish_type<M: Message + ?Sized>(&self) -> &'static str {
        match self.options.wire {
            WireMode::Py04 => message::PUBSUB,
            WireMode::Compact => M::TYPE,
        }
    }

    /// In 0.4 wire mode, sets `user_id` to the broker login, as 0.4 does.
    pub(crate) fn stamp_user(&self, properties: &mut Arc<Properties>) {
        if self.options.wire == WireMode::Py04 && properties.user_id.is_none() {
            if let Some(user) = self.endpoint.user() {
                Arc::make_mut(properties).user_id = Some(user.into());
            }
        }
    }
}

impl Neighbour for Core {
    fn status(&self) -> PeerStatus {
        Core::status(self)
    }

    fn is_up(&self) -> bool {
        !matches!(self.state.get(), State::Shutdown | State::Crashed)
    }
}

impl Core {
    /// Finds the called method and queues the call for the agent's task; an
    /// unknown method, or an agent that is stopping or has too many calls
    /// waiting, gives the call back with the error to answer.
    pub(crate) fn offer_call(
        &self,
        mut incoming: Box<IncomingCall>,
    ) -> std::result::Result<(), (Box<IncomingCall>, CallError)> {
        let method = &incoming.call.method;
        let Some(index) = self.spec.rpcs.iter().position(|r| r.method == *method) else {
            let known = self.spec.rpcs.iter().map(|r| r.method.to_owned()).collect();
            let method = method.clone();
            return Err((incoming, CallError::UnknownMethod { method, known }));
        };
        incoming.index = index;
        match self.calls.try_send(incoming) {
            Ok(()) => Ok(()),
            Err(Refused::Full(incoming)) => {
                tracing::debug!(agent = %self.identity, method = %incoming.call.method, "call refused: too many calls waiting");
                let busy = CallError::Busy {
                    agent: self.identity.to_string(),
                    waiting: self.options.call_queue,
                };
                Err((incoming, busy))
            }
            Err(Refused::Closed(incoming)) => {
                let stopped = CallError::Failed(format!("agent `{}` is stopping", self.identity));
                Err((incoming, stopped))
            }
        }
    }

    /// Takes a call of one of the agent's `#[rpc]` methods from inside the
    /// process (an agent of the same embedded-bus runtime, or a call from a
    /// method queue); the answer arrives on the receiver.
    pub(crate) fn take_call(&self, call: crate::protocol::RpcCall, trace: Option<CallTrace>) -> LocalAnswer {
        let (incoming, answer) = IncomingCall::local(call, trace);
        if let Err((incoming, refused)) = self.offer_call(incoming) {
            incoming.trace_request((&self.identity, &self.traces));
            incoming.answer_local((&self.identity, &self.traces), Err(refused));
        }
        answer
    }
}
