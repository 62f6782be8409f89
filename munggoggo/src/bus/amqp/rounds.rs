//! A set of futures polled in rounds, for the publisher's confirms.
//!
//! Like `FuturesUnordered`, each future has its own waker and only woken
//! futures are polled. Unlike it, polling happens in explicit rounds: a
//! round polls every future woken before the round began. So whatever
//! completed before some future was seen to complete in round `k` is seen
//! by the end of round `k + 1` at the latest, which the publisher needs to
//! find returned messages that lapin attached to another publish's confirm.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use crate::future::BoxFuture;

/// Futures in flight, each with a tag, polled in rounds.
pub(super) struct Rounds<T, O> {
    slots: Vec<Option<Slot<T, O>>>,
    free: Vec<usize>,
    len: usize,
    shared: Arc<Shared>,
}

struct Slot<T, O> {
    tag: T,
    future: BoxFuture<'static, O>,
    waker: Waker,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Slots woken since the last round took the list.
    woken: Vec<usize>,
    /// The task polling the rounds.
    task: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_slot(&self, index: usize) {
        let task = {
            let mut inner = self.lock();
            inner.woken.push(index);
            inner.task.clone()
        };
        if let Some(task) = task {
            task.wake();
        }
    }
}

struct SlotWaker {
    index: usize,
    shared: Arc<Shared>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.shared.wake_slot(self.index);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.wake_slot(self.index);
    }
}

impl<T, O> Rounds<T, O> {
    /// An empty set.
    pub(super) fn new() -> Self {
        Rounds {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            shared: Arc::default(),
        }
    }

    /// How many futures are in flight.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether none is.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a future; the next round polls it for the first time. Futures
    /// are first polled in the order they were added.
    pub(super) fn push(&mut self, tag: T, future: BoxFuture<'static, O>) {
        let index = self.free.pop().unwrap_or(self.slots.len());
        let waker = Waker::from(Arc::new(SlotWaker {
            index,
            shared: Arc::clone(&self.shared),
        }));
        let slot = Slot { tag, future, waker };
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[index] = Some(slot);
        }
        self.len += 1;
        self.shared.lock().woken.push(index);
    }

    /// Drops every future in flight.
    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.len = 0;
        self.shared.lock().woken.clear();
    }

    /// One round: polls every future woken since the last round and returns
    /// those that completed, in the order polled. `Pending` when none was
    /// woken; the task is woken when one is.
    pub(super) fn poll_round(&mut self, cx: &mut Context<'_>) -> Poll<Vec<(T, O)>> {
        let woken = {
            let mut inner = self.shared.lock();
            if !inner.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                inner.task = Some(cx.waker().clone());
            }
            std::mem::take(&mut inner.woken)
        };
        if woken.is_empty() {
            return Poll::Pending;
        }
        let mut done = Vec::new();
        for index in woken {
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                continue; // completed already (woken twice)
            };
            let mut slot_cx = Context::from_waker(&slot.waker);
            if let Poll::Ready(output) = slot.future.as_mut().poll(&mut slot_cx) {
                if let Some(slot) = self.slots[index].take() {
                    done.push((slot.tag, output));
                    self.free.push(index);
                    self.len -= 1;
                }
            }
        }
        Poll::Ready(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    fn pending_on(rx: oneshot::Receiver<u32>) -> BoxFuture<'static, u32> {
        Box::pin(async move { rx.await.unwrap_or(0) })
    }

    #[test]
    fn a_round_polls_what_was_woken_before_it() {
        let mut rounds: Rounds<&str, u32> = Rounds::new();
        let (tx_a, rx_a) = oneshot::channel();
        let (tx_b, rx_b) = oneshot::channel();
        rounds.push("a", pending_on(rx_a));
        rounds.push("b", pending_on(rx_b));
        let mut cx = noop_cx();
        // First round: both polled for the first time, none done.
        assert!(matches!(rounds.poll_round(&mut cx), Poll::Ready(ref v) if v.is_empty()));
        assert!(rounds.poll_round(&mut cx).is_pending());
        // b completes, then a: the next round sees both, in wake order.
        tx_b.send(2).unwrap();
        tx_a.send(1).unwrap();
        match rounds.poll_round(&mut cx) {
            Poll::Ready(done) => assert_eq!(done, vec![("b", 2), ("a", 1)]),
            Poll::Pending => panic!("nothing polled"),
        }
        assert!(rounds.is_empty());
        assert!(rounds.poll_round(&mut cx).is_pending());
    }

    #[test]
    fn slots_are_reused_and_cleared() {
        let mut rounds: Rounds<u32, u32> = Rounds::new();
        let mut cx = noop_cx();
        rounds.push(1, Box::pin(async { 10 }));
        rounds.push(2, Box::pin(async { 20 }));
        match rounds.poll_round(&mut cx) {
            Poll::Ready(done) => assert_eq!(done, vec![(1, 10), (2, 20)]),
            Poll::Pending => panic!("nothing polled"),
        }
        let (_tx, rx) = oneshot::channel();
        rounds.push(3, pending_on(rx));
        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds.slots.len(), 2);
        rounds.clear();
        assert!(rounds.is_empty());
    }
}
