//! [`Flag`]: a one-way signal, set once and awaited by any number of
//! tasks, for an agent's stop request and its end. (A `watch<bool>` does
//! the same in 344 bytes; an agent needs two.)

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A signal that is set once and stays set.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    set: AtomicBool,
    notify: Notify,
}

impl Flag {
    /// Sets the flag and wakes every waiter; later calls do nothing.
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::AcqRel) {
            self.notify.notify_waiters();
        }
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Waits until the flag is set (returns at once if it is).
    pub(crate) async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the look, so a `set` in between is not missed.
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Flag;

    #[tokio::test]
    async fn every_waiter_wakes_and_a_late_one_returns_at_once() {
        let flag = Arc::new(Flag::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let flag = Arc::clone(&flag);
                tokio::spawn(async move { flag.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(!flag.is_set());
        flag.set();
        flag.set();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        flag.wait().await;
        assert!(flag.is_set());
    }
}
