//! A default [`tracing`] subscriber (feature `logging`, on by default), so
//! that rejected messages and handler errors are seen without any set-up.
//!
//! [`Runtime::run_until_signal`](crate::Runtime::run_until_signal) and the
//! launcher of `munggoggo-cli` install it unless the program has set a
//! global subscriber of its own; call [`init_logging`] to install it
//! yourself (for example before [`Runtime::start`](crate::Runtime::start)).

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// What is logged when `RUST_LOG` is unset: `info` and above, lapin's own
/// lines from `warn` on.
pub const DEFAULT_FILTER: &str = "info,lapin=warn";

/// Installs a subscriber that writes to stderr, filtered by `RUST_LOG`
/// (default [`DEFAULT_FILTER`]), unless a global subscriber is set already.
/// Returns whether it installed one.
///
/// ```
/// // RUST_LOG=munggoggo=debug shows every message an agent receives.
/// munggoggo::init_logging();
/// tracing::info!("agents starting");
/// ```
pub fn init_logging() -> bool {
    init_logging_with(DEFAULT_FILTER)
}

/// [`init_logging`] with another filter for when `RUST_LOG` is unset or
/// empty (a command line that logs only errors unless asked, say).
///
/// ```
/// munggoggo::logging::init_logging_with("error");
/// ```
pub fn init_logging_with(default: &str) -> bool {
    install(filter_from_env(default))
}

/// `RUST_LOG` when it is set and not empty, else `default`.
pub(crate) fn filter_from_env(default: &str) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => EnvFilter::new(filter),
        _ => EnvFilter::new(default),
    }
}

/// Installs the subscriber with `filter`, unless one is set already.
pub(crate) fn install(filter: EnvFilter) -> bool {
    if tracing::dispatcher::has_been_set() {
        return false;
    }
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let output = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(LockedQueueNoise);
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
        || tracing::dispatcher::has_been_set()
}

/// Drops lapin's ERROR line for a channel closed because a queue is taken:
/// RESOURCE_LOCKED (a 0.4 agent's exclusive queue) or ACCESS_REFUSED "in
/// exclusive use" (a Rust agent's exclusive consumer). munggoggo reports
/// both itself, as an identity already in use; other refusals (a user
/// without permissions) keep their line.
pub(crate) struct LockedQueueNoise;

impl<S> Filter<S> for LockedQueueNoise {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        if !event.metadata().target().starts_with("lapin") {
            return true;
        }
        let mut finder = LockedFinder(false);
        event.record(&mut finder);
        !finder.0
    }
}

/// Whether any field of an event says that a queue is taken.
struct LockedFinder(bool);

fn taken(text: &str) -> bool {
    text.contains("RESOURCE_LOCKED") || text.contains("ACCESS_REFUSED") && text.contains("in exclusive use")
}

impl Visit for LockedFinder {
    fn record_str(&mut self, _: &Field, value: &str) {
        self.0 |= taken(value);
    }

    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        if !self.0 {
            self.0 = taken(&format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscriber with the noise filter, counting what gets through.
    fn count_events(emit: impl FnOnce()) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        struct Count(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> Layer<S> for Count {
            fn on_event(&self, _: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(AtomicUsize::new(0));
        let subscriber =
            tracing_subscriber::registry().with(Count(Arc::clone(&count)).with_filter(LockedQueueNoise));
        tracing::subscriber::with_default(subscriber, emit);
        count.load(Ordering::SeqCst)
    }

    #[test]
    fn lapins_resource_locked_line_is_dropped_and_others_kept() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct AmqpError(&'static str);
        let locked = AmqpError("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'a'");
        let consumed = AmqpError("ACCESS_REFUSED - queue 'a.control' in vhost '/' in exclusive use");
        let n = count_events(|| {
            tracing::error!(target: "lapin::channel", error = ?locked, "Channel closed");
            tracing::error!(target: "lapin::channel", error = ?consumed, "Channel closed");
        });
        assert_eq!(n, 0);
        let n = count_events(|| {
            tracing::error!(target: "lapin::channel", error = ?AmqpError("PRECONDITION_FAILED"), "Channel closed");
            let denied = AmqpError("ACCESS_REFUSED - access to vhost 'x' refused for user 'u'");
            tracing::error!(target: "lapin::channel", error = ?denied, "Channel closed");
            tracing::error!(target: "munggoggo", reason = "RESOURCE_LOCKED", "our own line");
        });
        assert_eq!(n, 3);
    }
}
