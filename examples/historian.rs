//! A launcher with the historian of `munggoggo-historian` compiled in: an
//! agent that stores the network's messages in SQLite (bundled, no system
//! library), and a `query` command to read them back.
//!
//! ```text
//! # run it beside other agents on RabbitMQ (0.4 Python agents too):
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   cargo run --example historian --features historian,cli -- run historian --config historian.toml
//!
//! # ask the running historian (RPC over the bus):
//! cargo run --example historian --features historian,cli -- call historian count '{"sender": "pinger"}'
//! cargo run --example historian --features historian,cli -- call historian count_by '["type"]'
//!
//! # or read the database file directly, with or without a running historian:
//! cargo run --example historian --features historian,cli -- query --db historian.db --type Ping --since 10m
//! cargo run --example historian --features historian,cli -- query --db historian.db --count-by sender
//! ```
//!
//! `historian.toml` (every field is optional; these are the defaults):
//!
//! ```toml
//! [historian]
//! database = "historian.db"
//! topics = ["#"]        # binding keys of the topic messages to store
//! direct = true         # messages sent to the historian
//! fanout = true         # broadcasts
//! batch = 1000          # most records per transaction
//! # max_body = 65536    # cut longer bodies (flagged `truncated`)
//! ```
//!
//! Every other command of the launcher (`list`, `peers`, `traces`, ...) works too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use munggoggo_historian::{Filter, GroupBy, Store};

/// `query`: reads a historian's database file.
#[derive(Debug, Parser)]
#[command(
    name = "historian query",
    about = "List or count the messages a historian stored."
)]
struct QueryArgs {
    /// The database file.
    #[arg(long, default_value = "historian.db")]
    db: PathBuf,
    /// Only from this sender.
    #[arg(long)]
    sender: Option<String>,
    /// Only of this message type.
    #[arg(long = "type", value_name = "TYPE")]
    message_type: Option<String>,
    /// Only with this routing key (topic).
    #[arg(long)]
    topic: Option<String>,
    /// Only received within this long before now (`30s`, `10m`, `2h`).
    #[arg(long, value_parser = humantime_duration)]
    since: Option<Duration>,
    /// At most this many messages (oldest first).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print the number of messages only.
    #[arg(long, conflicts_with = "count_by")]
    count: bool,
    /// Print counts per `sender`, `type`, `topic` or `exchange`.
    #[arg(long, value_name = "FIELD", value_parser = group_by)]
    count_by: Option<GroupBy>,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as `10m`: {e}"))
}

fn group_by(text: &str) -> Result<GroupBy, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| "write `sender`, `type`, `topic` or `exchange`".to_owned())
}

async fn query(args: QueryArgs) -> Result<(), String> {
    if !args.db.exists() {
        return Err(format!("no database at {}", args.db.display()));
    }
    let store = Store::open(&args.db, 1).map_err(|e| format!("cannot open {}: {e}", args.db.display()))?;
    let since = args.since.map(|ago| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        i64::try_from(now.saturating_sub(ago).as_millis()).unwrap_or(i64::MAX)
    });
    let filter = Filter {
        sender: args.sender,
        message_type: args.message_type,
        topic: args.topic,
        since,
        ..Filter::default()
    };
    if let Some(by) = args.count_by {
        for (key, n) in store.count_by(by, filter).await? {
            // The direct exchange is the empty name.
            let key = if key.is_empty() { "\"\"".to_owned() } else { key };
            println!("{n:>8}  {key}");
        }
    } else if args.count {
        println!("{}", store.count(filter).await?);
    } else {
        for r in store.list(filter, Some(args.limit)).await? {
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut argv = std::env::args();
    if argv.nth(1).as_deref() != Some("query") {
        munggoggo_cli::main()
    }
    let args = QueryArgs::parse_from(std::env::args().skip(1));
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(query(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
