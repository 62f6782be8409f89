//! The benchmark program of munggoggo lives in `bench/main.rs` and
//! `wire_mode.rs` (run them with `cargo bench -p munggoggo-bench`); this
//! library is empty.
