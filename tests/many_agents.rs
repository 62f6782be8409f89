//! Many agents in one process on RabbitMQ. They share the connections'
//! channels, so a broker's channel limit does not cap them: on a private
//! node allowing 64 channels per connection, 500 agents start, each
//! handles a message and answers a ping, and when they stop together the
//! broker holds no queue of theirs, except the identity queues of agents
//! stopped with a backlog, which keep exactly what was not handled. And an
//! agent whose handler hangs with a backlog holds back no other agent on
//! its shared channel.
#![cfg(feature = "amqp")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{unique, until};
use futures_util::StreamExt;
use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Job {
    n: u64,
}

/// Jobs handled, per agent.
type Handled = Arc<Mutex<HashMap<String, u64>>>;

#[agent]
struct Member {
    handled: Handled,
    total: Arc<AtomicU64>,
    /// How long a job takes (a backlog builds up behind a slow member).
    pace: Duration,
}

#[agent]
impl Member {
    #[on_message]
    async fn job(&mut self, ctx: &Context, _job: Job) {
        if !self.pace.is_zero() {
            tokio::time::sleep(self.pace).await;
        }
        *self
            .handled
            .lock()
            .unwrap()
            .entry(ctx.identity().to_owned())
            .or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
    }

    #[behaviour(periodic = "1s")]
    async fn tick(&mut self) {}
}

/// Agents of the test.
const AGENTS: usize = 500;
/// Of them, the slow ones, stopped with a backlog.
const SLOW: usize = 5;
/// Jobs sent to each slow one: three times its prefetch.
const BACKLOG: u64 = 3 * munggoggo::agent::DEFAULT_PREFETCH as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_agents_share_64_channels_and_leave_only_their_backlog() {
    let Some(node) = common::node::Node::start_or_skip_with("many-agents", None, "channel_max = 64\n") else {
        return;
    };
    let rt = munggoggo::Runtime::from_url(&node.url())
        .unwrap()
        .start()
        .await
        .unwrap();
    let handled: Handled = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("member-{i}")).collect();
    let started = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let member = Member {
                handled: Arc::clone(&handled),
                total: Arc::clone(&total),
                pace: if i < SLOW {
                    Duration::from_millis(20)
                } else {
                    Duration::ZERO
                },
            };
            rt.spawn_as(id.clone(), member)
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for agent in started {
        agent.expect("every agent starts within the channel limit");
    }

    // Every agent consumes and answers.
    let client = rt.client("producer").await.unwrap();
    for (n, id) in ids.iter().enumerate() {
        client.send(id, &Job { n: n as u64 }).await.unwrap();
    }
    for chunk in ids.chunks(50) {
        for answer in futures_util::future::join_all(chunk.iter().map(|id| client.ping(id))).await {
            answer.expect("every agent answers its ping");
        }
    }
    until("every agent handled its job", Duration::from_secs(60), || {
        total.load(Ordering::SeqCst) == AGENTS as u64
    })
    .await;

    // The slow ones get more than they read ahead, then all stop together.
    for id in &ids[..SLOW] {
        for n in 0..BACKLOG {
            client.send(id, &Job { n }).await.unwrap();
        }
    }
    until("the slow agents are busy", Duration::from_secs(30), || {
        let handled = handled.lock().unwrap();
        ids[..SLOW]
            .iter()
            .all(|id| handled.get(id).copied().unwrap_or(0) > 1)
    })
    .await;
    client.shutdown().await;
    rt.shutdown().await;

    let left: HashMap<String, u64> = node
        .queues()
        .into_iter()
        .filter(|(name, _)| name != "munggoggo.dead-letters")
        .collect();
    let handled = handled.lock().unwrap();
    for id in &ids[..SLOW] {
        let sent = BACKLOG + 1;
        let done = handled.get(id).copied().unwrap_or(0);
        let queued = left.get(id).copied().unwrap_or(0);
        // Nothing lost; at most the job in hand when it stopped comes again.
        assert!(
            done + queued >= sent && done + queued <= sent + 1,
            "{id}: {done} handled and {queued} queued of {sent} sent"
        );
        assert!(queued > 0, "{id} stopped with a backlog");
    }
    let mut strays: Vec<&String> = left.keys().filter(|name| !ids[..SLOW].contains(name)).collect();
    strays.sort();
    assert!(strays.is_empty(), "queues left behind: {strays:?}");
}

/// Handles jobs once its gate opens.
#[agent]
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    total: Arc<AtomicU64>,
}

#[agent]
impl Gated {
    #[on_message]
    async fn job(&mut self, _job: Job) {
        let _pass = self.gate.acquire().await.expect("the gate stays");
        self.total.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_agent_holds_back_no_neighbour_on_its_shared_channel() {
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    // Started one after the other, the two share a consuming channel and a
    // publish channel (32 units and agents each by default).
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let stuck_total = Arc::new(AtomicU64::new(0));
    let stuck = unique("stuck");
    rt.spawn_as(
        stuck.clone(),
        Gated {
            gate: Arc::clone(&gate),
            total: Arc::clone(&stuck_total),
        },
    )
    .await
    .unwrap();
    let handled: Handled = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let neighbour = unique("neighbour");
    rt.spawn_as(
        neighbour.clone(),
        Member {
            handled: Arc::clone(&handled),
            total: Arc::clone(&total),
            pace: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let client = rt.client(unique("producer")).await.unwrap();
    // More than the stuck agent reads ahead: its prefetch fills, the rest waits.
    for n in 0..BACKLOG {
        client.send(&stuck, &Job { n }).await.unwrap();
    }
    for n in 0..BACKLOG {
        client.send(&neighbour, &Job { n }).await.unwrap();
    }
    until("the neighbour handled every job", Duration::from_secs(30), || {
        total.load(Ordering::SeqCst) == BACKLOG
    })
    .await;
    client.ping(&neighbour).await.expect("the neighbour answers");
    client
        .ping(&stuck)
        .await
        .expect("the stuck agent's control lane answers");
    assert_eq!(
        stuck_total.load(Ordering::SeqCst),
        0,
        "the stuck agent's gate is shut"
    );
    gate.add_permits(usize::MAX >> 4);
    until("the stuck agent catches up", Duration::from_secs(30), || {
        stuck_total.load(Ordering::SeqCst) == BACKLOG
    })
    .await;
    client.shutdown().await;
    rt.shutdown().await;
}
