//! A replicated agent: `#[agent(replicated)]`, singleton behaviours of
//! every kind, and topic handlers with either delivery.

use munggoggo::__private::{Agent, AgentDefaults, GroupDelivery};
use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Order {
    id: u64,
}

#[agent(replicated, identity = "shop")]
#[derive(Default)]
struct Shop;

#[agent]
impl Shop {
    #[behaviour(periodic = "1h", singleton)]
    async fn compact(&mut self) {}

    #[behaviour(singleton, cyclic)]
    async fn poll(&mut self) -> Next {
        Next::After(std::time::Duration::from_secs(1))
    }

    #[behaviour(oneshot, singleton)]
    async fn migrate(&mut self) {}

    #[behaviour(delay = "5s")]
    async fn later(&mut self) {}

    #[on_message(topic = "orders.#")]
    async fn order(&mut self, order: Order) {
        let _ = order.id;
    }

    #[on_message(topic = "orders.#", delivery = "group")]
    async fn audit(&mut self, order: Order) {
        let _ = order.id;
    }

    #[on_message(delivery = "each_replica", topic = "prices.*")]
    async fn price(&mut self, order: Order) {
        let _ = order.id;
    }

    /// Broadcasts of `Order`: every replica (direct ones: one replica).
    #[on_message(delivery = "each_replica")]
    async fn direct(&mut self, order: Order) {
        let _ = order.id;
    }

    #[on_message(type = "Flush", delivery = "group")]
    async fn flush(&mut self, _raw: Raw) {}
}

fn main() {
    assert!(Shop::options().replicated);
    let spec = Shop::spec();
    let singletons: Vec<bool> = spec.behaviours.iter().map(|b| b.singleton).collect();
    assert_eq!(singletons, [true, true, true, false, false, false, false, false, false]);
    let deliveries: Vec<GroupDelivery> = spec.behaviours[4..].iter().map(|b| b.delivery).collect();
    assert_eq!(
        deliveries,
        [
            GroupDelivery::Default,
            GroupDelivery::Group,
            GroupDelivery::EachReplica,
            GroupDelivery::EachReplica,
            GroupDelivery::Group
        ]
    );
}
