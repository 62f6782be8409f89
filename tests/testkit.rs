//! Testing agents the way a user would: the embedded bus, tokio's paused
//! clock, a client to send and call, and `wait_until` instead of sleeps.

use munggoggo::prelude::*;
use munggoggo::Runtime;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Order {
    item: String,
}

#[agent(identity = "shop", peer_interval = "10s")]
#[derive(Default)]
struct Shop {
    orders: Vec<String>,
}

#[agent]
impl Shop {
    #[on_message]
    async fn order(&mut self, order: Order) {
        self.orders.push(order.item);
    }

    #[rpc]
    async fn count(&mut self) -> usize {
        self.orders.len()
    }

    #[behaviour(periodic = "1m")]
    async fn restock(&mut self) {}
}

#[tokio::test(start_paused = true)]
async fn a_user_tests_an_agent_without_sleeps() {
    let rt = Runtime::memory().start().await.unwrap();
    let shop = rt.spawn(Shop::default()).await.unwrap();
    let client = rt.client("tester").await.unwrap();

    for item in ["tea", "cake"] {
        client.send("shop", &Order { item: item.into() }).await.unwrap();
    }
    shop.wait_until(|s| s.behaviour("order").is_some_and(|b| b.runs == 2))
        .await
        .unwrap();
    assert_eq!(client.call::<usize>("shop", "count", ()).await.unwrap(), 2);

    // An hour of virtual time passes at once.
    shop.wait_until(|s| s.behaviour("restock").is_some_and(|b| b.runs == 60))
        .await
        .unwrap();

    // A second agent becomes visible to the first through the keepalive.
    let other = rt.spawn_as("other-shop", Shop::default()).await.unwrap();
    shop.wait_until(|s| s.context().peers().iter().any(|p| p.status.name == "other-shop"))
        .await
        .unwrap();

    other.shutdown().await;
    let err = other.wait_until(|_| false).await.unwrap_err();
    assert!(err.to_string().contains("other-shop"));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn peers_that_miss_their_keepalives_expire() {
    let rt = Runtime::memory().start().await.unwrap();
    let shop = rt.spawn(Shop::default()).await.unwrap();
    let other = rt.spawn_as("other-shop", Shop::default()).await.unwrap();
    shop.wait_until(|s| s.context().peers().iter().any(|p| p.status.name == "other-shop"))
        .await
        .unwrap();
    other.shutdown().await;
    // Three missed 10 s intervals later it is gone; the agent still lists itself.
    tokio::time::sleep(std::time::Duration::from_secs(45)).await;
    let names: Vec<String> = shop
        .context()
        .peers()
        .into_iter()
        .map(|p| p.status.name)
        .collect();
    assert_eq!(names, ["shop"]);
    rt.shutdown().await;
}
