//! munggoggo's macros used through a renamed dependency and a re-export.
//!
//! This crate depends on munggoggo as `mg` and re-exports it as
//! [`facade::runtime`], the way a crate that wraps munggoggo hands it to
//! its users; `::munggoggo` names nothing here. The test in
//! `tests/renamed.rs` points the macros at both paths with `crate = ...`
//! and runs the agent on the embedded bus.

/// munggoggo under the name a wrapping crate gives it.
pub mod facade {
    pub use mg as runtime;
}
