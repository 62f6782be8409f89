//! Keeps lapin from dumping returned messages into the log.
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

use std::cell::Cell;

use tracing::dispatcher::{self, Dispatch};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

thread_local! {
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the filter on the calling thread (lapin's I/O thread), once.
pub(super) fn on_io_thread() {
    INSTALLED.with(|installed| {
        if installed.replace(true) {
            return;
        }
        let inner = dispatcher::get_default(Dispatch::clone);
        let guard = dispatcher::set_default(&Dispatch::new(QuietReturns { inner }));
        // The filter stays for the thread's lifetime: lapin's I/O thread
        // lives as long as its connection.
        std::mem::forget(guard);
    });
}

/// Whether `meta` is lapin's dump of a returned message.
fn is_return_dump(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::WARN && meta.target().starts_with("lapin::returned_messages")
}

/// Forwards to `inner` everything but lapin's dump of returned messages.
struct QuietReturns {
    inner: Dispatch,
}

impl Subscriber for QuietReturns {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_return_dump(meta) {
            Interest::never()
        } else {
            self.inner.register_callsite(meta)
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !is_return_dump(meta) && self.inner.enabled(meta)
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
        if !is_return_dump(event.metadata()) {
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
                on_io_thread();
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
}
