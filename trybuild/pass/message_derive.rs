//! `#[derive(Message)]`: the default name, overrides, the 0.4 envelope and
//! generic types.

use std::marker::PhantomData;

use munggoggo::Message;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct Ping {
    n: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[message(type = "DemoData")]
struct Demo {
    value: String,
}

#[derive(Serialize, Deserialize, Message)]
#[message(envelope)]
#[message(type = "Legacy")]
struct Old;

#[derive(Serialize, Deserialize, Message)]
#[message(type = "Batch", envelope)]
struct Batch<T>
where
    T: Clone,
{
    items: Vec<T>,
}

#[derive(Message)]
enum Command {
    Start,
    Stop,
}

#[derive(Message)]
struct r#Raw<'a, T: ?Sized> {
    marker: PhantomData<&'a T>,
}

/// `Rpc` differs from the reserved `RPC`.
#[derive(Message)]
struct Rpc;

fn main() {
    assert_eq!(<Ping as Message>::TYPE, "Ping");
    assert!(!<Ping as Message>::ENVELOPE);
    assert_eq!(<Demo as Message>::TYPE, "DemoData");
    assert_eq!(<Old as Message>::TYPE, "Legacy");
    assert!(<Old as Message>::ENVELOPE);
    assert_eq!(<Batch<u8> as Message>::TYPE, "Batch");
    assert!(<Batch<String> as Message>::ENVELOPE);
    assert_eq!(<Command as Message>::TYPE, "Command");
    assert_eq!(<r#Raw<'static, str> as Message>::TYPE, "Raw");
    assert_eq!(<Rpc as Message>::TYPE, "Rpc");
    let _ = (Command::Start, Command::Stop);
}
