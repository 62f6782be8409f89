//! Keeps lapin from dumping returned messages into the log, and from
//! logging a failed handshake that the bus reports itself.
//!
//! lapin 4.12 logs every `basic.return` at WARN with the whole message,
//! its body as a list of decimal bytes (`warn!(?message, "Server returned
//! us a message")` in `returned_messages.rs`): a 1.6 KB line for a reply
//! to a peer that left, hundreds of megabytes for a large message. The
//! publisher handles every returned message itself (a user's direct send
//! fails with `UnknownTarget`, a reply to a peer that left gets one debug
//! line), so that event is noise. lapin's I/O loop runs on a thread of its
//! own and calls the connect function the bus gives it on that thread; the
//! bus installs there a dispatcher that forwards everything to the global
//! one except that event. (The upstream fix: log returns at debug level
//! without the body, or let the caller opt out.)
//!
//! A connection the broker refuses before it is open (a vhost that does
//! not exist, wrong credentials) makes lapin 4.12 log three ERROR lines
//! (`Connection closed` from the I/O thread, `Connection error` from its
//! internal task, `Exponential backoff attempts exhausted` after its
//! retries), while the bus returns the reason as its error, with a hint
//! (`link.rs`). So until a connection is open ([`Handshake`]), lapin's
//! WARN and ERROR lines about it are dropped too: on its I/O thread, and
//! in the tasks lapin spawns on the runtime kit's executor
//! ([`QuietExecutor`]). From the moment it is open they pass as before.
//! (The upstream fix: reject the connect promise without logging, or log
//! at debug level, what the caller gets as the error anyway.)

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_rs::traits::Executor;
use async_rs::util::Task;
use async_rs::Tokio;
use tracing::dispatcher::{self, Dispatch};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

