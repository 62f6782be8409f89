//! Returned messages on RabbitMQ: a send to an unknown identity fails with
//! `UnknownTarget` and a reply to a caller that left is dropped, without
//! lapin's WARN dump of the returned message (its own test binary, since it
//! installs a global subscriber that records every event).
#![cfg(feature = "amqp")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, unique};
use munggoggo::prelude::*;
use munggoggo::Error;
use serde::{Deserialize, Serialize};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Note {
    text: String,
}

#[agent]
#[derive(Default)]
struct Sleeper;

#[agent]
impl Sleeper {
    #[rpc]
    async fn nap(&mut self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// Records `target level message` of every event.
#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Record {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {} {}", meta.target(), meta.level(), message.0));
    }
}

impl Record {
    fn contains(&self, text: &str) -> bool {
        self.0.lock().unwrap().iter().any(|e| e.contains(text))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_messages_are_handled_without_a_dump() {
    let record = Record::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(record.clone()))
        .expect("the only subscriber of this binary");
    let Some(rt) = common::buses::amqp().await else {
        return;
    };

    let client = rt.client(unique("returns")).await.unwrap();
    let nobody = unique("nobody");
    for i in 0..3 {
        let err = client
            .send(
                &nobody,
                &Note {
                    text: format!("hello {i}"),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::UnknownTarget(t) if *t == nobody), "{err}");
    }

    // A reply to a caller that left comes back from the broker.
    let sleeper = rt.spawn_as(unique("sleeper"), Sleeper).await.unwrap();
    let caller = rt.client(unique("leaver")).await.unwrap();
    let ctx = caller.handle().context().clone();
    let to = sleeper.identity().to_owned();
    let call = tokio::spawn(async move { ctx.call::<u64>(&to, "nap", (300,)).await });
    eventually("the call waits", || caller.pending_calls() == 1).await;
    caller.shutdown().await;
    assert!(matches!(call.await.unwrap(), Err(Error::AgentStopped(_))));
    // The sleeper answers after the caller left: one debug line of its own.
    eventually("the returned reply is noticed", || {
        record.contains("reply not delivered")
    })
    .await;
    assert_eq!(
        client.call::<u64>(sleeper.identity(), "nap", (1,)).await.unwrap(),
        1
    );
    client.shutdown().await;
    rt.shutdown().await;

    let events = record.0.lock().unwrap().clone();
    let dumps: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("lapin::returned_messages") && e.contains("WARN"))
        .collect();
    assert!(dumps.is_empty(), "lapin dumped returned messages: {dumps:?}");
    assert!(!events.is_empty(), "the recorder saw the runtime's events");
}
