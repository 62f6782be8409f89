//! Arbitrary bytes as the stream from the broker through the AMQP frame
//! guard; the invariants are those of `guard/fuzz.rs`'s `bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| munggoggo::bus::amqp::__fuzz::bytes(data));
