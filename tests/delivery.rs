//! The delivery path under backlog, on both buses: replies and system
//! requests never wait behind user messages, every buffer is bounded, and
//! a send that does not reach a queue surfaces.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{unique, Events};
use munggoggo::bus::Route;
use munggoggo::message::Properties;
use munggoggo::prelude::*;
use munggoggo::{AgentOptions, Error};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify, Semaphore};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Work {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Forward {
    to: String,
    flush: bool,
}

/// Answers `multiply`.
#[agent]
#[derive(Default)]
struct Calc;

#[agent]
impl Calc {
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

/// For every `Work`, calls `calc.multiply`, then sleeps 20 ms.
#[agent]
struct Busy {
    calc: String,
    handled: u64,
}

#[agent]
impl Busy {
    #[on_message]
    async fn work(&mut self, ctx: &Context, work: Work) -> munggoggo::Result<()> {
        let n = i64::try_from(work.n).unwrap_or_default();
        let product: i64 = ctx.call(&self.calc, "multiply", (n, 2)).await?;
        assert_eq!(product, n * 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.handled += 1;
        Ok(())
    }

    #[rpc]
    async fn handled(&mut self) -> u64 {
        self.handled
    }

    #[on_message]
    async fn forward(&mut self, ctx: &Context, msg: Forward) -> munggoggo::Result<()> {
        ctx.send(&msg.to, &Work { n: 1 }).await?;
        if msg.flush {
            ctx.flush().await?;
        }
        Ok(())
    }
}

/// Holds its task in `hold` until released.
#[agent]
struct Holder {
    release: Arc<Notify>,
    events: Events,
}

#[agent]
impl Holder {
    #[rpc]
    async fn hold(&mut self) -> u64 {
        let _ = self.events.send("holding".to_owned());
        self.release.notified().await;
        1
    }

    #[rpc]
    async fn quick(&mut self) -> u64 {
        2
    }
}

/// Counts what it handles, each once the gate lets it.
#[agent]
struct Slow {
    handled: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

#[agent]
impl Slow {
    #[on_message]
    async fn work(&mut self, _: Work) -> anyhow::Result<()> {
        self.gate.acquire().await?.forget();
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Blob {
    n: u64,
    data: String,
}

/// The body of blob `n`: its size cycles across the send buffer's limits
/// (kept in a shared buffer, copied, or given a buffer of its own), its
/// letters depend on `n`, so a body cut or mixed with a neighbour shows.
fn blob(n: u64) -> Blob {
    const SIZES: [usize; 7] = [0, 10, 200, 1_000, 1_100, 4_000, 20_000];
    let letter = char::from(b'a' + (n % 26) as u8);
    Blob {
        n,
        data: std::iter::repeat_n(letter, SIZES[n as usize % SIZES.len()]).collect(),
    }
}

/// Hands every blob it gets, with its message id, to the test.
#[agent]
struct Keeper {
    seen: mpsc::UnboundedSender<(Blob, Option<String>)>,
}

#[agent]
impl Keeper {
    #[on_message]
    async fn blob(&mut self, msg: Envelope<Blob>) {
        let id = msg.received().properties.message_id.as_deref().map(str::to_owned);
        let _ = self.seen.send((msg.into_body(), id));
    }
}

const BACKLOG: u64 = 1_000;

/// Hands every `Work` it handles to the test; drops what it saw already
/// (the last 100 message ids).
#[agent(dedup = 100)]
struct Once {
    seen: mpsc::UnboundedSender<u64>,
}

#[agent]
impl Once {
    #[on_message]
    async fn work(&mut self, work: Work) {
        let _ = self.seen.send(work.n);
    }
}

/// Sends `Work { n }` to `to` with message id `id`.
async fn work_with_id(client: &Context, to: &str, n: u64, id: &str) {
    let mut properties = Properties::new("Work", client.identity());
    properties.message_id = Some(id.into());
    let body = format!(r#"{{"n":{n}}}"#);
    client
        .emit(Route::Direct(to.into()), properties, body.into_bytes().into())
        .await
        .expect("sent");
}

on_both_buses! {
    async fn a_client_pipelines_its_sends_and_learns_of_an_unknown_target_at_the_end(rt) {
        let (seen, mut handled) = mpsc::unbounded_channel();
        let once = rt.spawn_as(unique("pipelined"), Once { seen }).await.unwrap();
        let client = rt.client(unique("pipeliner")).await.unwrap();
        // More than the publish window (256) in one scope.
        const MESSAGES: u64 = 1_000;
        client
            .pipelined(async {
                for n in 0..MESSAGES {
                    client.send(once.identity(), &Work { n }).await?;
                }
                Ok(())
            })
            .await
            .expect("every send confirmed");
        for n in 0..MESSAGES {
            let got = tokio::time::timeout(Duration::from_secs(30), handled.recv())
                .await
                .expect("every message arrives")
                .unwrap();
            assert_eq!(got, n, "in order");
        }
        let nobody = unique("nobody");
        let outcome = client
            .pipelined(async {
                client.send(once.identity(), &Work { n: MESSAGES }).await?;
                client.send(&nobody, &Work { n: 0 }).await?;
                client.send(once.identity(), &Work { n: MESSAGES + 1 }).await
            })
            .await;
        assert!(
            matches!(&outcome, Err(Error::UnknownTarget(to)) if *to == nobody),
            "{outcome:?}"
        );
        client.shutdown().await;
    }

    async fn an_agent_with_dedup_handles_each_message_id_once(rt) {
        let (seen, mut handled) = mpsc::unbounded_channel();
        let once = rt.spawn_as(unique("once"), Once { seen }).await.unwrap();
        let client = rt.client(unique("twice")).await.unwrap();
        let ctx = client.handle().context();
        // Every message twice in a row, more of them than the prefetch; then
        // the first one again, when its id is long forgotten (100 kept).
        const MESSAGES: u64 = 150;
        for n in 0..MESSAGES {
            work_with_id(ctx, once.identity(), n, &format!("id-{n}")).await;
            work_with_id(ctx, once.identity(), n, &format!("id-{n}")).await;
        }
        work_with_id(ctx, once.identity(), 0, "id-0").await;
        let mut got = Vec::new();
        while got.len() < MESSAGES as usize + 1 {
            let n = tokio::time::timeout(Duration::from_secs(30), handled.recv())
                .await
                .expect("every message id arrives once")
                .unwrap();
            got.push(n);
        }
        let mut expected: Vec<u64> = (0..MESSAGES).collect();
        expected.push(0);
        assert_eq!(got, expected, "each id once, in order, and the forgotten one again");
        // Each duplicate is in the agent's trace store, with its reason.
        let dropped = once
            .traces()
            .received(None)
            .into_iter()
            .filter(|e| e.record.reason.as_deref().is_some_and(|r| r.starts_with("duplicate")))
            .count();
        assert_eq!(dropped as u64, MESSAGES, "one trace entry per dropped duplicate");
        client.shutdown().await;
    }

    async fn bodies_of_every_size_arrive_whole_each_with_its_own_message_id(rt) {
        let (seen, mut got) = mpsc::unbounded_channel();
        let keeper = rt.spawn_as(unique("keeper"), Keeper { seen }).await.unwrap();
        let client = rt.client(unique("blobs")).await.unwrap();
        // More than the prefetch and read-ahead, sent from two tasks at once.
        const BLOBS: u64 = 700;
        let senders: Vec<_> = (0..2u64)
            .map(|half| {
                let (ctx, to) = (client.handle().context().clone(), keeper.identity().to_owned());
                tokio::spawn(async move {
                    for n in (half..BLOBS).step_by(2) {
                        ctx.send(&to, &blob(n)).await.unwrap();
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let mut ids = std::collections::HashSet::new();
        let mut numbers = std::collections::HashSet::new();
        for _ in 0..BLOBS {
            let (received, id) = tokio::time::timeout(Duration::from_secs(60), got.recv())
                .await
                .expect("every blob arrives")
                .unwrap();
            assert_eq!(received.data, blob(received.n).data, "blob {} changed on the way", received.n);
            assert!(numbers.insert(received.n), "blob {} twice", received.n);
            let id = id.unwrap_or_else(|| panic!("blob {} has no message id", received.n));
            assert!(
                matches!(id.len(), 16 | 32) && id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "message id {id:?}"
            );
            assert!(ids.insert(id.clone()), "message id {id} given twice");
        }
        // The sender's trace names each message by the id it arrived with.
        let sent: std::collections::HashSet<String> = client
            .handle()
            .traces()
            .sent(None)
            .iter()
            .filter(|e| e.record.properties.kind.as_deref() == Some("Blob"))
            .filter_map(|e| e.record.properties.message_id.as_deref().map(str::to_owned))
            .collect();
        assert!(!sent.is_empty() && sent.is_subset(&ids), "{} traced ids not received", sent.difference(&ids).count());
        client.shutdown().await;
    }

    async fn a_busy_agent_answers_while_its_backlog_waits(rt) {
        let calc = rt.spawn_as(unique("calc"), Calc).await.unwrap();
        let busy = rt
            .spawn_as(unique("busy"), Busy { calc: calc.identity().to_owned(), handled: 0 })
            .await
            .unwrap();
        let client = rt.client(unique("sender")).await.unwrap();
        let to = busy.identity().to_owned();
        for n in 0..BACKLOG {
            client.send(&to, &Work { n }).await.unwrap();
        }
        let half = BACKLOG / 2;
        // Each answer must come while more than half of the backlog waits.
        client.ping(&to).await.unwrap();
        assert!(busy.behaviour("work").unwrap().runs < half, "ping waited for the backlog");
        let behaviours = client.list_behaviours(&to).await.unwrap();
        assert!(behaviours.iter().any(|b| b.ends_with(".work")), "{behaviours:?}");
        assert!(busy.behaviour("work").unwrap().runs < half, "list_behaviours waited for the backlog");
        let handled: u64 = client.call(&to, "handled", ()).await.unwrap();
        assert!(handled < half, "the call ran after {handled} messages");

        // Every call made from the handler succeeds.
        tokio::time::timeout(
            Duration::from_secs(120),
            busy.wait_until(|a| a.behaviour("work").is_some_and(|b| b.runs + b.errors >= BACKLOG)),
        )
        .await
        .expect("the backlog is handled")
        .unwrap();
        let work = busy.behaviour("work").unwrap();
        assert_eq!((work.runs, work.errors), (BACKLOG, 0), "{:?}", work.last_error);
        assert_eq!(client.pending_calls(), 0);
        client.shutdown().await;
    }

    async fn sends_to_unknown_identities_fail(rt) {
        let client = rt.client(unique("sender")).await.unwrap();
        let nobody = unique("nobody");
        let err = client.send(&nobody, &Work { n: 1 }).await.unwrap_err();
        assert!(matches!(&err, Error::UnknownTarget(t) if *t == nobody), "{err}");

        // From a handler the send is pipelined: the run fails once the bus
        // says so, with or without a flush in the handler.
        let agent = rt
            .spawn_as(unique("fwd"), Busy { calc: String::new(), handled: 0 })
            .await
            .unwrap();
        for flush in [false, true] {
            client.send(agent.identity(), &Forward { to: nobody.clone(), flush }).await.unwrap();
        }
        tokio::time::timeout(
            Duration::from_secs(30),
            agent.wait_until(|a| a.behaviour("forward").is_some_and(|b| b.errors == 2)),
        )
        .await
        .expect("both forwards fail")
        .unwrap();
        let forward = agent.behaviour("forward").unwrap();
        assert!(forward.last_error.as_deref().is_some_and(|e| e.contains(&nobody)), "{forward:?}");
        let rejected = agent.traces().filter(None, None, Some("rejected"));
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        client.shutdown().await;
    }

    async fn calls_past_the_call_queue_are_refused_at_once(rt) {
        let (tx, mut events) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let mut options = AgentOptions::new(unique("holder"));
        options.call_queue = 4;
        let holder = rt
            .spawn_with(Holder { release: Arc::clone(&release), events: tx }, options)
            .await
            .unwrap();
        let client = Arc::new(rt.client(unique("caller")).await.unwrap());
        let to = holder.identity().to_owned();
        let first = {
            let (client, to) = (Arc::clone(&client), to.clone());
            tokio::spawn(async move { client.call::<u64>(&to, "hold", ()).await })
        };
        assert_eq!(common::next(&mut events).await, "holding");
        let mut calls = Vec::new();
        for _ in 0..20 {
            let (client, to) = (Arc::clone(&client), to.clone());
            calls.push(tokio::spawn(async move { client.call::<u64>(&to, "quick", ()).await }));
        }
        // While the agent is held, four calls wait and sixteen are refused.
        common::eventually("16 calls refused", || calls.iter().filter(|c| c.is_finished()).count() == 16).await;
        let (ok, refused) = (4, 16);
        let mut outcomes = (0, 0);
        let mut waiting = Vec::new();
        for call in calls {
            if call.is_finished() {
                match call.await.unwrap() {
                    Err(Error::Remote { error, .. }) if error.contains("busy") => outcomes.1 += 1,
                    other => panic!("unexpected early outcome {other:?}"),
                }
            } else {
                waiting.push(call);
            }
        }
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        for call in waiting {
            assert_eq!(call.await.unwrap().unwrap(), 2);
            outcomes.0 += 1;
        }
        assert_eq!(outcomes, (ok, refused));
        client.shutdown().await;
    }

    async fn a_flood_is_handled_or_refused_with_bounded_buffers(rt) {
        let handled = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let mut options = AgentOptions::new(unique("slow"));
        options.max_queue = Some(500);
        options.prefetch = 8;
        options.readahead = 16;
        let slow = rt
            .spawn_with(Slow { handled: Arc::clone(&handled), gate: Arc::clone(&gate) }, options)
            .await
            .unwrap();
        let client = rt.client(unique("flooder")).await.unwrap();
        const FLOOD: usize = 5_000;
        let mut ok = 0;
        let mut full = 0;
        let mut most_buffered = 0;
        for n in 0..FLOOD {
            match client.send(slow.identity(), &Work { n: n as u64 }).await {
                Ok(()) => ok += 1,
                Err(Error::QueueFull { .. }) => full += 1,
                Err(e) => panic!("send {n}: {e}"),
            }
            most_buffered = most_buffered.max(slow.buffered());
        }
        assert_eq!(ok + full, FLOOD);
        assert!(most_buffered <= 8 + 16, "the agent held {most_buffered} deliveries");
        // The queue holds 500; the agent holds at most its window and read-ahead.
        assert!((500..=500 + 8 + 16).contains(&ok), "{ok} accepted, {full} refused");
        gate.add_permits(FLOOD);
        tokio::time::timeout(Duration::from_secs(120), async {
            while handled.load(Ordering::SeqCst) < ok {
                slow.wait_until(|_| handled.load(Ordering::SeqCst) >= ok).await.unwrap();
            }
        })
        .await
        .expect("every accepted message is handled");
        assert_eq!(handled.load(Ordering::SeqCst), ok);
        client.shutdown().await;
    }
}
