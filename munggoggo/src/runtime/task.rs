//! The agent's task: owns the agent value, reads its lanes from the bus
//! (see `lanes.rs`) and runs its handlers and behaviours one at a time
//! with `&mut self`.
//!
//! Long (near 500 lines) on purpose: the task's loop and the steps it
//! runs (a delivery, a control request, a behaviour's turn, the teardown)
//! share the task's state and its order of lanes, which is easier to check
//! in one file than across several.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use futures_util::future::{Either, OptionFuture};
use futures_util::FutureExt;
use tracing::Instrument;

use super::core::{Control, Core};
use super::invocation::{self, wait_all, Invocation};
use super::lanes::{self, serve_while, Lanes};
use crate::agent::{Agent, BehaviourKind, HandlerError, HandlerRoute};
use crate::behaviour::{AfterFailure, Schedule, State};
use crate::bus::{Delivery, Source};
use crate::context::Context;
use crate::message::Received;
use crate::rpc::CallError;
use crate::trace::{Category, TraceRecord};
use crate::tracecontext::{self, TraceContext};

/// Which handlers take which messages. Small vectors searched in turn
/// rather than hash maps: an agent has a few handlers, and a map would
/// cost every agent an allocation of its own and every message a hash.
struct Routes {
    /// By message type, in the order of the agent's handlers.
    by_type: Vec<(&'static str, Vec<usize>)>,
    /// By subscription queue.
    by_queue: Vec<(String, usize)>,
    fallback: Option<usize>,
    /// For a replica: the fanout queue its group shares, and the handlers
    /// that take broadcasts on every replica (`delivery = "each_replica"`).
    group: Option<(String, Vec<usize>)>,
}

impl Routes {
    fn new(core: &Core) -> Self {
        let mut routes = Routes {
            by_type: Vec::new(),
            by_queue: Vec::new(),
            fallback: None,
            group: core.group.as_deref().map(|group| {
                let each = (0..core.behaviours.len())
                    .filter(|&i| core.behaviours[i].spec.delivery == crate::agent::GroupDelivery::EachReplica)
                    .collect();
                (crate::bus::group_fanout_queue(group), each)
            }),
        };
        for (i, b) in core.behaviours.iter().enumerate() {
            match b.route() {
                Some(HandlerRoute::Type(t)) => match routes.by_type.iter_mut().find(|(kind, _)| *kind == t) {
                    Some((_, handlers)) => handlers.push(i),
                    None => routes.by_type.push((t, vec![i])),
                },
                Some(HandlerRoute::Topic(_)) => routes.by_queue.push((core.subscription_queue(i), i)),
                Some(HandlerRoute::Fallback) => routes.fallback = Some(i),
                None => {}
            }
        }
        // Kept for the agent's life: no room to grow.
        routes.by_type.shrink_to_fit();
        routes.by_queue.shrink_to_fit();
        routes
    }

    /// Whether a replica leaves a broadcast to another copy of it: each
    /// replica gets every broadcast on its own fanout queue, and one
    /// replica of the group gets it on the group's. A system broadcast
    /// (a ping) is answered by every replica; a user broadcast is handled
    /// once per group, unless a handler of its type takes it on every
    /// replica (`delivery = "each_replica"`).
    fn leaves(&self, msg: &Received, source: &Source) -> bool {
        let Some((group_fanout, each)) = &self.group else {
            return false;
        };
        let from_group = matches!(source, Source::Topic(queue) if **queue == **group_fanout);
        if !from_group && *source != Source::Fanout {
            return false;
        }
        let system = matches!(
            msg.properties.kind.as_deref(),
            Some(crate::message::CONTROL | crate::message::RPC)
        );
        if system {
            return from_group;
        }
        let on_each = self
            .by_type(msg)
            .is_ok_and(|handlers| handlers.iter().any(|i| each.contains(i)));
        from_group == on_each
    }

    /// The handlers of a direct message or broadcast, by its type.
    fn by_type(&self, msg: &Received) -> Result<&[usize], &'static str> {
        let kind = msg.message_type();
        match self.by_type.iter().find(|(t, _)| *t == kind) {
            Some((_, handlers)) => Ok(handlers),
            None => self
                .fallback
                .as_ref()
                .map(std::slice::from_ref)
                .ok_or("no handler"),
        }
    }

