//! What a user sees when something is wrong: a second process claiming an
//! identity leaves its holder alone, a missing vhost is one clear error,
//! and a topic pattern that misses a publication by `*` vs `#` gets a
//! hint. Its own test binary, since it installs a global subscriber that
//! records every event.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::{next, unique, Events};
use munggoggo::prelude::*;
use munggoggo::State;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

/// One recorded event: target, level, message and the other fields.
#[derive(Debug, Clone)]
struct Line {
    target: String,
    level: tracing::Level,
    message: String,
    fields: Vec<(String, String)>,
}

impl Line {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every event of this binary (munggoggo's down to debug level, the rest
/// from warn on).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Line>>>);

impl Log {
    /// The recorder, installed as the global subscriber on first use.
    fn get() -> Log {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Log::default();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("warn,munggoggo=debug"))
                .with(log.clone());
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
            log
        })
        .clone()
    }

    fn lines(&self, keep: impl Fn(&Line) -> bool) -> Vec<Line> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| keep(l))
            .cloned()
            .collect()
    }
}

struct Fields<'a>(&'a mut Line);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.push((field.name().to_owned(), value));
        }
    }
}

impl<S: Subscriber> Layer<S> for Log {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let meta = event.metadata();
        let mut line = Line {
            target: meta.target().to_owned(),
            level: *meta.level(),
            message: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Note {
    text: String,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Reading {
    celsius: f64,
}

/// Reports its notes, and the readings of its topic handler.
#[agent]
struct Listener {
    events: Events,
}

#[agent]
impl Listener {
    #[on_message]
    async fn note(&mut self, note: Note) {
        let _ = self.events.send(note.text);
    }

    #[on_message(topic = "sensors.*")]
    async fn readings(&mut self, msg: Envelope<Reading>) {
        let _ = self
            .events
            .send(format!("reading {} {}", msg.routing_key(), msg.celsius));
    }
}

/// A second process (here: a second runtime, with connections of its
/// own) that fails to start an agent with an identity in use must not
/// touch the holder's queues: deleting them would cancel its consumers,
/// and the holder would log that it rebuilds its channel.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_claiming_an_identity_leaves_the_holder_alone() {
    use munggoggo::Error;

    let log = Log::get();
    let Some(first) = common::buses::amqp().await else {
        return;
    };
    let Some(second) = common::buses::amqp().await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = unique("holder");
    let holder = first
        .spawn_as(id.clone(), Listener { events: tx.clone() })
        .await
        .unwrap();

    let err = second
        .spawn_as(id.clone(), Listener { events: tx })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::IdentityInUse(taken) if *taken == id),
        "{err}"
    );

    // The control queue: a request only a Rust agent's control queue
    // takes. Had the newcomer deleted it, the request would find no queue,
    // or the one the holder declares again after it logged the rebuild.
    let client = first.client(unique("asker")).await.unwrap();
    let described = client.handle().context().describe_agent(&id).await;
    assert!(described.is_ok(), "{described:?}");
    // The identity queue and the fanout queue.
    client
        .send(
            &id,
            &Note {
                text: "direct".into(),
            },
        )
        .await
        .unwrap();
    // (The topic test of this binary publishes readings the holder's
    // topic handler takes too: they are not what this test looks for.)
    let mut note = next(&mut rx).await;
    while note.starts_with("reading ") {
        note = next(&mut rx).await;
    }
    assert_eq!(note, "direct");
    let shout = format!("broadcast for {id}");
    client
        .handle()
        .context()
        .broadcast(&Note { text: shout.clone() })
        .await
        .unwrap();
    // (Other tests on the broker may broadcast notes too.)
    while next(&mut rx).await != shout {}
    assert_eq!(holder.state(), State::Running);

    let disturbed = log.lines(|l| {
        l.field("agent") == Some(id.as_str())
            && ["rebuild", "cancelled", "consumer error"]
                .iter()
                .any(|word| l.message.contains(word))
    });
    assert!(disturbed.is_empty(), "the holder was disturbed: {disturbed:#?}");
    client.shutdown().await;
    second.shutdown().await;
    first.shutdown().await;
}

