//! [`Store`]: the SQLite database, owned by one writer thread that writes
//! whatever has queued up in one transaction.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use munggoggo::message::Received;
use rusqlite::{params_from_iter, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::record::{Filter, GroupBy, Record};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id             INTEGER PRIMARY KEY,
    time_ms        INTEGER NOT NULL,
    sent           INTEGER,
    sender         TEXT NOT NULL,
    type           TEXT NOT NULL,
    routing_key    TEXT NOT NULL,
    exchange       TEXT NOT NULL,
    correlation_id TEXT,
    body           BLOB NOT NULL,
    size           INTEGER NOT NULL,
    truncated      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_time ON messages (time_ms);
CREATE INDEX IF NOT EXISTS messages_sender ON messages (sender, time_ms);
CREATE INDEX IF NOT EXISTS messages_type ON messages (type, time_ms);
CREATE INDEX IF NOT EXISTS messages_topic ON messages (routing_key, time_ms);
";

/// A message on its way to the database.
pub(crate) struct Row {
    time_ms: i64,
    sent: Option<i64>,
    sender: String,
    message_type: String,
    routing_key: String,
    exchange: String,
    correlation_id: Option<String>,
    body: rusqlite::types::Value,
    size: i64,
    truncated: bool,
}

impl Row {
    pub(crate) fn new(msg: &Received, max_body: Option<usize>) -> Self {
        let body = &msg.body;
        let cut = max_body.filter(|max| body.len() > *max);
        let mut end = cut.unwrap_or(body.len());
        // Cut text at a character boundary, so that it stays text.
        if let (Some(_), Ok(text)) = (cut, std::str::from_utf8(body)) {
            while !text.is_char_boundary(end) {
                end -= 1;
            }
        }
        let kept = &body[..end];
        // Text stays text (so SQLite's JSON functions work on it); anything else is a blob.
        let stored = match std::str::from_utf8(kept) {
            Ok(text) => rusqlite::types::Value::Text(text.to_owned()),
            Err(_) => rusqlite::types::Value::Blob(kept.to_vec()),
        };
        Row {
            time_ms: now_ms(),
            sent: msg.properties.timestamp.and_then(|t| i64::try_from(t).ok()),
            sender: msg.sender().to_owned(),
            message_type: msg.message_type().to_owned(),
            routing_key: msg.delivery.routing_key.to_string(),
            exchange: msg.delivery.exchange.to_string(),
            correlation_id: msg.properties.correlation_id.as_ref().map(ToString::to_string),
            body: stored,
            size: i64::try_from(body.len()).unwrap_or(i64::MAX),
            truncated: cut.is_some(),
        }
    }
}

type Query = Box<dyn FnOnce(&Connection) + Send>;

enum Command {
    Store(Row),
    Query(Query),
}

/// The database, owned by one writer thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Command>,
}