    /// The handlers a message goes to, or why it goes nowhere.
    fn resolve(&self, msg: &Received, source: &Source) -> Result<&[usize], &'static str> {
        match source {
            Source::Topic(queue) if self.group.as_ref().is_some_and(|(g, _)| **queue == **g) => {
                self.by_type(msg)
            }
            Source::Topic(queue) => self
                .by_queue
                .iter()
                .find(|(name, _)| name.as_str() == &**queue)
                .map(|(_, i)| std::slice::from_ref(i))
                .ok_or("no subscription"),
            Source::Direct | Source::Fanout | Source::Control => self.by_type(msg),
        }
    }
}

/// What the agent's task does next (see [`Task::serve`]).
enum Next {
    /// A delivery of the control queue, `None` once it ended.
    Control(Option<Delivery>),
    /// The agent was asked to stop.
    Stop,
    /// A start/stop request for a behaviour.
    Request(Control),
    /// An `#[rpc]` call.
    Call(Box<super::calls::IncomingCall>),
    /// A behaviour is due.
    Due,
    /// A delivery of the user lanes.
    User(Delivery),
}

pub(crate) struct Task<A> {
    pub(crate) agent: A,
    pub(crate) ctx: Context,
    pub(crate) lanes: Lanes,
    pub(crate) invocation: Arc<Invocation>,
}

