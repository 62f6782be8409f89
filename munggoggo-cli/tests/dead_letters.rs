//! Dead letters on RabbitMQ: what an agent cannot handle (a body that does
//! not decode, a type nobody handles, a handler error, a panic) lands in
//! `munggoggo.dead-letters` with headers naming agent, handler, error and
//! attempts; `munggoggo dead-letters` lists, shows, replays and purges
//! them. Runs in a vhost of its own (made and deleted with `rabbitmqctl`),
//! so the dead-letter queue holds this test's letters only.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use munggoggo::bus::amqp::AmqpBus;
use munggoggo::bus::dead_letter::DeadLetter;
use munggoggo::prelude::*;
use munggoggo::Runtime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Order {
    n: u32,
}

/// Refuses order 13 while `strict`, panics on order 66.
#[agent]
struct Shop {
    strict: Arc<AtomicBool>,
}

#[agent]
impl Shop {
    #[on_message]
    async fn order(&mut self, order: Order) -> Result<(), String> {
        if order.n == 66 {
            panic!("order 66 is cursed");
        }
        if order.n == 13 && self.strict.load(Ordering::SeqCst) {
            return Err("order 13 refused".to_owned());
        }
        Ok(())
    }
}

fn cli(url: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_munggoggo"))
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

async fn letters(bus: &AmqpBus, count: usize) -> Vec<DeadLetter> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let letters = bus.dead_letters(100).await.expect("dead letters listed");
            if letters.len() >= count {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} dead letters expected"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_become_dead_letters_that_the_cli_lists_replays_and_purges() {
    // A vhost of the test's own: it checks everything in the vhost's
    // dead-letter queue.
    let vhost = match munggoggo_test_support::Vhost::create("dead-letters") {
        Ok(vhost) => vhost,
        Err(why) => return munggoggo_test_support::skip(why),
    };
    let url = vhost.url().to_owned();
    let strict = Arc::new(AtomicBool::new(true));
    let rt = Runtime::from_url(&url)
        .unwrap()
        .agent_as(
            "dl-shop",
            Shop {
                strict: Arc::clone(&strict),
            },
        )
        .start()
        .await
        .expect("the shop starts");
    let client = rt.client("dl-client").await.unwrap();
    client.send("dl-shop", &Order { n: 13 }).await.unwrap();
    client.send("dl-shop", &Order { n: 66 }).await.unwrap();
    client.send_raw("dl-shop", "Order", "not json").await.unwrap();
    client.send_raw("dl-shop", "Refund", "{}").await.unwrap();
    client.send("dl-shop", &Order { n: 1 }).await.unwrap();

    let bus = AmqpBus::connect(&url).await.unwrap();
    let found = letters(&bus, 4).await;
    assert_eq!(found.len(), 4, "{found:#?}");
    for letter in &found {
        assert_eq!(letter.agent, "dl-shop");
        assert_eq!(letter.sender.as_deref(), Some("dl-client"));
        assert_eq!(letter.routing_key, "dl-shop");
        assert_eq!(letter.attempts, 1);
        assert!(letter.dead_at.is_some());
    }
    let by_error = |text: &str| {
        found
            .iter()
            .find(|l| l.error.contains(text))
            .unwrap_or_else(|| panic!("no dead letter for `{text}`: {found:#?}"))
    };
    assert_eq!(by_error("order 13 refused").handler.as_deref(), Some("order"));
    assert_eq!(by_error("order 66 is cursed").handler.as_deref(), Some("order"));
    assert!(by_error("does not decode").body.starts_with(b"not json"));
    let unrouted = by_error("no handler");
    assert_eq!(
        (unrouted.handler.as_deref(), unrouted.kind.as_deref()),
        (None, Some("Refund"))
    );

    // The command line sees the same, in order.
    let (code, text) = cli(&url, &["--json", "dead-letters", "list"]);
    assert_eq!(code, 0, "{text}");
    let listed: Value = serde_json::from_str(text.trim()).expect(&text);
    let rows = listed["dead_letters"].as_array().expect(&text);
    assert_eq!(rows.len(), 4, "{text}");
    let refused = rows
        .iter()
        .find(|r| r["error"].as_str().unwrap().contains("order 13 refused"))
        .expect(&text);
    let number = refused["number"].as_u64().unwrap().to_string();
    let (code, text) = cli(&url, &["dead-letters", "show", &number]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(r#"{"n":13}"#) && text.contains("order 13 refused"),
        "{text}"
    );
    let (code, text) = cli(&url, &["dead-letters", "show", "99"]);
    assert_ne!(code, 0, "{text}");

    // Once the shop accepts order 13, replaying it succeeds: it leaves the
    // queue and does not come back.
    strict.store(false, Ordering::SeqCst);
    let (code, text) = cli(&url, &["dead-letters", "replay", &number]);
    assert_eq!((code, text.trim()), (0, "replayed 1 dead letters"), "{text}");
    let handled = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let agent = rt.agent("dl-shop").unwrap();
            if agent.behaviour("order").is_some_and(|b| b.runs >= 2) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(handled.is_ok(), "the replayed order was not handled");
    let left = bus.dead_letters(100).await.unwrap();
    assert_eq!(left.len(), 3, "{left:#?}");
    assert!(left.iter().all(|l| !l.error.contains("order 13")), "{left:#?}");

    let (code, text) = cli(&url, &["dead-letters", "purge"]);
    assert_eq!((code, text.trim()), (0, "purged 3 dead letters"), "{text}");
    assert!(bus.dead_letters(100).await.unwrap().is_empty());

    client.shutdown().await;
    rt.shutdown().await;
    let _ = bus.close().await;
}