thread_local! {
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a connection is open yet: until then lapin's lines about it
/// are the bus's to report. One per connection, shared by its I/O thread
/// and the tasks lapin spawns for it.
#[derive(Clone, Default, Debug)]
pub(super) struct Handshake(Arc<AtomicBool>);

impl Handshake {
    /// The connection is open: lapin's lines about it pass from now on.
    pub(super) fn done(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_done(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether `meta` is a line of lapin's that the bus reports itself.
    fn hides(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= Level::WARN && meta.target().starts_with("lapin") && !self.is_done()
    }
}

/// Installs the filter on the calling thread (lapin's I/O thread of the
/// connection `handshake` belongs to), once.
pub(super) fn on_io_thread(handshake: &Handshake) {
    INSTALLED.with(|installed| {
        if installed.replace(true) {
            return;
        }
        let inner = dispatcher::get_default(Dispatch::clone);
        let quiet = QuietLapin {
            inner,
            handshake: Some(handshake.clone()),
        };
        let guard = dispatcher::set_default(&Dispatch::new(quiet));
        // The filter stays for the thread's lifetime: lapin's I/O thread
        // lives as long as its connection.
        std::mem::forget(guard);
    });
}

/// Whether `meta` is lapin's dump of a returned message.
fn is_return_dump(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::WARN && meta.target().starts_with("lapin::returned_messages")
}

/// Forwards to `inner` everything but lapin's dump of returned messages
/// and, while `handshake` is not done, lapin's warnings and errors.
struct QuietLapin {
    inner: Dispatch,
    handshake: Option<Handshake>,
}

impl QuietLapin {
    fn hides(&self, meta: &Metadata<'_>) -> bool {
        is_return_dump(meta) || self.handshake.as_ref().is_some_and(|h| h.hides(meta))
    }
}

impl Subscriber for QuietLapin {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_return_dump(meta) {
            Interest::never()
        } else if self.handshake.is_some()
            && *meta.level() <= Level::WARN
            && meta.target().starts_with("lapin")
        {
            // Hidden only until the handshake is done: asked each time.
            match self.inner.register_callsite(meta) {
                never if never.is_never() => never,
                _ => Interest::sometimes(),
            }
        } else {
            self.inner.register_callsite(meta)
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !self.hides(meta) && self.inner.enabled(meta)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows);
    }

    fn event(&self, event: &Event<'_>) {
        if !self.hides(event.metadata()) {
            self.inner.event(event);
        }
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span);
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
}

/// tokio's executor for lapin's tasks, which runs the tasks spawned
/// before the connection's handshake is done under [`QuietLapin`] (the
/// first is lapin's internal task, which lives as long as the connection
/// and logs its errors); those spawned later go to tokio unchanged.
#[derive(Clone, Debug)]
pub(super) struct QuietExecutor {
    pub(super) tokio: Tokio,
    pub(super) handshake: Handshake,
}

impl Executor for QuietExecutor {
    type Task<T: Send + 'static> = <Tokio as Executor>::Task<T>;

    fn block_on<T, F: Future<Output = T>>(&self, f: F) -> T {
        self.tokio.block_on(f)
    }

    fn spawn<T: Send + 'static, F: Future<Output = T> + Send + 'static>(&self, f: F) -> Task<Self::Task<T>> {
        if self.handshake.is_done() {
            return self.tokio.spawn(f);
        }
        let quiet = QuietLapin {
            inner: dispatcher::get_default(Dispatch::clone),
            handshake: Some(self.handshake.clone()),
        };
        self.tokio.spawn(Quiet {
            future: f,
            dispatch: Dispatch::new(quiet),
            handshake: self.handshake.clone(),
        })
    }

    fn spawn_blocking<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
        &self,
        f: F,
    ) -> Task<Self::Task<T>> {
        self.tokio.spawn_blocking(f)
    }
}

pin_project_lite::pin_project! {
    /// A future polled under `dispatch` until the handshake is done.
    struct Quiet<F> {
        #[pin]
        future: F,
        dispatch: Dispatch,
        handshake: Handshake,
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.handshake.is_done() {
            this.future.poll(cx)
        } else {
            let future = this.future;
            dispatcher::with_default(this.dispatch, || future.poll(cx))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects the messages of events.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Collect {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(format!(
                "{} {}",
                event.metadata().target(),
                event.metadata().level()
            ));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn drops_only_the_return_dump() {
        let seen = Collect::default();
        let outer = Dispatch::new(seen.clone());
        std::thread::spawn(move || {
            dispatcher::with_default(&outer, || {
                let open = Handshake::default();
                open.done();
                on_io_thread(&open);
                tracing::warn!(target: "lapin::returned_messages", "Server returned us a message");
                tracing::debug!(target: "lapin::returned_messages", "kept");
                tracing::warn!(target: "lapin::channel", "kept");
            });
        })
        .join()
        .unwrap();
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["lapin::returned_messages DEBUG", "lapin::channel WARN"],
            "{seen:?}"
        );
    }

    #[test]
    fn hides_lapins_warnings_and_errors_until_the_handshake_is_done() {
        let seen = Collect::default();
        let outer = Dispatch::new(seen.clone());
        let handshake = Handshake::default();
        std::thread::spawn(move || {
            dispatcher::with_default(&outer, || {
                on_io_thread(&handshake);
                tracing::error!(target: "lapin::channel", "Connection closed");
                tracing::warn!(target: "lapin::io_loop", "hidden too");
                tracing::debug!(target: "lapin::channel", "kept");
                tracing::error!(target: "munggoggo", "kept");
                handshake.done();
                tracing::error!(target: "lapin::channel", "kept");
            });
        })
        .join()
        .unwrap();
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["lapin::channel DEBUG", "munggoggo ERROR", "lapin::channel ERROR"],
            "{seen:?}"
        );
    }

    #[test]
    fn tasks_spawned_during_the_handshake_are_quiet_until_it_is_done() {
        let seen = Collect::default();
        let outer = Dispatch::new(seen.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        dispatcher::with_default(&outer, || {
            runtime.block_on(async {
                let handshake = Handshake::default();
                let executor = QuietExecutor {
                    tokio: Tokio::current(),
                    handshake: handshake.clone(),
                };
                let (logged, first) = tokio::sync::oneshot::channel::<()>();
                let (open, opened) = tokio::sync::oneshot::channel::<()>();
                let task = executor.spawn(async move {
                    tracing::error!(target: "lapin::channels", "Connection error");
                    logged.send(()).unwrap();
                    opened.await.unwrap();
                    tracing::error!(target: "lapin::channels", "kept");
                });
                first.await.unwrap();
                handshake.done();
                open.send(()).unwrap();
                task.await;
            });
        });
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen, ["lapin::channels ERROR"], "{seen:?}");
    }
}