/// `url` with `path` in place of its path: `amqp://guest:guest@h:5672` + `/x`.
#[cfg(feature = "amqp")]
fn with_vhost_path(url: &str, path: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}{path}{query}")
}

/// A vhost the broker does not have is one error naming it, with a hint;
/// lapin's own ERROR lines about the refused connection do not show.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_vhost_is_one_error_with_a_hint() {
    let log = Log::get();
    // Only with a broker: the tests' own URL connects.
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    rt.shutdown().await;
    let url = common::buses::test_url();

    // `/` for the vhost `/`: the path `/` names the empty vhost.
    let slash = with_vhost_path(&url, "/");
    let err = munggoggo::Runtime::from_url(&slash)
        .unwrap()
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("vhost `` (empty"), "{err}");
    assert!(
        err.contains("the vhost `/` is written `%2f` in an AMQP URL"),
        "{err}"
    );
    assert!(!err.contains("NOT_ALLOWED"), "one clear error: {err}");

    let missing = unique("no-such-vhost");
    let err = munggoggo::Runtime::from_url(&with_vhost_path(&url, &format!("/{missing}")))
        .unwrap()
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "vhost `{missing}` not found on the broker (rabbitmqctl add_vhost {missing})"
        )),
        "{err}"
    );
    assert!(!err.contains("%2f"), "{err}");

    // lapin logs the refusal from its I/O thread before the error is
    // returned (and more lines from its tasks): none of them may show.
    let lapin = log.lines(|l| {
        l.target.starts_with("lapin")
            && l.level <= tracing::Level::WARN
            && (l.message.contains("backoff") || format!("{l:?}").contains("NOT_ALLOWED"))
    });
    assert!(lapin.is_empty(), "lapin's lines: {lapin:#?}");
}

/// `url` with these addresses in place of its host and port.
#[cfg(feature = "amqp")]
fn with_addresses(url: &str, addresses: &[String]) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (userinfo, after) = rest.split_once('@').expect("a URL with credentials");
    let tail = &after[after.find(['/', '?']).unwrap_or(after.len())..];
    format!("{scheme}://{userinfo}@{}{tail}", addresses.join(","))
}

/// A loopback address where nothing listens now.
#[cfg(feature = "amqp")]
fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address");
    format!("127.0.0.1:{}", address.port())
}

/// A URL naming several nodes: the first that answers is taken (the dead
/// ones before it are passed over); when none answers, start fails with one
/// error that names every address and why, without the password.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_of_several_nodes_takes_the_first_alive_or_names_every_failure() {
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    rt.shutdown().await;
    let url = common::buses::test_url();
    let live = url
        .split_once('@')
        .map(|(_, rest)| rest[..rest.find(['/', '?']).unwrap_or(rest.len())].to_owned())
        .expect("the broker's address");
    let (dead1, dead2) = (dead_address(), dead_address());

    let three = with_addresses(&url, &[dead1.clone(), dead2.clone(), live.clone()]);
    let (events, mut rx) = mpsc::unbounded_channel();
    let listener = unique("nodes-listener");
    let rt = munggoggo::Runtime::from_url(&three)
        .unwrap()
        .agent_as(listener.clone(), Listener { events })
        .start()
        .await
        .expect("the third node takes the connection");
    let client = rt.client(unique("nodes-client")).await.unwrap();
    client
        .send(
            &listener,
            &Note {
                text: "through the third node".into(),
            },
        )
        .await
        .expect("a send through the third node");
    // (The other tests of this binary broadcast notes too.)
    while next(&mut rx).await != "through the third node" {}
    rt.shutdown().await;
    // Tried in a random order (`shuffle=true`): the live node takes it all the same.
    let shuffled = format!(
        "{three}{}shuffle=true",
        if three.contains('?') { '&' } else { '?' }
    );
    for _ in 0..3 {
        let rt = munggoggo::Runtime::from_url(&shuffled)
            .unwrap()
            .start()
            .await
            .expect("the live node takes the connection, in any order");
        rt.shutdown().await;
    }

    let none = with_addresses(&url, &[dead1.clone(), dead2.clone()]).replace("guest:guest@", "guest:sesame@");
    let err = munggoggo::Runtime::from_url(&none)
        .unwrap()
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("any of the 2 broker nodes"), "{err}");
    for address in [&dead1, &dead2] {
        assert!(
            err.contains(&format!("cannot reach the broker at `{address}`: ")),
            "{err}"
        );
    }
    assert!(!err.contains("sesame"), "the password shows: {err}");
}

