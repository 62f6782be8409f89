//! Peer discovery costs O(N) per round: the agents of one runtime know each
//! other without pongs, while a ping from elsewhere still gets one
//! `PongControl` from each agent (as a munggoggo 0.4 peer expects).

mod common;

use std::time::Duration;

use common::unique;
use munggoggo::bus::memory::MemoryBus;
use munggoggo::prelude::*;
use munggoggo::trace::TraceEntry;
use munggoggo::Runtime;

#[agent]
#[derive(Default)]
struct Quiet;

#[agent]
impl Quiet {
    #[on_message(type = "Note")]
    async fn note(&mut self, _note: Raw) {}
}

/// Waits (10 s at most) until the agent's condition holds.
async fn until(
    agent: &munggoggo::AgentHandle,
    what: &str,
    condition: impl FnMut(&munggoggo::AgentHandle) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(10), agent.wait_until(condition))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
        .unwrap();
}

/// The CONTROL messages of this c_type that an agent sent.
fn sent_control(entries: &[TraceEntry], c_type: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            e.record.outgoing
                && e.record.properties.kind.as_deref() == Some("CONTROL")
                && String::from_utf8_lossy(&e.record.body).contains(c_type)
        })
        .count()
}

#[tokio::test]
async fn agents_of_one_runtime_list_each_other_without_pongs() {
    let rt = Runtime::memory().start().await.unwrap();
    let mut agents = Vec::new();
    for _ in 0..20 {
        agents.push(rt.spawn_as(unique("neighbour"), Quiet).await.unwrap());
    }
    let mut names: Vec<String> = agents.iter().map(|a| a.identity().to_owned()).collect();
    names.sort();
    for agent in &agents {
        let listed: Vec<String> = agent
            .context()
            .peers()
            .into_iter()
            .map(|p| p.status.name)
            .collect();
        assert_eq!(listed, names, "every agent lists all of its runtime at once");
    }
    // A ping now reaches every agent, and a note broadcast after it
    // follows it through the same queue, so once every agent has handled
    // the note, it has handled the ping. Neither answers nor traces it:
    // a neighbour's ping carries nothing the runtime does not know.
    let pinger = &agents[0];
    pinger.context().ping_peers().await.unwrap();
    pinger
        .context()
        .broadcast_raw("Note", &b"after the ping"[..])
        .await
        .unwrap();
    for agent in &agents {
        until(agent, "the note after the ping handled", |a| {
            a.behaviour("note").is_some_and(|b| b.runs == 1)
        })
        .await;
        let seen = agent.traces().all(None);
        let pings = seen
            .iter()
            .filter(|e| !e.record.outgoing && String::from_utf8_lossy(&e.record.body).contains("PingControl"))
            .count();
        assert_eq!(pings, 0, "{} traced a neighbour's ping", agent.identity());
        assert_eq!(
            sent_control(&seen, "PongControl"),
            0,
            "{} answered a neighbour",
            agent.identity()
        );
    }
    assert!(
        sent_control(&pinger.traces().all(None), "PingControl") >= 1,
        "the ping is traced as sent"
    );
    // A stopped agent leaves the listing at once.
    let gone = agents.pop().unwrap();
    gone.shutdown().await;
    let listed = agents[0].context().peers();
    assert!(listed.iter().all(|p| p.status.name != gone.identity()));
    assert_eq!(listed.len(), agents.len());
    rt.shutdown().await;
}

#[tokio::test]
async fn a_ping_from_another_runtime_gets_one_pong_per_agent() {
    let bus = MemoryBus::new();
    let here = Runtime::with_bus(bus.clone()).start().await.unwrap();
    let there = Runtime::with_bus(bus).start().await.unwrap();
    let mut agents = Vec::new();
    for _ in 0..5 {
        agents.push(here.spawn_as(unique("answers"), Quiet).await.unwrap());
    }
    let observer = there.client(unique("observer")).await.unwrap();
    observer.ping_peers().await.unwrap();
    for agent in &agents {
        until(agent, "one pong sent", |a| {
            sent_control(&a.traces().all(None), "PongControl") == 1
        })
        .await;
        common::eventually("the observer lists the agent", || {
            observer.peers().iter().any(|p| p.status.name == agent.identity())
        })
        .await;
    }
    here.shutdown().await;
    there.shutdown().await;
}
