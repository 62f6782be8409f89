//! [`Flag`]: a one-way signal, set once and awaited by any number of
//! tasks, for an agent's stop request and its end (a `watch<bool>` does
//! the same in 344 bytes; an agent needs two); [`Activity`]: the signal
//! of an agent's every step, for [`crate::AgentHandle::wait_until`];
//! [`Quiet`]: the wake-up of an agent's task by its quiet lanes.
//!
//! Their atomics come through `sync` so that loom can check them
//! (`loom_model.rs`: `RUSTFLAGS="--cfg munggoggo_loom" cargo test -p munggoggo --lib
//! --release loom`).

use std::sync::Arc;
use std::task::{Context, Waker};

use sync::{fence, AtomicBool, AtomicUsize, AtomicWaker, Notified, Notify, Ordering};

#[cfg(all(test, munggoggo_loom))]
mod loom_model;
mod sync;

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

/// Wakes the tasks that watch an agent's steps (a message handled, a
/// behaviour step run, a system request answered). A step costs a fence
/// and a load while nobody watches, rather than a lock.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    watchers: AtomicUsize,
    notify: Notify,
}

/// Registers a watcher of an [`Activity`] while it lives.
pub(crate) struct Watching<'a>(&'a Activity);

impl Activity {
    /// Signals a step to the watchers.
    pub(crate) fn notify(&self) {
        // Pairs with the fence in `watch`: a watcher counted after this
        // load sees the state this step left.
        fence(Ordering::SeqCst);
        if self.watchers.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Counts the caller as a watcher until the guard drops; take
    /// [`Self::notified`] and enable it before each look at the state.
    pub(crate) fn watch(&self) -> Watching<'_> {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Watching(self)
    }

    /// The next step's signal (see [`Notify::notified`]).
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wakes an agent's task for its quiet lanes (the control queue, the stop
/// request, start/stop requests, calls, the behaviour timer) and
/// remembers that one of them did, so that the task looks at them only
/// then rather than at every message: a busy agent's messages otherwise
/// pay a look (a lock, a waker) at each idle lane. The quiet lanes are
/// polled with [`Quiet::waker`] only.
#[derive(Debug)]
pub(crate) struct Quiet {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for Quiet {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake();
    }
}

impl Quiet {
    /// Woken: the task looks at its quiet lanes first.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Quiet {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        })
    }

    /// Whether a quiet lane woke the task since the last call (which
    /// clears it); the waker of `cx` is woken when one does next.
    pub(crate) fn woke(&self, cx: &Context<'_>) -> bool {
        self.task.register(cx.waker());
        // As a swap, without the write when no lane woke the task (most
        // calls). Loom also needs it: it lets a swap read a value older
        // than a store that happens before it (tokio-rs/loom#254).
        self.woken
            .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Has the waker of `cx` woken when a quiet lane wakes next (and
    /// leaves the record of earlier wakes as it is).
    pub(crate) fn listen(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
    }

    /// Has the task look at its quiet lanes next time (one was ready
    /// and may hold more, or a lane changed).
    pub(crate) fn look_again(&self) {
        self.woken.store(true, Ordering::SeqCst);
    }

    /// The waker to poll quiet lanes with.
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::clone(self))
    }
}

#[cfg(all(test, not(munggoggo_loom)))]
mod tests {
    use std::sync::Arc;

    use super::{Activity, Flag};

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

    #[tokio::test]
    async fn a_watcher_wakes_at_the_next_step_and_unwatched_steps_are_free() {
        let activity = Arc::new(Activity::default());
        activity.notify(); // nobody watches: nothing to wake
        let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let watcher = {
            let (activity, steps) = (Arc::clone(&activity), Arc::clone(&steps));
            tokio::spawn(async move {
                let _watching = activity.watch();
                loop {
                    let next = activity.notified();
                    tokio::pin!(next);
                    next.as_mut().enable();
                    if steps.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
                        return;
                    }
                    next.await;
                }
            })
        };
        for _ in 0..2 {
            tokio::task::yield_now().await;
            steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            activity.notify();
        }
        // A lost wake-up would leave the watcher waiting: fail instead of hanging.
        tokio::time::timeout(std::time::Duration::from_secs(10), watcher)
            .await
            .expect("the watcher woke at the second step")
            .unwrap();
        assert_eq!(activity.watchers.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
