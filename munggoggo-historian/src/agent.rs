//! [`Historian`]: the agent that hands the messages it takes to its
//! [`Store`] and answers queries over RPC.

use munggoggo::message::Received;
use munggoggo::prelude::*;

use crate::config::HistorianConfig;
use crate::record::{Filter, GroupBy, Record};
use crate::store::{Row, Store};

/// Stores the network's messages in SQLite; query it with its `#[rpc]`
/// methods `count`, `list` and `count_by`.
#[agent(identity = "historian", config = HistorianConfig, new = Historian::new)]
pub struct Historian {
    config: HistorianConfig,
    store: Option<Store>,
}

impl Historian {
    /// A historian with this configuration; the database opens at setup.
    pub fn new(config: HistorianConfig) -> Self {
        Historian { config, store: None }
    }

    async fn keep(&mut self, msg: &Received) -> Result<(), String> {
        let store = self.store.as_ref().ok_or("the database is not open")?;
        store.store(Row::new(msg, self.config.max_body)).await
    }

    fn store_or_err(&self) -> Result<&Store, String> {
        self.store
            .as_ref()
            .ok_or_else(|| "the database is not open".to_owned())
    }
}

#[agent]
impl Historian {
    #[setup]
    async fn open(&mut self, ctx: &Context) -> Result<(), munggoggo::BoxError> {
        ctx.set_topics("topics", &self.config.topics)?;
        let store = Store::open(&self.config.database, self.config.batch)
            .map_err(|e| format!("cannot open {}: {e}", self.config.database.display()))?;
        tracing::info!(database = %self.config.database.display(), topics = ?self.config.topics, "historian: storing");
        self.store = Some(store);
        Ok(())
    }

    /// Topic messages matching the configured binding keys.
    #[on_message(topic = "#")]
    async fn topics(&mut self, msg: Envelope<Raw>) -> Result<(), String> {
        self.keep(msg.received()).await
    }

    /// Direct messages and broadcasts, as configured.
    #[on_message(fallback)]
    async fn messages(&mut self, msg: Envelope<Raw>) -> Result<(), String> {
        let fanout = msg.received().delivery.exchange == munggoggo::bus::FANOUT_EXCHANGE;
        if (fanout && self.config.fanout) || (!fanout && self.config.direct) {
            self.keep(msg.received()).await?;
        }
        Ok(())
    }

    /// The number of stored messages, optionally only from `sender`, of
    /// `type`, on `topic`, in `[since, until)` (ms since the epoch).
    #[rpc]
    async fn count(
        &mut self,
        sender: Option<String>,
        r#type: Option<String>,
        topic: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<u64, String> {
        let filter = Filter {
            sender,
            message_type: r#type,
            topic,
            since,
            until,
            ..Filter::default()
        };
        self.store_or_err()?.count(filter).await
    }

    /// The stored messages passing the same filters as `count`, oldest
    /// first, at most `limit` (default 100).
    #[rpc]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &mut self,
        sender: Option<String>,
        r#type: Option<String>,
        topic: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<Record>, String> {
        let filter = Filter {
            sender,
            message_type: r#type,
            topic,
            since,
            until,
            ..Filter::default()
        };
        self.store_or_err()?
            .list(filter, Some(limit.unwrap_or(100)))
            .await
    }

    /// Counts per `by` (`sender`, `type`, `topic` or `exchange`), most first.
    #[rpc]
    async fn count_by(
        &mut self,
        by: GroupBy,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<(String, u64)>, String> {
        let filter = Filter {
            since,
            until,
            ..Filter::default()
        };
        self.store_or_err()?.count_by(by, filter).await
    }
}