impl Store {
    /// Opens (or creates) the database and starts its writer thread.
    pub fn open(path: &Path, batch: usize) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let batch = batch.max(1);
        let (tx, rx) = mpsc::channel(batch.saturating_mul(4));
        std::thread::Builder::new()
            .name("historian-writer".to_owned())
            .spawn(move || write_loop(conn, rx, batch))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Store { tx })
    }

    pub(crate) async fn store(&self, row: Row) -> Result<(), String> {
        self.tx
            .send(Command::Store(row))
            .await
            .map_err(|_| "the historian's writer has stopped".to_owned())
    }

    /// Runs `query` on the writer thread after every record handed in before it.
    pub async fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let (reply, answer) = oneshot::channel();
        let job: Query = Box::new(move |conn| {
            let _ = reply.send(query(conn).map_err(|e| e.to_string()));
        });
        self.tx
            .send(Command::Query(job))
            .await
            .map_err(|_| "the historian's writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the historian's writer has stopped".to_owned())?
    }

    /// The number of stored messages that pass `filter`.
    pub async fn count(&self, filter: Filter) -> Result<u64, String> {
        self.query(move |conn| {
            let (clause, args) = where_clause(&filter);
            let sql = format!("SELECT COUNT(*) FROM messages{clause}");
            conn.query_row(&sql, params_from_iter(args), |row| row.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// The stored messages that pass `filter`, oldest first, at most `limit`.
    pub async fn list(&self, filter: Filter, limit: Option<u32>) -> Result<Vec<Record>, String> {
        self.query(move |conn| {
            let (clause, mut args) = where_clause(&filter);
            args.push(rusqlite::types::Value::Integer(limit.map_or(-1, i64::from)));
            let sql = format!(
                "SELECT id, time_ms, sent, sender, type, routing_key, exchange, correlation_id, body, size, truncated \
                 FROM messages{clause} ORDER BY id LIMIT ?"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), |row| {
                let body = match row.get::<_, rusqlite::types::Value>(8)? {
                    rusqlite::types::Value::Text(text) => text,
                    rusqlite::types::Value::Blob(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    _ => String::new(),
                };
                Ok(Record {
                    id: row.get(0)?,
                    time_ms: row.get(1)?,
                    sent: row.get(2)?,
                    sender: row.get(3)?,
                    message_type: row.get(4)?,
                    routing_key: row.get(5)?,
                    exchange: row.get(6)?,
                    correlation_id: row.get(7)?,
                    body,
                    size: row.get(9)?,
                    truncated: row.get(10)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// How many stored messages that pass `filter` each sender, type, topic
    /// or exchange has, most first.
    pub async fn count_by(&self, by: GroupBy, filter: Filter) -> Result<Vec<(String, u64)>, String> {
        self.query(move |conn| {
            let (clause, args) = where_clause(&filter);
            let column = by.column();
            let sql = format!(
                "SELECT {column}, COUNT(*) AS n FROM messages{clause} GROUP BY {column} ORDER BY n DESC, {column}"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), |row| {
                Ok((row.get::<_, String>(0)?, u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0)))
            })?;
            rows.collect()
        })
        .await
    }
}

/// ` WHERE ...` and its parameters.
fn where_clause(filter: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut terms = Vec::new();
    let mut args = Vec::new();
    let text = [
        ("sender", &filter.sender),
        ("type", &filter.message_type),
        ("routing_key", &filter.topic),
        ("exchange", &filter.exchange),
    ];
    for (column, value) in text {
        if let Some(value) = value {
            terms.push(format!("{column} = ?"));
            args.push(Value::Text(value.clone()));
        }
    }
    if let Some(since) = filter.since {
        terms.push("time_ms >= ?".to_owned());
        args.push(Value::Integer(since));
    }
    if let Some(until) = filter.until {
        terms.push("time_ms < ?".to_owned());
        args.push(Value::Integer(until));
    }
    if terms.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", terms.join(" AND ")), args)
    }
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Command>, batch: usize) {
    let mut rows = Vec::with_capacity(batch);
    while let Some(first) = rx.blocking_recv() {
        let mut queries = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Store(row) => rows.push(row),
                // A query waits for the records before it, so write them first.
                Command::Query(query) => queries.push(query),
            }
            if rows.len() >= batch || !queries.is_empty() {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !rows.is_empty() {
            if let Err(e) = write(&mut conn, &rows) {
                tracing::error!(error = %e, records = rows.len(), "historian: cannot store messages");
            }
            rows.clear();
        }
        for query in queries {
            query(&conn);
        }
    }
}

fn write(conn: &mut Connection, rows: &[Row]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (time_ms, sent, sender, type, routing_key, exchange, correlation_id, body, size, truncated) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        for r in rows {
            insert.execute(rusqlite::params![
                r.time_ms,
                r.sent,
                r.sender,
                r.message_type,
                r.routing_key,
                r.exchange,
                r.correlation_id,
                r.body,
                r.size,
                r.truncated,
            ])?;
        }
    }
    tx.commit()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
