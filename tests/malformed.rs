//! Malformed input on RabbitMQ: poison messages that lapin cannot parse
//! (non-UTF-8 `type`, `app_id`, header name and routing key; headers
//! nested 10,000 deep) and 200 generated bad messages, each sent with a
//! raw AMQP client to the agents' identity queues and to the `admin`
//! fanout exchange. Every agent must still answer a ping and receive the
//! next valid message, memory must stay bounded, and the frame guard must
//! have counted its repairs.
//!
//! A poison sent to `admin` reaches every agent on the broker's vhost: the
//! test is the only one of its process, whose vhost is its own (every test
//! process has one, see `munggoggo-test-support`).
#![cfg(feature = "amqp")]

mod common;
#[path = "malformed/raw.rs"]
mod raw;

use std::time::Duration;

use common::{unique, Events};
use munggoggo::bus::amqp::repaired_frames;
use munggoggo::prelude::*;
use munggoggo::AgentHandle;
use raw::RawPublisher;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::block_in_place;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Probe {
    n: u64,
}

/// Reports every probe it gets as `<identity> <n>`.
#[agent]
struct Target {
    events: Events,
}

#[agent]
impl Target {
    #[on_message]
    async fn probe(&mut self, ctx: &Context, probe: Probe) {
        let _ = self.events.send(format!("{} {}", ctx.identity(), probe.n));
    }
}

// Property flag bits of the basic class.
const CONTENT_TYPE: u32 = 15;
const HEADERS: u32 = 13;
const DELIVERY_MODE: u32 = 12;
const TYPE: u32 = 5;
const APP_ID: u32 = 3;

fn short(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

/// A typed value with a 32-bit length (`F`, `A`, `S`).
fn long(kind: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(content.len() as u32).to_be_bytes());
    v.extend_from_slice(content);
    v
}

/// The bytes of a table (length and entries).
fn table(entries: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut content = Vec::new();
    for (name, value) in entries {
        content.extend(short(name));
        content.extend_from_slice(value);
    }
    long(b'F', &content)[1..].to_vec()
}

/// The flag word and properties of a content header, flags by bit.
fn properties(props: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut sorted = props.to_vec();
    sorted.sort_by_key(|(bit, _)| std::cmp::Reverse(*bit));
    let flags: u16 = sorted.iter().map(|(bit, _)| 1u16 << bit).sum();
    let mut v = flags.to_be_bytes().to_vec();
    for (_, value) in sorted {
        v.extend(value);
    }
    v
}

/// Properties as munggoggo sends them, with `kind` as the type, `app_id`
/// as the sender and `headers` as the encoded header table.
fn message(kind: &[u8], app_id: &[u8], headers: Vec<u8>) -> Vec<u8> {
    properties(&[
        (CONTENT_TYPE, short(b"application/json")),
        (HEADERS, headers),
        (DELIVERY_MODE, vec![1]),
        (TYPE, short(kind)),
        (APP_ID, short(app_id)),
    ])
}

