//! Model checks of `flag.rs` with loom, which runs each test under every
//! interleaving of its threads and every outcome the memory orderings
//! allow:
//!
//! ```text
//! RUSTFLAGS="--cfg munggoggo_loom" cargo test -p munggoggo --lib --release loom
//! ```
//!
//! What they cover, each a claim of `flag.rs`'s comments:
//! - [`Flag`]: a `set` concurrent with `wait` is never missed, by one
//!   waiter or two; what was written before `set` is seen by whoever sees
//!   the flag set (`is_set`, or `wait` returning).
//! - [`Activity`]: a step concurrent with a watcher that starts watching
//!   is either seen by the watcher's look at the state or wakes it (the
//!   two SeqCst fences; the state here is a relaxed atomic, the weakest
//!   a caller could use).
//! - [`Quiet`]: a quiet lane's wake concurrent with the task's `woke` is
//!   never lost: `woke` returns true or the task is woken again; and a
//!   lane's wake concurrent with `listen` and a look at the lane is seen
//!   by the look or wakes the task.
//!
//! What they do not cover: tokio's `Notify` and futures' `AtomicWaker`
//! themselves, which loom cannot run. `sync.rs` puts in their place a
//! model of `Notify` written to its documented contract (`notify_waiters`
//! wakes every `Notified` created before it) and loom's own
//! `AtomicWaker`, so a bug in the real ones, or a use that relies on more
//! than those contracts, would not show here. Nor the callers' loops
//! (`task.rs`, `AgentHandle::wait_until`), only the same patterns
//! reproduced in the tests. Loom also treats SeqCst loads and stores as
//! AcqRel (its SeqCst fences are exact): a weaker model, so what passes
//! here holds on the real one.

use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::{Activity, Flag, Quiet};

#[test]
fn loom_flag_set_concurrent_with_wait_is_never_missed() {
    loom::model(|| {
        let flag = Arc::new(Flag::default());
        let setter = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || flag.set())
        };
        // A lost wake-up leaves this waiting: loom reports a deadlock.
        block_on(flag.wait());
        assert!(flag.is_set());
        setter.join().unwrap();
    });
}

#[test]
fn loom_flag_wakes_every_waiter() {
    // Three threads: bounded preemptions keep this to seconds (loom's
    // usual advice); a lost wake-up needs only one.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let flag = Arc::new(Flag::default());
        let waiter = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || block_on(flag.wait()))
        };
        let setter = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || {
                flag.set();
                flag.set();
            })
        };
        block_on(flag.wait());
        waiter.join().unwrap();
        setter.join().unwrap();
    });
}

#[test]
fn loom_flag_publishes_what_was_written_before_it() {
    loom::model(|| {
        let flag = Arc::new(Flag::default());
        let data = Arc::new(AtomicUsize::new(0));
        let setter = {
            let (flag, data) = (Arc::clone(&flag), Arc::clone(&data));
            thread::spawn(move || {
                data.store(1, Ordering::Relaxed);
                flag.set();
            })
        };
        if flag.is_set() {
            assert_eq!(
                data.load(Ordering::Relaxed),
                1,
                "is_set saw the flag, not the write"
            );
        }
        block_on(flag.wait());
        assert_eq!(data.load(Ordering::Relaxed), 1, "wait returned without the write");
        setter.join().unwrap();
    });
}

#[test]
fn loom_activity_step_is_seen_or_wakes_the_watcher() {
    loom::model(|| {
        let activity = Arc::new(Activity::default());
        let steps = Arc::new(AtomicUsize::new(0));
        let stepper = {
            let (activity, steps) = (Arc::clone(&activity), Arc::clone(&steps));
            thread::spawn(move || {
                steps.store(1, Ordering::Relaxed);
                activity.notify();
            })
        };
        // As AgentHandle::wait_until does.
        block_on(async {
            let _watching = activity.watch();
            loop {
                let next = activity.notified();
                let mut next = std::pin::pin!(next);
                next.as_mut().enable();
                if steps.load(Ordering::Relaxed) == 1 {
                    return;
                }
                next.await;
            }
        });
        stepper.join().unwrap();
        assert_eq!(activity.watchers.load(Ordering::Relaxed), 0);
    });
}

/// Polls `quiet.woke` until a lane has woken the task, as task.rs does.
async fn woken(quiet: &Quiet) {
    poll_fn(|cx| {
        if quiet.woke(cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

#[test]
fn loom_quiet_wake_concurrent_with_woke_is_never_lost() {
    loom::model(|| {
        let quiet = Quiet::new();
        // A new Quiet counts as woken: the task looks at its lanes first.
        assert!(quiet.woke(&Context::from_waker(Waker::noop())));
        let lane = {
            let quiet = std::sync::Arc::clone(&quiet);
            thread::spawn(move || quiet.waker().wake_by_ref())
        };
        block_on(woken(&quiet));
        lane.join().unwrap();
    });
}

#[test]
fn loom_quiet_wake_after_listen_is_never_lost() {
    loom::model(|| {
        let quiet = Quiet::new();
        let item = Arc::new(AtomicUsize::new(0));
        // A lane: its consumer was polled with the Quiet waker, and a
        // delivery arrives.
        let lane = {
            let (quiet, item) = (std::sync::Arc::clone(&quiet), Arc::clone(&item));
            thread::spawn(move || {
                item.store(1, Ordering::Relaxed);
                quiet.waker().wake();
            })
        };
        // The task polls the lane as lanes.rs does: `listen`, then a look.
        block_on(poll_fn(|cx| {
            quiet.listen(cx);
            if item.load(Ordering::Relaxed) == 1 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        lane.join().unwrap();
    });
}
