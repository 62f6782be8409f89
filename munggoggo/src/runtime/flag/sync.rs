//! What `flag.rs` is built on: std's atomics, tokio's `Notify` and
//! futures' `AtomicWaker`; under `--cfg munggoggo_loom`, loom's atomics, loom's
//! `AtomicWaker` and a model of `Notify` that loom can run (tokio's is
//! not loom-aware outside tokio's own tests).

#[cfg(not(munggoggo_loom))]
pub(crate) use futures_util::task::AtomicWaker;
#[cfg(not(munggoggo_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(munggoggo_loom))]
pub(crate) use tokio::sync::{futures::Notified, Notify};

#[cfg(munggoggo_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(munggoggo_loom)]
pub(crate) use model::{AtomicWaker, Notified, Notify};

#[cfg(munggoggo_loom)]
mod model {
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Mutex;

    /// tokio's `Notify` as `flag.rs` uses it, by its documented contract:
    /// `notify_waiters` wakes every [`Notified`] created before it, polled
    /// or not (tokio's counts the calls from the future's creation, as
    /// this does); `enable` is then only a look. Nothing of `notify_one`.
    #[derive(Default)]
    pub(crate) struct Notify {
        calls: AtomicUsize,
        waiters: Mutex<Vec<Waker>>,
    }

    impl fmt::Debug for Notify {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Notify")
        }
    }

    impl Notify {
        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                notify: self,
                calls: self.calls.load(Ordering::SeqCst),
            }
        }

        pub(crate) fn notify_waiters(&self) {
            let waiters = {
                let mut waiters = self.waiters.lock().unwrap();
                self.calls.fetch_add(1, Ordering::SeqCst);
                std::mem::take(&mut *waiters)
            };
            for waiter in waiters {
                waiter.wake();
            }
        }
    }

    /// A wait for the [`Notify`]'s next `notify_waiters`.
    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        /// The calls before this was created.
        calls: usize,
    }

    impl Notified<'_> {
        fn notified(&self) -> bool {
            self.notify.calls.load(Ordering::SeqCst) != self.calls
        }

        /// Whether it was notified already (tokio's also registers the
        /// future for `notify_one`, which `flag.rs` does not use).
        pub(crate) fn enable(self: Pin<&mut Self>) -> bool {
            self.notified()
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut waiters = self.notify.waiters.lock().unwrap();
            if self.notified() {
                return Poll::Ready(());
            }
            waiters.push(cx.waker().clone());
            Poll::Pending
        }
    }

    /// futures' `AtomicWaker` API on loom's.
    #[derive(Default)]
    pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

    impl fmt::Debug for AtomicWaker {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("AtomicWaker")
        }
    }

    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn register(&self, waker: &Waker) {
            self.0.register_by_ref(waker);
        }

        pub(crate) fn wake(&self) {
            self.0.wake();
        }
    }
}