impl<A: Agent> Task<A> {
    /// Runs the agent until it is asked to stop, then its teardown. Not an
    /// `async fn`, which would hold the task's state twice (its argument
    /// and a copy): this future is most of an idle agent's memory.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    pub(crate) fn run(mut self) -> impl std::future::Future<Output = ()> {
        async move {
            self.serve().await;
            Box::pin(self.shutdown()).await;
        }
    }

    /// Serves the lanes until the agent is asked to stop.
    async fn serve(&mut self) {
        let core = Arc::clone(&self.ctx.core);
        let routes = Routes::new(&core);
        let mut schedule = Schedule::new(core.behaviours.len(), core.options.failure_policy);
        for (i, b) in core.behaviours.iter().enumerate() {
            // A singleton waits in standby for its lease.
            if !core.is_singleton(i) {
                schedule.start(i, b.spec.kind);
            }
        }
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed = None;
        // The armed time had passed when it was armed: the behaviour is due
        // without the timer, whose wheel counts whole milliseconds (a
        // deadline of now fires on its next tick, up to 1 ms later, so a
        // cyclic behaviour would run only once per millisecond).
        let mut overdue = false;
        let machines = super::machine::any(&core);
        loop {
            let due = schedule.next_due();
            if let Some((_, at)) = due {
                // The timer is reset only when the next due time changes.
                if armed != Some(at) {
                    timer.as_mut().reset(at);
                    armed = Some(at);
                    overdue = at <= tokio::time::Instant::now();
                    core.quiet.look_again();
                }
            }
            // A user delivery is handled after this block, with `next` out
            // of scope: awaited in the match, the delivery and `next` would
            // keep their room beside the handling in every agent's task.
            let delivery = {
                // The lanes in order of precedence: the control queue (system
                // requests, replies), the stop request, start/stop of
                // behaviours, `#[rpc]` calls, due behaviours, then user
                // messages, so a call never waits behind the backlog of the
                // user queues. All but the last are quiet lanes, looked at
                // only after one of them woke the task (see `flag::Quiet`).
                let next = std::future::poll_fn(|cx| {
                    if core.quiet.woke(cx) {
                        let waker = core.quiet.waker();
                        let mut quiet = std::task::Context::from_waker(&waker);
                        let ready = if let Poll::Ready(delivery) = self.lanes.control.poll_next(cx) {
                            Some(Next::Control(delivery))
                        } else if core.shutdown.is_set() {
                            Some(Next::Stop)
                        } else if let Poll::Ready(control) = core.control.poll_recv(&mut quiet) {
                            Some(control.map_or(Next::Stop, Next::Request))
                        } else if let Poll::Ready(Some(incoming)) = core.calls.poll_recv(&mut quiet) {
                            Some(Next::Call(incoming))
                        } else if due.is_some() && (overdue || timer.as_mut().poll(&mut quiet).is_ready()) {
                            Some(Next::Due)
                        } else {
                            None
                        };
                        if let Some(next) = ready {
                            // The lane may hold more, and the lanes after it
                            // were not looked at.
                            core.quiet.look_again();
                            return Poll::Ready(next);
                        }
                    }
                    self.lanes.users.poll_next(cx).map(Next::User)
                })
                .await;
                // The rarer lanes' futures are boxed: inline, they would make
                // every agent's task kilobytes larger.
                match next {
                    Next::Control(delivery) => {
                        Box::pin(lanes::on_control(&core, delivery)).await;
                        None
                    }
                    Next::Stop => break,
                    Next::Request(Control::Start(i, answer)) => {
                        let started = Box::pin(self.start(&mut schedule, i)).await;
                        let _ = answer.send(started);
                        None
                    }
                    Next::Request(Control::Stop(i, answer)) => {
                        Box::pin(self.stop(&mut schedule, i)).await;
                        let _ = answer.send(());
                        None
                    }
                    Next::Request(Control::Lease(i, held)) => {
                        leased(&core, &mut schedule, i, held);
                        None
                    }
                    Next::Call(mut incoming) => {
                        incoming.trace_request((&core.identity, &core.traces));
                        let params = std::mem::take(&mut incoming.call.params);
                        let mut trace = incoming.parent.take();
                        let result = Box::pin(self.call(incoming.index, params, &mut trace)).await;
                        // The reply carries the method's trace.
                        let trace = trace.unwrap_or_else(TraceContext::root);
                        let answer = tracecontext::scope(trace, incoming.answer(&core, result));
                        serve_while(&mut self.lanes, &core, answer).await;
                        if machines {
                            Box::pin(self.wake_machines(&mut schedule, None)).await;
                        }
                        None
                    }
                    Next::Due => {
                        armed = None;
                        if let Some((i, _)) = due {
                            Box::pin(self.step(&mut schedule, i)).await;
                            if machines {
                                Box::pin(self.wake_machines(&mut schedule, Some(i))).await;
                            }
                        }
                        None
                    }
                    Next::User(delivery) => Some(delivery),
                }
            };
            let handled = delivery.is_some();
            let handling: OptionFuture<_> = delivery
                .map(|delivery| {
                    core.buffered
                        .store(self.lanes.users.buffered(), std::sync::atomic::Ordering::Relaxed);
                    if lanes::is_system(&delivery) {
                        lanes::trace_incoming(&core, &delivery);
                        Either::Left(Box::pin(super::system::handle(&core, delivery)))
                    } else {
                        #[cfg(feature = "metrics")]
                        crate::metrics::received(&core.metrics, delivery.received.message_type());
                        let traced = lanes::traces_incoming(&core, &delivery);
                        Either::Right(self.deliver(&routes, delivery, traced))
                    }
                })
                .into();
            handling.await;
            if handled && machines {
                // A state machine waiting in its state looks again.
                Box::pin(self.wake_machines(&mut schedule, None)).await;
            }
            core.activity.notify();
        }
    }

    async fn start(&mut self, schedule: &mut Schedule, i: usize) -> crate::Result<()> {
        let core = &self.ctx.core;
        let b = &core.behaviours[i];
        if let BehaviourKind::Handler(HandlerRoute::Topic(_)) = b.spec.kind {
            let queue = core.subscription_queue(i);
            let keys = core.binding_keys(i);
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            match core
                .endpoint
                .subscribe(&queue, &keys, core.shares_subscription(i))
                .await
            {
                Ok(consumer) => {
                    self.lanes.users.add(consumer);
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(agent = %core.identity, behaviour = %b.name, error = %e, "cannot subscribe");
                    b.record_error(e.to_string());
                    b.state.set(State::Crashed);
                    Err(e)
                }
            }
        } else if core.is_singleton(i) && !b.leased.load(std::sync::atomic::Ordering::Acquire) {
            // Started again, it asks for the lease again and waits for it.
            b.state.set(State::Standby);
            super::lease::ask_lease(&self.ctx, i);
            Ok(())
        } else {
            super::machine::restart(core, i);
            schedule.start(i, b.spec.kind);
            Ok(())
        }
    }

    async fn stop(&mut self, schedule: &mut Schedule, i: usize) {
        let core = &self.ctx.core;
        schedule.stop(i);
        if core.is_singleton(i) {
            // Stopped here, it runs on the next replica in line.
            core.give_up_lease(i);
        }
        let b = &core.behaviours[i];
        if let BehaviourKind::Handler(HandlerRoute::Topic(_)) = b.spec.kind {
            if let Err(e) = core.endpoint.unsubscribe(&core.subscription_queue(i)).await {
                tracing::warn!(agent = %core.identity, behaviour = %b.name, error = %e, "cannot unsubscribe");
            }
        }
    }

    /// The agent handled something: the `#[fsm]` machines waiting in their
    /// state (but `except`, which just ran) run their state's method again,
    /// at once, before the agent takes its next message.
    async fn wake_machines(&mut self, schedule: &mut Schedule, except: Option<usize>) {
        let core = Arc::clone(&self.ctx.core);
        for i in 0..core.behaviours.len() {
            if except != Some(i) && super::machine::woken(&core, i) {
                Box::pin(self.step(schedule, i)).await;
            }
        }
    }

    /// Runs one step of behaviour `i` and schedules the next.
    async fn step(&mut self, schedule: &mut Schedule, i: usize) {
        let core = Arc::clone(&self.ctx.core);
        let b = &core.behaviours[i];
        let span = tracing::debug_span!("behaviour", agent = %core.identity, behaviour = b.spec.method);
        #[cfg(feature = "metrics")]
        let started = crate::metrics::start(&core.metrics);
        let trace = tracecontext::start(&span, None);
        let run = match b.spec.kind {
            BehaviourKind::Fsm(fsm) => super::machine::run(&core, i, fsm, &mut self.agent, &self.ctx),
            _ => self.agent.run(&self.ctx, i),
        };
        let run = tracecontext::scope(trace, run);
        let run = AssertUnwindSafe(self.invocation.scope(run))
            .catch_unwind()
            .instrument(span);
        let outcome = serve_while(&mut self.lanes, &core, run).await;
        #[cfg(feature = "metrics")]
        crate::metrics::ran(&core.metrics, i, started, matches!(outcome, Ok(Ok(_))));
        let confirms = self.invocation.take();
        if !confirms.is_empty() {
            tokio::spawn(settle_step(Arc::clone(&core), i, confirms));
        }
        let reason = match outcome {
            Ok(Ok(next)) => {
                b.record_run();
                if !schedule.after_run(i, b.spec.kind, next) {
                    b.state.transition(State::Running, State::Shutdown);
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panicked: {}", invocation::panic_message(&*panic)),
        };
        b.record_error(reason.clone());
        match schedule.after_failure(i, b.spec.kind) {
            AfterFailure::Retry => {
                let failures = schedule.failures(i);
                tracing::warn!(agent = %core.identity, behaviour = %b.name, failures, error = %reason, "behaviour failed; retrying with backoff");
            }
            AfterFailure::Crash => {
                let failures = schedule.failures(i);
                tracing::error!(agent = %core.identity, behaviour = %b.name, failures, error = %reason, "behaviour crashed; start it again to retry");
                b.state.transition(State::Running, State::Crashed);
            }
        }
    }

    /// Runs `#[rpc]` method `index`.
    /// `trace`: the caller's trace, which the method continues; on return,
    /// the method's own (which its reply carries).
    async fn call(
        &mut self,
        index: usize,
        params: serde_json::Value,
        trace: &mut Option<TraceContext>,
    ) -> Result<serde_json::Value, CallError> {
        let core = Arc::clone(&self.ctx.core);
        let method = core.spec.rpcs[index].method;
        let span = tracing::debug_span!("rpc", agent = %core.identity, method);
        #[cfg(feature = "metrics")]
        let started = crate::metrics::start(&core.metrics);
        let run = tracecontext::start(&span, trace.as_ref());
        *trace = Some(run.clone());
        let call = tracecontext::scope(run, self.agent.call(&self.ctx, index, params));
        let call = AssertUnwindSafe(self.invocation.scope(call))
            .catch_unwind()
            .instrument(span);
        let outcome = serve_while(&mut self.lanes, &core, call).await;
        // The reply waits for the confirms of what the method sent.
        let sent = serve_while(&mut self.lanes, &core, wait_all(self.invocation.take())).await;
        #[cfg(feature = "metrics")]
        crate::metrics::served(
            &core.metrics,
            index,
            started,
            matches!(outcome, Ok(Ok(_))) && sent.is_ok(),
        );
        match outcome {
            Ok(Ok(value)) => match sent {
                Ok(()) => Ok(value),
                Err(e) => Err(CallError::Failed(format!(
                    "`{method}` returned, but a message it sent was not delivered: {e}"
                ))),
            },
            Ok(result) => result,
            Err(panic) => {
                let reason = format!("`{method}` panicked: {}", invocation::panic_message(&*panic));
                tracing::error!(agent = %core.identity, "{reason}");
                Err(CallError::Failed(reason))
            }
        }
    }

    /// Hands a message to its handlers; acks after them, rejects on failure.
    /// `incoming`: whether it is to be traced as incoming (with the entry
    /// of its first handler, or on its own when no handler runs).
    ///
    /// Not an `async fn`: its state is part of every agent's task, and an
    /// `async fn` would keep the delivery twice (as its argument and
    /// taken apart) and the routing details past their use.
    fn deliver<'a>(
        &'a mut self,
        routes: &'a Routes,
        delivery: Delivery,
        incoming: bool,
    ) -> impl std::future::Future<Output = ()> + 'a {
        let Delivery {
            received: msg,
            source,
            acker,
        } = delivery;
        let core = Arc::clone(&self.ctx.core);
        // Another copy of this broadcast is for this replica's group (or for
        // every replica), or the agent handled this message already:
        // nothing to do with this one.
        if routes.leaves(&msg, &source) || is_duplicate(&core, &msg) {
            return Either::Right(Either::Left(async move {
                serve_while(&mut self.lanes, &core, ack(&core, acker)).await
            }));
        }
        let reason = match routes.resolve(&msg, &source) {
            Ok(handlers) => return Either::Left(self.run_handlers(core, handlers, msg, acker, incoming)),
            Err(reason) => reason,
        };
        if incoming {
            core.traces.append_received(Category::Incoming, &msg);
        }
        // (A replica's own comes back on its group's fanout queue too.)
        let own_broadcast =
            matches!(source, Source::Fanout | Source::Topic(_)) && msg.sender() == core.sender().as_str();
        Either::Right(Either::Right(async move {
            if own_broadcast {
                // The agent's own broadcast came back and it has no handler
                // for it: nothing went wrong (it stays traced as incoming).
                tracing::debug!(agent = %core.identity, kind = msg.message_type(), "own broadcast without a handler skipped");
                serve_while(&mut self.lanes, &core, ack(&core, acker)).await
            } else {
                let reject = core.reject_with(&msg, acker, reason.to_owned());
                serve_while(&mut self.lanes, &core, Box::pin(reject)).await
            }
        }))
    }

    /// Runs the handlers of a delivery in turn (see [`Self::deliver`]).
    ///
    /// Not an `async fn`, for the reason [`Self::deliver`] gives: its
    /// arguments would be kept twice.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    fn run_handlers<'a>(
        &'a mut self,
        core: Arc<Core>,
        handlers: &'a [usize],
        msg: Arc<Received>,
        acker: crate::bus::Acker,
        mut incoming: bool,
    ) -> impl std::future::Future<Output = ()> + 'a {
        async move {
            // Boxed: a failure is rare, and inline it would make every agent's
            // task larger.
            let mut failure: Option<Box<(&'static str, String)>> = None;
            let mut ran = Ran::default();
            for (n, &i) in handlers.iter().enumerate() {
                let b = &core.behaviours[i];
                if b.state.get() != State::Running {
                    continue;
                }
                ran.mark(n);
                let handed = Category::Behaviour(Arc::clone(&b.name));
                if std::mem::take(&mut incoming) {
                    core.traces.append_received_as([Category::Incoming, handed], &msg);
                } else {
                    core.traces.append_received(handed, &msg);
                }
                let span = tracing::debug_span!(
                    "handler",
                    agent = %core.identity,
                    behaviour = b.spec.method,
                    kind = msg.message_type(),
                    sender = %msg.origin(),
                );
                #[cfg(feature = "metrics")]
                let started = crate::metrics::start(&core.metrics);
                let trace = tracecontext::start(&span, tracecontext::incoming(&msg).as_ref());
                let handler = tracecontext::scope(trace, self.agent.handle(&self.ctx, i, &msg));
                let handler = AssertUnwindSafe(self.invocation.scope(handler))
                    .catch_unwind()
                    .instrument(span);
                let outcome = serve_while(&mut self.lanes, &core, handler).await;
                #[cfg(feature = "metrics")]
                crate::metrics::ran(&core.metrics, i, started, matches!(outcome, Ok(Ok(()))));
                let reason = match outcome {
                    Ok(Ok(())) => {
                        b.record_run();
                        continue;
                    }
                    Ok(Err(HandlerError::Decode { type_name, reason })) => {
                        format!("{}: body does not decode into `{type_name}`: {reason}", b.name)
                    }
                    Ok(Err(HandlerError::Failed(e))) => format!("{}: handler failed: {e}", b.name),
                    Err(panic) => format!(
                        "{}: handler panicked: {}",
                        b.name,
                        invocation::panic_message(&*panic)
                    ),
                };
                b.record_error(reason.clone());
                failure = Some(Box::new((b.spec.method, reason)));
            }
            if incoming {
                // No handler ran.
                core.traces.append_received(Category::Incoming, &msg);
            }
            // Confirms of a failed invocation do not matter: its input is rejected.
            let confirms = self.invocation.take();
            match failure {
                None if ran.is_empty() => {
                    let reject = core.reject_with(&msg, acker, "handler stopped".to_owned());
                    serve_while(&mut self.lanes, &core, Box::pin(reject)).await;
                }
                None if confirms.is_empty() => serve_while(&mut self.lanes, &core, ack(&core, acker)).await,
                None => {
                    let ran = ran.of(handlers);
                    tokio::spawn(settle_delivery(core, ran, msg, acker, confirms));
                }
                Some(failed) => {
                    let (handler, reason) = *failed;
                    let reject = core.reject_from(&msg, acker, Some(handler), reason);
                    serve_while(&mut self.lanes, &core, Box::pin(reject)).await;
                }
            }
        }
    }

    async fn shutdown(mut self) {
        let core = Arc::clone(&self.ctx.core);
        core.state.set(State::Stopping);
        // Calls that will not run any more get an answer rather than a timeout.
        for incoming in core.calls.close() {
            let stopped = CallError::Failed(format!("agent `{}` stopped", core.identity));
            incoming.answer(&core, Err(stopped)).await;
        }
        drop(core.control.close());
        for b in &core.behaviours {
            if b.state.get() == State::Running {
                b.state.set(State::Stopping);
            }
        }
        // System requests are still answered while teardown runs.
        let teardown = AssertUnwindSafe(self.agent.teardown(&self.ctx)).catch_unwind();
        let teardown = serve_while(&mut self.lanes, &core, teardown).await;
        match teardown {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(agent = %core.identity, error = %e, "teardown failed"),
            Err(panic) => {
                tracing::error!(agent = %core.identity, "teardown panicked: {}", invocation::panic_message(&*panic))
            }
        }
        core.abort_tasks();
        core.pending.clear();
        // A broker's deliveries go back to their queues before the endpoint
        // looks at them (a queue with messages stays for the next start;
        // on a shared channel, closing the consumers does not requeue what
        // they read ahead). The embedded bus hands a replica's messages to
        // the other replicas, once this one no longer takes any.
        let mut buffered = Some(self.lanes.users.take_buffer());
        let in_process = core.endpoint.in_process();
        if !in_process {
            core.release(buffered.take().unwrap_or_default()).await;
        }
        if let Err(e) = core.endpoint.close().await {
            tracing::warn!(agent = %core.identity, error = %e, "cannot delete the agent's queues");
        }
        if let Some(buffered) = buffered {
            core.release(buffered).await;
        }
        core.buffered.store(0, std::sync::atomic::Ordering::Relaxed);
        for b in &core.behaviours {
            b.state.set(State::Shutdown);
        }
        if core.identity_lost.load(std::sync::atomic::Ordering::SeqCst) {
            core.state.set(State::Crashed);
        } else {
            core.state.set(State::Shutdown);
        }
        core.activity.notify();
        tracing::info!(agent = %core.identity, "agent stopped");
    }
}

