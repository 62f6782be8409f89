//! [`HistorianConfig`]: what the historian stores and where (its agent's
//! configuration, read from the `[historian]` table of a config file).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the historian stores and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistorianConfig {
    /// The SQLite database file (created when missing).
    pub database: PathBuf,
    /// Binding keys of the topic messages to store (`[]`: none).
    pub topics: Vec<String>,
    /// Store messages sent to the historian's identity.
    pub direct: bool,
    /// Store broadcasts (the fanout exchange).
    pub fanout: bool,
    /// Most records written in one transaction.
    pub batch: usize,
    /// Cut bodies longer than this many bytes (flagged `truncated`); `None`
    /// stores every body as it is.
    pub max_body: Option<usize>,
}

impl Default for HistorianConfig {
    fn default() -> Self {
        HistorianConfig {
            database: PathBuf::from("historian.db"),
            topics: vec!["#".to_owned()],
            direct: true,
            fanout: true,
            batch: 1000,
            max_body: None,
        }
    }
}
