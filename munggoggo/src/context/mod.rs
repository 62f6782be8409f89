//! [`Context`]: what handlers get to act on the bus and on their own
//! agent. Every method of `Context` is in this module: its own agent here,
//! sending in [`send`](self::send), calls and system requests to other
//! agents in [`calls`](self::calls).

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::agent::{AgentOptions, BehaviourKind, HandlerRoute};
use crate::behaviour::{Behaviour, BehaviourStatus, State};
use crate::error::{Error, Result};
use crate::peers::{Peer, DEFAULT_PEER_TTL, MISSED_INTERVALS};
use crate::runtime::core::Core;
use crate::trace::TraceStore;

mod calls;
mod send;

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
    /// The agent's identity: for a replica of a replicated agent, its own
    /// replica name (`worker@3f9a1c`), which control requests address.
    pub fn identity(&self) -> &str {
        &self.core.identity
    }

    /// The identity the agent's group of replicas shares (`worker`), which
    /// its user messages carry as sender: its own identity unless it is
    /// replicated.
    pub fn group(&self) -> &str {
        self.core.sender()
    }

    /// The agent's Rust type name.
    pub fn agent_type(&self) -> &'static str {
        self.core.spec.name
    }

    /// The agent's options.
    pub fn options(&self) -> &AgentOptions {
        &self.core.options
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
        self.core.track(handle.abort_handle());
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

    /// Starts a stopped behaviour (a topic handler subscribes again) and
    /// returns once it runs (subscribed), or with the error of its
    /// subscription. Returns false when it was running already (of racing
    /// starts, one starts it); fails on a stopped agent
    /// ([`Error::AgentStopped`]) or one with too many start/stop requests
    /// waiting ([`Error::Busy`]). Called by a handler of the agent itself,
    /// it returns once the start is queued: the agent's task starts it
    /// after the handler.
    pub async fn start_behaviour(&self, name: &str) -> Result<bool> {
        let i = self.behaviour_index(name)?;
        let Some(started) = self.core.start_behaviour(i)? else {
            return Ok(false);
        };
        if crate::runtime::invocation::inside() {
            return Ok(true);
        }
        match started.await {
            Ok(result) => result.map(|()| true),
            Err(_) => Err(Error::AgentStopped(self.identity().to_owned())),
        }
    }

    /// Stops a behaviour and returns once it stopped: it is not scheduled
    /// again, a topic handler has unsubscribed, messages for a stopped type
    /// handler are rejected. Fails on a stopped agent. Called by a handler
    /// of the agent itself, it returns once the stop is queued.
    pub async fn stop_behaviour(&self, name: &str) -> Result<()> {
        let i = self.behaviour_index(name)?;
        let stopped = self.core.stop_behaviour(i)?;
        if crate::runtime::invocation::inside() {
            return Ok(());
        }
        stopped
            .await
            .map_err(|_| Error::AgentStopped(self.identity().to_owned()))
    }

    fn behaviour_index(&self, name: &str) -> Result<usize> {
        self.core
            .find_behaviour(name)
            .ok_or_else(|| self.core.unknown_behaviour(name))
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
        // The rules the macro applies to `#[on_message(topic = ...)]`.
        for key in &keys {
            crate::protocol::validate_binding_key(key)
                .map_err(|problem| Error::Config(format!("the binding key {key:?} {problem}")))?;
        }
        self.core.set_binding_keys(i, keys);
        if self.state() == State::Running && self.core.behaviours[i].state.get() == State::Running {
            // Resubscribes with the new keys; not waited for (set_topics is
            // also called in setup, before the agent's task runs).
            drop(self.core.stop_behaviour(i)?);
            drop(self.core.start_behaviour(i)?);
        }
        Ok(())
    }

    /// The agent's peers, sorted by identity: the running agents of its
    /// runtime (itself included), known without messages, and the agents
    /// elsewhere that answered its runtime's pings, those heard from within
    /// three `peer_interval`s (or 30 s) and those that answered one of the
    /// last two pings. Without a keepalive interval, a call finding the
    /// last ping older than 30 s pings again in the background, so peers
    /// that left drop out and the list stays fresh.
    pub fn peers(&self) -> Vec<Peer> {
        let ttl = match self.core.options.peer_interval {
            Some(interval) => interval * MISSED_INTERVALS,
            None => {
                let stale = self
                    .core
                    .peers
                    .remote
                    .last_round()
                    .is_none_or(|round| round.elapsed() > DEFAULT_PEER_TTL);
                if stale && tokio::runtime::Handle::try_current().is_ok() {
                    let ctx = self.clone();
                    // Marked at once, so that concurrent calls ping once.
                    self.core.peers.remote.round_started();
                    self.spawn(async move {
                        if let Err(e) = ctx.core.send_ping().await {
                            tracing::debug!(agent = %ctx.identity(), error = %e, "cannot ping peers");
                        }
                    });
                }
                DEFAULT_PEER_TTL
            }
        };
        self.core.peers.peers(ttl)
    }

    /// Broadcasts a keepalive ping; every agent outside this runtime
    /// answers with its status (those inside it are known without one).
    pub async fn ping_peers(&self) -> crate::Result<()> {
        self.core.ping_peers().await
    }
}
