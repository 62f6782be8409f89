//! The macros under full paths, without the prelude, in a crate that
//! forbids unsafe code, denies warnings and shadows `Result`, `Option`,
//! `Box`, `Ok` and `Some`.

#![forbid(unsafe_code)]
#![deny(warnings, missing_docs, rust_2018_idioms, unused_qualifications)]
#![allow(non_snake_case)]

#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
enum Never {}
#[allow(dead_code)]
type Result = ();
#[allow(dead_code)]
fn Ok() {}
#[allow(dead_code)]
fn Some() {}
mod core {}
mod std {}

/// A message.
#[derive(serde::Deserialize, munggoggo::Message)]
pub struct Note {
    text: ::std::string::String,
}

/// An agent.
#[munggoggo::agent(peer_interval = "1s")]
#[derive(Default)]
pub struct Quiet;

#[munggoggo::agent]
impl Quiet {
    #[munggoggo::setup]
    async fn start(&mut self, ctx: &munggoggo::Context) {
        let _ = ctx;
    }

    #[munggoggo::on_message]
    async fn note(&mut self, note: munggoggo::Envelope<Note>) {
        let _ = &note.text;
    }

    #[munggoggo::rpc]
    async fn echo(&mut self, text: ::std::string::String) -> ::std::string::String {
        text
    }
}

fn main() {}
