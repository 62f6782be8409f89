//! Behaviour timing on the embedded bus under tokio's paused clock.

mod common;

use std::time::Duration;

use common::Events;
use munggoggo::prelude::*;
use munggoggo::{Runtime, State};
use tokio::sync::mpsc;
use tokio::time::sleep;

#[agent]
struct Timed {
    events: Events,
}

#[agent]
impl Timed {
    #[behaviour(periodic = "5s")]
    async fn tick(&mut self) {
        let _ = self.events.send("tick".to_owned());
    }

    #[behaviour(periodic = "10s", initial_delay = "0s")]
    async fn eager(&mut self) {
        let _ = self.events.send("eager".to_owned());
    }

    #[behaviour(oneshot)]
    async fn once(&mut self) {
        let _ = self.events.send("once".to_owned());
    }

    #[behaviour(delay = "10s")]
    async fn later(&mut self) {
        let _ = self.events.send("later".to_owned());
    }
}

#[agent]
struct Stepper {
    steps: u64,
    events: Events,
}

#[agent]
impl Stepper {
    #[behaviour(cyclic)]
    async fn step(&mut self) -> Next {
        self.steps += 1;
        let _ = self.events.send(format!("step {}", self.steps));
        if self.steps == 100 {
            Next::Stop
        } else {
            Next::After(Duration::from_secs(1))
        }
    }
}

#[agent]
struct Slow {
    events: Events,
}

#[agent]
impl Slow {
    /// Takes 12 s of a 5 s period: the missed ticks are skipped, not bunched.
    #[behaviour(periodic = "5s")]
    async fn work(&mut self) {
        let _ = self.events.send("start".to_owned());
        sleep(Duration::from_secs(12)).await;
    }
}

#[agent]
struct Flaky {
    runs: u64,
}

#[agent]
impl Flaky {
    #[behaviour(periodic = "1s")]
    async fn flaky(&mut self) -> anyhow::Result<()> {
        self.runs += 1;
        match self.runs {
            2 => anyhow::bail!("second run failed"),
            3 => panic!("third run panicked"),
            _ => Ok(()),
        }
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|e| *e == name).count()
}

#[tokio::test(start_paused = true)]
async fn periodic_oneshot_and_delay_run_on_time() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = Runtime::memory().start().await.unwrap();
    let agent = rt.spawn(Timed { events: tx }).await.unwrap();
    assert_eq!(
        agent.identity(),
        "timed",
        "default identity is the kebab-case type name"
    );

    sleep(Duration::from_millis(4_900)).await;
    let events = drain(&mut rx);
    assert_eq!(
        count(&events, "tick"),
        0,
        "the first tick comes one period after start"
    );
    assert_eq!(count(&events, "eager"), 1, "initial_delay = 0s runs at once");
    assert_eq!(count(&events, "once"), 1);

    sleep(Duration::from_millis(60_200 - 4_900)).await; // t = 60.2 s
    let events = drain(&mut rx);
    assert_eq!(count(&events, "tick"), 12, "ticks at 5, 10, ..., 60 s");
    assert_eq!(count(&events, "eager"), 6, "at 10, 20, ..., 60 s");
    assert_eq!(count(&events, "once"), 0, "oneshot runs once");
    assert_eq!(count(&events, "later"), 1, "delay runs once");

    let tick = agent.behaviour("tick").unwrap();
    assert_eq!((tick.state, tick.runs, tick.errors), (State::Running, 12, 0));
    assert_eq!(tick.name, "timed.tick");
    assert_eq!(agent.behaviour("once").unwrap().state, State::Shutdown);
    assert_eq!(agent.behaviour("later").unwrap().state, State::Shutdown);

    // Stop and restart one behaviour; the others go on.
    agent.context().stop_behaviour("tick").await.unwrap();
    sleep(Duration::from_secs(20)).await; // t = 80.2 s
    let events = drain(&mut rx);
    assert_eq!(count(&events, "tick"), 0);
    assert_eq!(count(&events, "eager"), 2);
    assert_eq!(agent.behaviour("tick").unwrap().state, State::Init);
    agent.context().start_behaviour("tick").await.unwrap();
    sleep(Duration::from_secs(11)).await; // t = 91.2 s: ticks at 85.2, 90.2
    assert_eq!(count(&drain(&mut rx), "tick"), 2);
    // A finished oneshot can be started again.
    agent.context().start_behaviour("once").await.unwrap();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(count(&drain(&mut rx), "once"), 1);
    rt.shutdown().await;
}

