//! The agent's lanes from the bus, read by its task (see `task.rs`): one
//! task per agent takes the deliveries of its queues, answers system
//! messages at once from shared status, and runs its handlers.
//!
//! Two lanes, so that nothing the runtime must answer waits behind user
//! messages: the control queue (requests from Rust callers, replies to
//! this agent's own requests) is always read first, also while a handler,
//! behaviour step, `#[rpc]` method or teardown runs ([`serve_while`] polls
//! the lanes beside it); the identity, fanout and topic queues are read
//! ahead of the handlers only up to
//! [`AgentOptions::prefetch`](crate::agent::AgentOptions::prefetch) +
//! [`AgentOptions::readahead`](crate::agent::AgentOptions::readahead)
//! deliveries, the rest waits in its queue (on RabbitMQ, in the broker).
//! System requests among them (munggoggo 0.4 peers send theirs to the
//! identity queue) are answered as soon as they are read.
//!
//! Reading the lanes in the agent's own task (rather than in a dispatcher
//! task of its own) saves a task hop per delivery and a task per agent.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;

use super::core::Core;
use super::flag::Quiet;
use crate::bus::{Consumer, Delivery, Source};
use crate::future::BoxFuture;
use crate::message;
use crate::trace::Category;

/// The control lane: the control queue's consumer, `None` once it ended.
/// A quiet lane: its consumer is polled with the task's [`Quiet`] waker,
/// whoever polls it.
pub(crate) struct ControlLane {
    consumer: Option<Consumer>,
    quiet: Arc<Quiet>,
}

impl ControlLane {
    pub(crate) fn new(consumer: Consumer, quiet: Arc<Quiet>) -> Self {
        ControlLane {
            consumer: Some(consumer),
            quiet,
        }
    }

    /// The next delivery; `Some(None)` once when the queue ended (then
    /// never ready again). A delivery arriving later wakes the task of `cx`
    /// through [`Quiet`].
    pub(crate) fn poll_next(&mut self, cx: &Context<'_>) -> Poll<Option<Delivery>> {
        let Some(consumer) = self.consumer.as_mut() else {
            return Poll::Pending;
        };
        self.quiet.listen(cx);
        let waker = self.quiet.waker();
        match consumer.poll_next_unpin(&mut Context::from_waker(&waker)) {
            Poll::Ready(Some(delivery)) => Poll::Ready(Some(delivery)),
            Poll::Ready(None) => {
                self.consumer = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The user lanes: the identity, fanout and topic queues' consumers and
/// the deliveries read ahead of the handlers.
pub(crate) struct UserLanes {
    /// Polled in turn, starting after the one that gave the last delivery
    /// (a `SelectAll` would allocate a node per delivery).
    consumers: Vec<Consumer>,
    turn: usize,
    /// Grows when needed: most agents never read ahead.
    buffer: VecDeque<Delivery>,
    /// How many deliveries the buffer may hold.
    limit: usize,
}

impl UserLanes {
    pub(crate) fn new(consumers: Vec<Consumer>, limit: usize) -> Self {
        UserLanes {
            consumers,
            turn: 0,
            buffer: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Adds the consumer of a topic subscription started later.
    pub(crate) fn add(&mut self, consumer: Consumer) {
        self.consumers.push(consumer);
    }

    /// How many deliveries are read ahead.
    pub(crate) fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes the deliveries read ahead (the agent stops).
    pub(crate) fn take_buffer(&mut self) -> VecDeque<Delivery> {
        std::mem::take(&mut self.buffer)
    }

    /// The next delivery: the oldest read ahead, else a new one.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        if let Some(delivery) = self.buffer.pop_front() {
            return Poll::Ready(delivery);
        }
        self.poll_consumers(cx)
    }

    /// Reads ahead while the handlers are busy: user deliveries go to the
    /// buffer (up to its limit), system messages are returned.
    fn poll_read_ahead(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        while self.buffer.len() < self.limit {
            match self.poll_consumers(cx) {
                Poll::Ready(delivery) if is_system(&delivery) => return Poll::Ready(delivery),
                Poll::Ready(delivery) => self.buffer.push_back(delivery),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Pending
    }

    fn poll_consumers(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        let mut polled = 0;
        while polled < self.consumers.len() {
            let i = (self.turn + polled) % self.consumers.len();
            match self.consumers[i].poll_next_unpin(cx) {
                Poll::Ready(Some(delivery)) => {
                    self.turn = i + 1;
                    return Poll::Ready(delivery);
                }
                // The queue ended (deleted: unsubscribed, or the agent
                // stops); the others are still polled.
                Poll::Ready(None) => {
                    drop(self.consumers.remove(i));
                }
                Poll::Pending => polled += 1,
            }
        }
        Poll::Pending
    }
}

/// The agent's lanes from the bus.
pub(crate) struct Lanes {
    pub(crate) control: ControlLane,
    pub(crate) users: UserLanes,
}

/// Runs `work` (a handler, behaviour step, `#[rpc]` method, teardown or
/// acknowledgement) while serving the lanes beside it: system messages
/// are answered, user deliveries read ahead. The work is polled first, so
/// that work that is ready at once costs nothing more.
pub(crate) fn serve_while<'a, F: Future>(
    lanes: &'a mut Lanes,
    core: &'a Arc<Core>,
    work: F,
) -> ServeWhile<'a, F> {
    ServeWhile {
        work,
        lanes,
        core,
        serving: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`serve_while`]. Written out rather than an `async
    /// fn`, which would hold `work` twice (as its argument and pinned) and
    /// the deliveries it serves inline: it is part of every agent's task.
    pub(crate) struct ServeWhile<'a, F> {
        #[pin]
        work: F,
        lanes: &'a mut Lanes,
        core: &'a Arc<Core>,
        // The answer to a system message or control-lane delivery that
        // arrived meanwhile (boxed: they are few); the work waits for it.
        serving: Option<BoxFuture<'a, ()>>,
    }
}

impl<F: Future> Future for ServeWhile<'_, F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        loop {
            if let Some(serving) = this.serving.as_mut() {
                std::task::ready!(serving.as_mut().poll(cx));
                *this.serving = None;
            }
            let core: &'_ Arc<Core> = this.core;
            if let Poll::Ready(output) = this.work.as_mut().poll(cx) {
                core.buffered
                    .store(this.lanes.users.buffered(), Ordering::Relaxed);
                return Poll::Ready(output);
            }
            let serving: BoxFuture<'_, ()> = if let Poll::Ready(delivery) = this.lanes.control.poll_next(cx) {
                Box::pin(on_control(core, delivery))
            } else if let Poll::Ready(delivery) = this.lanes.users.poll_read_ahead(cx) {
                Box::pin(async move {
                    trace_incoming(core, &delivery);
                    super::system::handle(core, delivery).await;
                    core.activity.notify();
                })
            } else {
                core.buffered
                    .store(this.lanes.users.buffered(), Ordering::Relaxed);
                return Poll::Pending;
            };
            core.buffered
                .store(this.lanes.users.buffered(), Ordering::Relaxed);
            *this.serving = Some(serving);
        }
    }
}

