use munggoggo::prelude::*;

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Order {
    id: u64,
}

#[agent(replicated)]
#[derive(Default)]
struct Shop;

#[agent]
impl Shop {
    #[on_message(topic = "orders.#", delivery = "everyone")]
    async fn order(&mut self, _order: Order) {}

    #[on_message(fallback, delivery = "group")]
    async fn other(&mut self, _msg: Raw) {}

    #[behaviour(periodic = "1s", singleton = true)]
    async fn tick(&mut self) {}
}

fn main() {}