/// Publishes a reading on `topic` from `client`.
async fn publish(client: &munggoggo::runtime::Client, topic: &str) {
    client
        .handle()
        .context()
        .publish(topic, &Reading { celsius: 21.5 })
        .await
        .unwrap();
}

/// The hints at the topic `key` published by `publisher`.
fn hints(log: &Log, key: &str, publisher: &str) -> Vec<Line> {
    log.lines(|l| {
        l.field("routing_key") == Some(key)
            && l.field("publisher") == Some(publisher)
            && l.message.contains("misses it by depth")
    })
}

on_both_buses! {
    async fn a_topic_pattern_that_misses_by_depth_gets_a_hint(rt) {
        let log = Log::get();
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Subscribed to `sensors.*` once spawned. (Each test has a bus of
        // its own, and each bus hints once per key.)
        let _listener = rt.spawn_as(unique("listener"), Listener { events: tx }).await.unwrap();
        let client = rt.client(unique("publisher")).await.unwrap();
        let me = client.handle().identity().to_owned();

        publish(&client, "sensors.kitchen").await;
        // (Other tests on the broker may publish readings too.)
        while next(&mut rx).await != "reading sensors.kitchen 21.5" {}
        assert!(hints(&log, "sensors.kitchen", &me).is_empty(), "it matches");

        publish(&client, "sensors.kitchen.temp").await;
        publish(&client, "sensors.kitchen.temp").await;
        let hinted = hints(&log, "sensors.kitchen.temp", &me);
        assert_eq!(hinted.len(), 1, "once per key: {hinted:#?}");
        let hint = &hinted[0];
        assert_eq!(hint.level, tracing::Level::INFO);
        assert_eq!(hint.field("binding_key"), Some("sensors.*"));
        let text = &hint.message;
        assert!(text.contains("`sensors.*` misses it by depth"), "{text}");
        assert!(text.contains("`*` matches exactly one word, `#` any number"), "{text}");
        assert!(text.contains("(`sensors.#` would match)"), "{text}");

        // No pattern comes near: no hint.
        publish(&client, "weather.kitchen.temp").await;
        assert!(hints(&log, "weather.kitchen.temp", &me).is_empty());
        client.shutdown().await;
    }
}

/// How many connections the test broker has to vhost `vhost`.
#[cfg(feature = "amqp")]
fn connections_to(vhost: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "vhost", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.trim() == vhost)
        .count()
}

/// A runtime that shuts down closes its two connections: a process that
/// starts and stops runtimes does not pile them up on the broker.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_shuts_down_closes_its_connections() {
    let vhost = match munggoggo_test_support::Vhost::create("connections") {
        Ok(vhost) => vhost,
        Err(why) => return munggoggo_test_support::skip(why),
    };
    for round in 1..=3 {
        let rt = munggoggo::Runtime::from_url(vhost.url())
            .unwrap()
            .start()
            .await
            .unwrap();
        let client = rt.client(unique("connections")).await.unwrap();
        client.send_raw(client.identity(), "Note", "{}").await.unwrap();
        assert_eq!(
            connections_to(vhost.name()),
            2,
            "round {round}: the runtime's two connections"
        );
        rt.shutdown().await;
        let mut left = connections_to(vhost.name());
        // The broker lists a closed connection for a moment longer.
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            left = connections_to(vhost.name());
        }
        assert_eq!(left, 0, "round {round}: connections left after shutdown");
        assert!(
            rt.spawn_as(unique("late"), Late).await.is_err(),
            "a runtime that was shut down starts no more agents"
        );
    }
}

#[cfg(feature = "amqp")]
#[agent]
#[derive(Default)]
struct Late;

#[cfg(feature = "amqp")]
#[agent]
impl Late {}