/// Handles a delivery of the control lane; `None`: the lane ended.
pub(crate) async fn on_control(core: &Arc<Core>, delivery: Option<Delivery>) {
    match delivery {
        Some(delivery) => {
            trace_incoming(core, &delivery);
            // Boxed: inline, these futures would make every agent's task
            // kilobytes larger.
            if is_system(&delivery) {
                Box::pin(super::system::handle(core, delivery)).await;
            } else if crate::pyrpc::is_reply(&delivery) {
                Box::pin(crate::pyrpc::complete(core, delivery)).await;
            } else {
                Box::pin(core.reject(delivery, "not a system message (control queue)")).await;
            }
            core.activity.notify();
        }
        None => {
            if core.state.get() != crate::State::Running {
                return;
            }
            // The bus gave the queues up (the connection is gone for good,
            // or another connection took the identity): a deaf agent must
            // not go on reporting `running`.
            match core.endpoint.lost() {
                Some(_) => {
                    core.identity_lost
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    tracing::error!(
                        agent = %core.identity,
                        "another connection took the agent's identity while it was reconnecting (IdentityInUse); it stops as crashed rather than claim the identity twice"
                    );
                }
                None => tracing::error!(agent = %core.identity, "the agent's queues are gone; stopping it"),
            }
            core.request_shutdown();
        }
    }
}

/// Records a delivery as incoming, unless it is system traffic of a CLI
/// observer (see [`crate::protocol::is_observer_traffic`]) or a ping of an
/// agent of the same runtime (which is neither answered nor needed: the
/// runtime knows its agents without messages, see [`crate::peers`]; traced,
/// the announcement of one agent cost every other one an entry).
pub(crate) fn trace_incoming(core: &Core, delivery: &Delivery) {
    if traces_incoming(core, delivery) {
        core.traces
            .append_received(Category::Incoming, &delivery.received);
    }
}

/// Whether [`trace_incoming`] traces the delivery.
pub(crate) fn traces_incoming(core: &Core, delivery: &Delivery) -> bool {
    let received = &delivery.received;
    let kind = received.properties.kind.as_deref();
    !(core.traces.capacity() == 0
        || crate::protocol::is_observer_traffic(kind, received.sender())
        || (kind == Some(message::CONTROL) && core.peers.is_local(received.sender())))
}

/// CONTROL and RPC messages on the direct, fanout and control queues go to
/// the system handlers; on a topic subscription everything goes to its
/// handler.
pub(crate) fn is_system(delivery: &Delivery) -> bool {
    !matches!(delivery.source, Source::Topic(_))
        && matches!(
            delivery.received.properties.kind.as_deref(),
            Some(message::CONTROL | message::RPC)
        )
}
