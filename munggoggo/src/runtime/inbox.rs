//! [`Inbox`]: a small bounded queue into the agent's task (start/stop
//! requests, `#[rpc]` calls), kept inside the agent's state. Unlike a
//! tokio channel it allocates nothing until it is used (a tokio channel
//! allocates a cache-padded header and room for 32 entries up front, for
//! every agent).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A bounded queue with one receiver, the agent's task.
pub(crate) struct Inbox<T> {
    queue: Mutex<Queue<T>>,
    waker: AtomicWaker,
    capacity: usize,
}

struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Why [`Inbox::try_send`] gave the item back.
pub(crate) enum Refused<T> {
    /// The inbox holds its capacity.
    Full(T),
    /// The agent's task is gone or stopping.
    Closed(T),
}

impl<T> Inbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Inbox {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
            }),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `item` unless the inbox is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), Refused<T>> {
        {
            let mut queue = self.lock();
            if queue.closed {
                return Err(Refused::Closed(item));
            }
            if queue.items.len() >= self.capacity {
                return Err(Refused::Full(item));
            }
            queue.items.push_back(item);
        }
        self.waker.wake();
        Ok(())
    }

    /// The next item; `None` once the inbox is closed and empty.
    #[cfg(test)]
    pub(crate) async fn recv(&self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Self::recv`] as a poll.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(item) = self.lock().items.pop_front() {
            return Poll::Ready(Some(item));
        }
        self.waker.register(cx.waker());
        // An item queued between the first look and the registration.
        let mut queue = self.lock();
        match queue.items.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            None if queue.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Refuses further items and returns those waiting.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut queue = self.lock();
        queue.closed = true;
        std::mem::take(&mut queue.items)
    }

    /// A panic elsewhere cannot leave the queue inconsistent.
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_then_closed() {
        let inbox = Inbox::new(2);
        assert!(inbox.try_send(1).is_ok());
        assert!(inbox.try_send(2).is_ok());
        assert!(matches!(inbox.try_send(3), Err(Refused::Full(3))));
        assert_eq!(inbox.recv().await, Some(1));
        let left = inbox.close();
        assert_eq!(left, [2]);
        assert!(matches!(inbox.try_send(4), Err(Refused::Closed(4))));
        assert_eq!(inbox.recv().await, None);
    }
}