/// A header value nested `depth` tables deep.
fn nested(depth: usize) -> Vec<u8> {
    let mut value = long(b'F', &[]);
    for _ in 1..depth {
        value = long(b'F', &table(&[(b"n", value)])[4..]);
    }
    value
}

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Waits for `<identity> <n>` from the agents, skipping other events (the
/// bad messages that still decoded as probes report `n` = 0).
async fn expect(rx: &mut mpsc::UnboundedReceiver<String>, identity: &str, n: u64) {
    let want = format!("{identity} {n}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("`{identity}` did not receive probe {n} within 15 s"))
            .expect("event channel open");
        if event == want {
            return;
        }
    }
}

/// Every agent answers a ping and receives the next valid message.
async fn all_alive(
    client: &munggoggo::runtime::Client,
    agents: &[AgentHandle],
    rx: &mut mpsc::UnboundedReceiver<String>,
    n: u64,
    after: &str,
) {
    for agent in agents {
        let id = agent.identity();
        tokio::time::timeout(Duration::from_secs(15), client.ping(id))
            .await
            .unwrap_or_else(|_| panic!("`{id}` did not answer a ping after {after}"))
            .unwrap_or_else(|e| panic!("`{id}` did not answer a ping after {after}: {e}"));
        client.send(id, &Probe { n }).await.unwrap();
        expect(rx, id, n).await;
    }
}

/// A poison message: what it is, its properties, a routing key for `admin`.
type Poison<'a> = (&'a str, Vec<u8>, Option<&'a [u8]>);

/// Publishes to every agent's identity queue and to `admin`; the broker
/// must accept each.
async fn to_everyone(
    raw: &mut RawPublisher,
    agents: &[AgentHandle],
    what: &str,
    props: &[u8],
    key: Option<&[u8]>,
) {
    let body = br#"{"n":0}"#;
    for agent in agents {
        let id = agent.identity().as_bytes();
        let accepted = block_in_place(|| raw.publish("", id, props, body)).expect("raw publisher");
        accepted.unwrap_or_else(|e| panic!("the broker refused {what}: {e}"));
    }
    let accepted =
        block_in_place(|| raw.publish("admin", key.unwrap_or(b"admin"), props, body)).expect("raw publisher");
    accepted.unwrap_or_else(|e| panic!("the broker refused {what}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_stop_no_agent() {
    // The guard's WARN lines, with `--nocapture`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,munggoggo=info"))
        .with_test_writer()
        .try_init();
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let url = common::buses::test_url();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut agents = Vec::new();
    for name in ["malformed-a", "malformed-b"] {
        let events = tx.clone();
        agents.push(rt.spawn_as(unique(name), Target { events }).await.unwrap());
    }
    let client = rt.client(unique("malformed-client")).await.unwrap();
    let mut raw = block_in_place(|| RawPublisher::connect(&url)).expect("raw AMQP connection");
    all_alive(&client, &agents, &mut rx, 1, "start").await;

    let repaired_before = repaired_frames();
    let no_headers = table(&[]);
    let poison: Vec<Poison<'_>> = vec![
        (
            "a type that is not UTF-8",
            message(b"P\xffng", b"raw", no_headers.clone()),
            None,
        ),
        (
            "an app_id that is not UTF-8",
            message(b"Probe", b"r\xc3w", no_headers.clone()),
            None,
        ),
        (
            "a header name that is not UTF-8",
            message(b"Probe", b"raw", table(&[(b"k\xfe", long(b'S', b"v"))])),
            None,
        ),
        (
            "headers nested 10,000 deep",
            message(b"Probe", b"raw", table(&[(b"deep", nested(10_000))])),
            None,
        ),
        (
            "a routing key that is not UTF-8",
            message(b"Probe", b"raw", no_headers.clone()),
            Some(b"admin\xff"),
        ),
    ];
    let mut n = 1;
    for (what, props, key) in &poison {
        to_everyone(&mut raw, &agents, what, props, *key).await;
        n += 1;
        all_alive(&client, &agents, &mut rx, n, what).await;
    }
    // Per poison, the two agents' identity queues (not for the routing
    // key) and the three fanout queues of this process (agents and client).
    // The fanout copies may still be on their way.
    common::eventually("the guard repaired every poison delivery", || {
        repaired_frames() - repaired_before >= 4 * 5 + 3
    })
    .await;
    // The repaired type reached the agents as bad input: traced, rejected.
    for agent in &agents {
        let traced = agent
            .traces()
            .all(None)
            .iter()
            .any(|e| e.to_wire_json().contains("P?ng"));
        assert!(
            traced,
            "`{}` has no trace of the message of type `P?ng`",
            agent.identity()
        );
    }

    // Generated bad messages: random properties and header tables, with a
    // fixed seed.
    let rss_before = rss();
    let mut rng = Rng(0x6d75_6e67_676f);
    let (mut accepted, mut refused) = (0, 0);
    while accepted < 200 {
        assert!(
            accepted + refused < 400,
            "the broker refused {refused} of the generated messages"
        );
        let props = generate(&mut rng);
        let (exchange, key) = match rng.below(3) {
            0 => ("admin", b"admin".to_vec()),
            i => ("", agents[i - 1].identity().as_bytes().to_vec()),
        };
        match block_in_place(|| raw.publish(exchange, &key, &props, br#"{"n":0}"#)).expect("raw publisher") {
            Ok(()) => accepted += 1,
            Err(reason) => {
                if refused < 8 {
                    eprintln!("refused: {reason}");
                }
                refused += 1
            }
        }
    }
    n += 1;
    all_alive(&client, &agents, &mut rx, n, "200 generated bad messages").await;
    let grown = rss().saturating_sub(rss_before);
    eprintln!(
        "generated: {accepted} accepted by the broker, {refused} refused; RSS grew {} KiB; {} frames repaired in all",
        grown / 1024,
        repaired_frames() - repaired_before
    );
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
    for agent in &agents {
        let traces = agent.traces();
        assert!(traces.len() <= traces.capacity());
    }
    client.shutdown().await;
    rt.shutdown().await;
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes, a quarter of them not ASCII (so mostly not UTF-8).
fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = rng.below(max + 1);
    (0..len)
        .map(|_| {
            if rng.below(4) == 0 {
                0x80 | rng.next() as u8
            } else {
                b' ' + rng.below(95) as u8
            }
        })
        .collect()
}

/// A random typed field value, tables and arrays at most `depth` deep.
fn random_value(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let mut v = match rng.below(if depth > 0 { 9 } else { 7 }) {
        0 => vec![b't', 1],
        1 => vec![b'I', 0, 0, 0, 7],
        2 => vec![b'l', 0, 0, 0, 0, 0, 0, 0, 9],
        3 => long(b'S', &random_bytes(rng, 40)),
        4 => vec![b'V'],
        5 => vec![b'd', 0x40, 9, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18],
        6 => vec![b'D', 2, 0, 0, 1, 0],
        7 => long(b'F', &random_table(rng, depth - 1)[4..]),
        _ => {
            let mut items = Vec::new();
            for _ in 0..rng.below(3) {
                items.extend(random_value(rng, depth - 1));
            }
            long(b'A', &items)
        }
    };
    if rng.below(10) == 0 {
        // Now and then a value nested far too deep for lapin's parser.
        v = nested(1 + rng.below(3000));
    }
    v
}

/// A random header table (length and entries) with names of random bytes.
fn random_table(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.below(4))
        .map(|_| (random_bytes(rng, 20), random_value(rng, depth)))
        .collect();
    let borrowed: Vec<(&[u8], Vec<u8>)> = entries.iter().map(|(n, v)| (n.as_slice(), v.clone())).collect();
    table(&borrowed)
}

/// Properties the broker accepts (well-formed encodings; no `user_id` or
/// `expiration`, which RabbitMQ checks) but with random contents: short
/// strings and header names of random bytes, random header tables, deep
/// nesting now and then, random subsets of properties.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut props = Vec::new();
    for bit in [15, 14, 13, 12, 11, 10, 9, 7, 6, 5, 3, 2] {
        if rng.below(2) == 0 {
            continue;
        }
        let value = match bit {
            13 => random_table(rng, 3),
            12 | 11 => vec![1],
            6 => 1_700_000_000u64.to_be_bytes().to_vec(),
            _ => short(&random_bytes(rng, 30)),
        };
        props.push((bit, value));
    }
    properties(&props)
}