/// A cyclic behaviour that goes on at once, a thousand times.
#[agent]
struct Spinner {
    steps: u64,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

#[agent]
impl Spinner {
    #[behaviour(cyclic)]
    async fn spin(&mut self) -> Next {
        // Each run takes half a millisecond of the paused clock, so that
        // it ends between two of the timer's millisecond ticks.
        tokio::time::advance(Duration::from_micros(500)).await;
        self.steps += 1;
        if self.steps == 1_000 {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
            return Next::Stop;
        }
        Next::Continue
    }
}

/// `Next::Continue` runs a cyclic behaviour again at once, not on the
/// timer's next millisecond tick: its thousand runs of half a millisecond
/// each take half a second of the paused clock, not a second. (On the
/// real clock the wait made a cyclic behaviour run about once per
/// millisecond: 1,000 runs took 1.19 s, now 5 ms.)
#[tokio::test(start_paused = true)]
async fn cyclic_goes_on_at_once_without_the_timer() {
    let rt = Runtime::memory().start().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = tokio::time::Instant::now();
    let agent = rt
        .spawn(Spinner {
            steps: 0,
            done: Some(tx),
        })
        .await
        .unwrap();
    rx.await.expect("a thousand runs");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(500),
        "the runs' own time only, no wait for the timer's ticks"
    );
    assert_eq!(agent.behaviour("spin").unwrap().runs, 1_000);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cyclic_runs_until_stopped() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = Runtime::memory().start().await.unwrap();
    let agent = rt.spawn(Stepper { steps: 0, events: tx }).await.unwrap();
    sleep(Duration::from_millis(9_500)).await;
    assert_eq!(drain(&mut rx).len(), 10, "steps at 0, 1, ..., 9 s");
    agent.context().stop_behaviour("step").await.unwrap();
    sleep(Duration::from_secs(10)).await;
    assert!(
        drain(&mut rx).is_empty(),
        "a stopped cyclic behaviour does not run"
    );
    agent.context().start_behaviour("step").await.unwrap();
    sleep(Duration::from_millis(500)).await;
    assert_eq!(drain(&mut rx), vec!["step 11".to_owned()]);
    // Next::Stop finishes it.
    sleep(Duration::from_secs(200)).await;
    assert_eq!(drain(&mut rx).last().map(String::as_str), Some("step 100"));
    assert_eq!(agent.behaviour("step").unwrap().state, State::Shutdown);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_are_skipped() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = Runtime::memory().start().await.unwrap();
    rt.spawn(Slow { events: tx }).await.unwrap();
    // Runs start at 5 s (until 17), 20 s (until 32), 35 s (until 47), 50 s.
    sleep(Duration::from_millis(50_500)).await;
    assert_eq!(drain(&mut rx).len(), 4);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn behaviour_errors_and_panics_are_counted_and_it_keeps_running() {
    let rt = Runtime::memory().start().await.unwrap();
    let agent = rt.spawn(Flaky { runs: 0 }).await.unwrap();
    sleep(Duration::from_millis(5_500)).await;
    let status = agent.behaviour("flaky").unwrap();
    assert_eq!(status.runs, 3, "{status:?}");
    assert_eq!(status.errors, 2, "{status:?}");
    assert!(status.last_error.unwrap().contains("third run panicked"));
    assert_eq!(status.state, State::Running);
    rt.shutdown().await;
}

#[agent(max_queue = 3)]
struct Bounded {
    release: std::sync::Arc<tokio::sync::Notify>,
    events: Events,
}

#[agent]
impl Bounded {
    #[on_message(type = "CUSTOM")]
    async fn work(&mut self, _body: Raw) {
        self.release.notified().await;
        let _ = self.events.send("done".to_owned());
    }
}

#[tokio::test]
async fn a_full_queue_refuses_sends_naming_it() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let rt = Runtime::memory().start().await.unwrap();
    let agent = rt
        .spawn(Bounded {
            release: release.clone(),
            events: tx,
        })
        .await
        .unwrap();
    let client = rt.client("sender").await.unwrap();
    // Queued, waiting or being handled: three messages fill the queue.
    for _ in 0..3 {
        client.send_raw("bounded", "CUSTOM", "{}").await.unwrap();
    }
    let err = client.send_raw("bounded", "CUSTOM", "{}").await.unwrap_err();
    assert!(
        matches!(&err, munggoggo::Error::QueueFull { queue, max_len: Some(3) } if queue == "bounded"),
        "{err}"
    );
    release.notify_one();
    assert_eq!(common::next(&mut rx).await, "done");
    agent
        .wait_until(|a| a.behaviour("work").unwrap().runs == 1)
        .await
        .unwrap();
    // Room again.
    client.send_raw("bounded", "CUSTOM", "{}").await.unwrap();
    for _ in 0..3 {
        release.notify_one();
        assert_eq!(common::next(&mut rx).await, "done");
    }
    rt.shutdown().await;
}

#[agent]
#[derive(Default)]
struct Broken;

#[agent]
impl Broken {
    #[behaviour(periodic = "1s")]
    async fn always(&mut self) {
        panic!("always broken");
    }

    #[behaviour(oneshot)]
    async fn once(&mut self) -> anyhow::Result<()> {
        anyhow::bail!("failed once")
    }
}

#[tokio::test(start_paused = true)]
async fn a_behaviour_that_keeps_failing_backs_off_and_crashes() {
    // The panic's location in the recorded error comes with the opt-in hook.
    munggoggo::quiet_caught_panics();
    let rt = Runtime::memory().start().await.unwrap();
    let mut options = munggoggo::AgentOptions::new("broken");
    options.failure_policy = munggoggo::FailurePolicy {
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
        crash_after: 4,
    };
    let agent = rt.spawn_with(Broken, options).await.unwrap();
    agent
        .wait_until(|a| a.behaviour("once").is_some_and(|b| b.state == State::Crashed))
        .await
        .unwrap();
    let once = agent.behaviour("once").unwrap();
    assert_eq!((once.runs, once.errors), (0, 1), "{once:?}");

    // Runs at 1 s, then 1 s, 2 s and 4 s of backoff (each after its tick).
    agent
        .wait_until(|a| a.behaviour("always").is_some_and(|b| b.state == State::Crashed))
        .await
        .unwrap();
    let always = agent.behaviour("always").unwrap();
    assert_eq!(always.errors, 4, "{always:?}");
    let error = always.last_error.unwrap();
    assert!(
        error.contains("always broken") && error.contains("behaviours.rs:"),
        "{error}"
    );
    // Crashed means no more runs.
    sleep(Duration::from_secs(60)).await;
    assert_eq!(agent.behaviour("always").unwrap().errors, 4);

    // Starting it again clears the failures.
    assert!(agent.context().start_behaviour("always").await.unwrap());
    agent
        .wait_until(|a| a.behaviour("always").is_some_and(|b| b.errors == 5))
        .await
        .unwrap();
    assert_eq!(agent.behaviour("always").unwrap().state, State::Running);
    rt.shutdown().await;
}
