use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
#[message(type = "RPC")]
struct Request {
    method: String,
}

fn main() {}
