//! Invocations: one run of a handler, behaviour step or `#[rpc]` method,
//! and the confirms of the messages it sent.
//!
//! Inside an invocation a send returns once its message is on its way; the
//! confirm is collected here. When the invocation ends the runtime settles
//! it: the input of a handler is acknowledged only once every confirm came
//! back positive (else the invocation counts as failed and its input is
//! rejected), a behaviour step's failed confirm counts as a failed run, an
//! `#[rpc]` method's reply waits for them. Settling happens beside the
//! agent's task, so an agent that forwards message after message is bound
//! by the window of outstanding confirms, not by one round trip each.
//! Outside an invocation (setup, teardown, spawned tasks, clients) a send
//! waits for its own confirm, unless it is made in
//! [`Context::pipelined`](crate::Context::pipelined), which makes an
//! invocation of its own.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

use crate::bus::Confirm;
use crate::error::Result;

tokio::task_local! {
    static CURRENT: Arc<Invocation>;
}

thread_local! {
    /// Where the last panic inside an invocation on this thread happened.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process; later calls do nothing) a panic hook that
/// keeps quiet about panics inside handlers, behaviours and `#[rpc]`
/// methods: the runtime catches them and logs one line with the message,
/// and with this hook the location too, so the default hook's report (and
/// with `RUST_BACKTRACE` set, a backtrace per panic) would only repeat it.
/// Other panics go to the hook that was installed before.
///
/// The runtime never installs it by itself: a panic hook belongs to the
/// whole process. Without it, a caught panic is reported twice: by the
/// default hook on stderr, and by the runtime's log line without the
/// location.
///
/// ```
/// munggoggo::quiet_caught_panics();
/// ```
pub fn quiet_caught_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A run the runtime catches panics of; not `Context::pipelined`,
            // whose panics go on to its caller.
            if inside() {
                let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// The location of the last panic caught inside an invocation on this
/// thread, taken.
pub(crate) fn take_panic_location() -> Option<String> {
    PANIC_LOCATION.with(|slot| slot.borrow_mut().take())
}

/// The confirms one invocation is waiting for.
#[derive(Default)]
pub(crate) struct Invocation {
    confirms: Mutex<Vec<Confirm>>,
    /// Made by [`pipelined`], not by the runtime for a run.
    pipelined: bool,
}

impl Invocation {
    /// Runs `future` as this invocation: its sends report here.
    pub(crate) async fn scope<F: std::future::Future>(self: &Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(Arc::clone(self), future).await
    }

    /// Takes the confirms collected so far.
    pub(crate) fn take(&self) -> Vec<Confirm> {
        std::mem::take(&mut *self.confirms.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, confirm: Confirm) {
        self.confirms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(confirm);
    }
}

/// Hands a confirm to the current invocation, or waits for it outside one.
pub(crate) async fn settle(confirm: Confirm) -> Result<()> {
    if confirm.is_done() {
        return confirm.wait().await;
    }
    match CURRENT.try_with(Arc::clone) {
        Ok(invocation) => {
            invocation.push(confirm);
            Ok(())
        }
        Err(_) => confirm.wait().await,
    }
}

/// Whether the caller runs inside an invocation (a handler, behaviour step
/// or `#[rpc]` method on an agent's task), where waiting for that task
/// would wait forever.
pub(crate) fn inside() -> bool {
    CURRENT
        .try_with(|invocation| !invocation.pipelined)
        .unwrap_or(false)
}

/// Waits for the confirms of the current invocation so far.
pub(crate) async fn flush() -> Result<()> {
    match CURRENT.try_with(|invocation| invocation.take()) {
        Ok(confirms) => wait_all(confirms).await,
        Err(_) => Ok(()),
    }
}

/// Runs `sends` as an invocation of its own (unless inside one already),
/// then waits for the confirms of what it sent.
pub(crate) async fn pipelined<T>(sends: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    if inside() {
        return sends.await;
    }
    let invocation = Arc::new(Invocation {
        pipelined: true,
        ..Invocation::default()
    });
    let outcome = invocation.scope(sends).await;
    let confirmed = wait_all(invocation.take()).await;
    let value = outcome?;
    confirmed.map(|()| value)
}

/// Waits for every confirm; the first failure is the result.
pub(crate) async fn wait_all(confirms: Vec<Confirm>) -> Result<()> {
    let mut outcome = Ok(());
    for confirm in confirms {
        let result = confirm.wait().await;
        if outcome.is_ok() {
            outcome = result;
        }
    }
    outcome
}

/// The panic's message, with where it happened when the panic hook saw it.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    };
    match take_panic_location() {
        Some(location) => format!("{message} (at {location})"),
        None => message,
    }
}