/// Which of a message's handlers ran, by position (without an allocation
/// per message: a message has one handler or a few; the rest, boxed, as it
/// is part of every agent's task).
#[derive(Default)]
struct Ran {
    first: u64,
    // Eight bytes rather than a Vec's 24 while it is not needed.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<usize>>>,
}

impl Ran {
    fn mark(&mut self, n: usize) {
        match u32::try_from(n) {
            Ok(bit) if bit < u64::BITS => self.first |= 1 << bit,
            _ => self.more.get_or_insert_default().push(n),
        }
    }

    fn is_empty(&self) -> bool {
        self.first == 0 && self.more.is_none()
    }

    /// The behaviour indices of the handlers that ran.
    fn of(&self, handlers: &[usize]) -> Vec<usize> {
        let first = (0..handlers.len().min(64)).filter(|&n| self.first & (1 << n) != 0);
        first
            .chain(self.more.iter().flat_map(|more| more.iter().copied()))
            .map(|n| handlers[n])
            .collect()
    }
}

/// This replica got (`held`) or lost the lease of singleton behaviour `i`:
/// it runs from standby, or goes back to standby (a stopped one stays
/// stopped, and asks again when it is started).
fn leased(core: &Core, schedule: &mut Schedule, i: usize, held: bool) {
    let b = &core.behaviours[i];
    if held {
        // (A stopped one ignores a lease its aborted task got meanwhile.)
        if b.state.transition(State::Standby, State::Running) {
            b.leased.store(true, std::sync::atomic::Ordering::Release);
            tracing::info!(agent = %core.identity, behaviour = %b.name, "singleton behaviour taken over: this replica runs it");
            schedule.start(i, b.spec.kind);
        }
    } else {
        b.leased.store(false, std::sync::atomic::Ordering::Release);
        if b.state.transition(State::Running, State::Standby) {
            tracing::warn!(agent = %core.identity, behaviour = %b.name, "singleton behaviour's lease lost (connection lost?): standby");
            schedule.stop(i);
        }
    }
}

