//! The historian: a munggoggo agent that stores the network's messages in
//! SQLite (bundled, no system library) and answers queries about them.
//!
//! What it stores comes from its configuration ([`HistorianConfig`]): topic
//! messages matching `topics`, messages sent to it directly (`direct`) and
//! broadcasts (`fanout`). One writer thread owns the database ([`Store`]);
//! the handlers hand it records through a bounded channel and it writes
//! whatever has queued up in one transaction, so a burst costs one commit,
//! not one per message. Queries go through the same thread, after every
//! record received before them, so a query sees every message the
//! historian has taken.
//!
//! Its `#[rpc]` methods `count`, `list` and `count_by` answer over the bus
//! (from agents, the `munggoggo` command line or the dashboard); [`Store`]
//! reads a database file directly.
//!
//! ```no_run
//! use munggoggo_historian::{Historian, HistorianConfig};
//!
//! # async fn f() -> munggoggo::Result<()> {
//! let config = HistorianConfig {
//!     database: "historian.db".into(),
//!     topics: vec!["sensors.#".to_owned()],
//!     ..HistorianConfig::default()
//! };
//! munggoggo::Runtime::from_env()?
//!     .agent(Historian::new(config))
//!     .run_until_signal()
//!     .await
//! # }
//! ```
//!
//! Started by name from a launcher (`run historian --config historian.toml`),
//! it reads its configuration from the file's `[historian]` table; the
//! example `historian` of the workspace (`examples/historian.rs`) is such a
//! launcher, with a `query` command that reads the database file.

mod agent;
mod config;
mod record;
mod store;

pub use agent::Historian;
pub use config::HistorianConfig;
pub use record::{Filter, GroupBy, Record};
pub use store::Store;

/// The SQLite binding the [`Store`] is built on (its `Connection` in
/// [`Store::query`]).
pub use rusqlite;
