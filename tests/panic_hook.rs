//! `munggoggo::quiet_caught_panics`, the opt-in panic hook, in a test
//! binary of its own (a panic hook belongs to the whole process): the
//! runtime installs none by itself; once installed, a panic the runtime
//! catches in a behaviour is reported by the runtime alone, with its
//! location, and every other panic still reaches the hook installed
//! before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use munggoggo::prelude::*;
use munggoggo::Runtime;

/// Panics in its first run.
#[agent]
struct Breaks;

#[agent]
impl Breaks {
    #[behaviour(oneshot)]
    async fn breaks(&mut self) {
        panic!("broken on purpose");
    }
}

/// Runs `Breaks` once and gives the error its behaviour recorded.
async fn caught_panic() -> String {
    let rt = Runtime::memory().start().await.unwrap();
    let agent = rt.spawn(Breaks).await.unwrap();
    let counted = agent.wait_until(|a| a.behaviour("breaks").is_some_and(|b| b.errors == 1));
    tokio::time::timeout(Duration::from_secs(10), counted)
        .await
        .expect("within 10 s")
        .expect("the behaviour's panic is counted");
    let error = agent.behaviour("breaks").unwrap().last_error;
    rt.shutdown().await;
    error.expect("the panic is recorded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panic_hook_is_opt_in_and_keeps_other_panics() {
    let reported = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reported);
    std::panic::set_hook(Box::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    // Without the hook: the process's own hook hears of the panic too, and
    // the runtime's record has the message but not where it happened.
    let before = caught_panic().await;
    assert!(before.contains("broken on purpose"), "{before}");
    assert!(!before.contains("panic_hook.rs"), "{before}");
    assert_eq!(
        reported.load(Ordering::SeqCst),
        1,
        "the runtime installed a hook by itself"
    );

    munggoggo::quiet_caught_panics();
    munggoggo::quiet_caught_panics(); // a second call changes nothing

    // With it: the runtime reports the panic alone, with its location.
    let after = caught_panic().await;
    assert!(after.contains("broken on purpose"), "{after}");
    assert!(after.contains("panic_hook.rs:"), "the location is kept: {after}");
    assert_eq!(
        reported.load(Ordering::SeqCst),
        1,
        "a caught panic reached the other hook"
    );

    // A panic outside the runtime's runs still reaches the hook before it.
    let outside = std::panic::catch_unwind(|| panic!("not the runtime's"));
    assert!(outside.is_err());
    assert_eq!(
        reported.load(Ordering::SeqCst),
        2,
        "another panic was kept from its hook"
    );
}
