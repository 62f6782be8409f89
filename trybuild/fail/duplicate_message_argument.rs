// A key given again in a second `#[message]` attribute.
use munggoggo::Message;
use serde::Deserialize;

#[derive(Deserialize, Message)]
#[message(type = "Ping")]
#[message(envelope, type = "Pong")]
struct Ping {
    n: u64,
}

fn main() {}
