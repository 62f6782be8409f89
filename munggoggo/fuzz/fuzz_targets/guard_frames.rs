//! Well-formed frame sequences, built from the input with `arbitrary`,
//! whose faults are those the AMQP frame guard repairs: its output must be
//! the repaired sequence (`guard/fuzz.rs`'s `frames`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| munggoggo::bus::amqp::__fuzz::frames(data));