/// Whether `msg` is one of the last messages the agent handled (with
/// [`crate::agent::AgentOptions::dedup`]); a duplicate is logged and traced.
fn is_duplicate(core: &Core, msg: &Arc<Received>) -> bool {
    let (Some(recent), Some(id)) = (core.recent.as_deref(), msg.properties.message_id.as_ref()) else {
        return false;
    };
    if recent.first_time(id) {
        return false;
    }
    tracing::debug!(agent = %core.identity, message_id = %id, kind = msg.message_type(), "duplicate message dropped (dedup)");
    core.traces.append(
        Category::Incoming,
        TraceRecord::incoming(msg)
            .with_reason("duplicate: a message with this id was handled already; dropped"),
    );
    true
}

async fn ack(core: &Core, acker: crate::bus::Acker) {
    if let Err(e) = acker.ack().await {
        tracing::warn!(agent = %core.identity, error = %e, "cannot acknowledge a message");
    }
}

/// Acknowledges a handled message once the broker confirmed what its
/// handlers sent; else the handlers failed and the message is rejected.
async fn settle_delivery(
    core: Arc<Core>,
    handlers: Vec<usize>,
    msg: Arc<Received>,
    acker: crate::bus::Acker,
    confirms: Vec<crate::bus::Confirm>,
) {
    match wait_all(confirms).await {
        Ok(()) => ack(&core, acker).await,
        Err(e) => {
            let mut reason = String::new();
            for &i in &handlers {
                let b = &core.behaviours[i];
                let why = format!("{}: a message it sent was not delivered: {e}", b.name);
                b.record_error(why.clone());
                reason = why;
            }
            core.reject_with(&msg, acker, reason).await;
        }
    }
    core.activity.notify();
}

/// Counts a behaviour step as failed when the broker refused what it sent.
async fn settle_step(core: Arc<Core>, i: usize, confirms: Vec<crate::bus::Confirm>) {
    if let Err(e) = wait_all(confirms).await {
        let b = &core.behaviours[i];
        let reason = format!("a message it sent was not delivered: {e}");
        tracing::warn!(agent = %core.identity, behaviour = %b.name, error = %e, "behaviour failed");
        core.traces.append(
            Category::Behaviour(Arc::clone(&b.name)),
            TraceRecord::default().with_reason(reason.clone()),
        );
        b.record_error(reason);
        core.activity.notify();
    }
}
