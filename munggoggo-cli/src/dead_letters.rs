//! `munggoggo dead-letters`: list, show, replay and purge the messages
//! agents could not handle (see [`munggoggo::bus::dead_letter`]).

use serde_json::{json, Value};

use super::args::{DeadLetterCommand, GlobalArgs};
use super::error::CliError;
use super::output::{self, Cell};
use munggoggo::bus::amqp::AmqpBus;
use munggoggo::bus::dead_letter::{DeadLetter, DEAD_LETTER_LIMIT};

const HEADERS: [&str; 7] = ["#", "AGENT", "HANDLER", "TYPE", "FROM", "ATTEMPTS", "ERROR"];

/// Runs one dead-letter command against the broker of `args`.
pub(crate) async fn run(args: &GlobalArgs, command: &DeadLetterCommand) -> Result<(), CliError> {
    let url = args.broker_url();
    if url.starts_with("memory:") {
        return Err(CliError::failed(
            "dead letters are kept on RabbitMQ; on the embedded bus rejected messages are in each agent's trace (`traces AGENT -c rejected`)",
        ));
    }
    let bus = AmqpBus::connect(url).await?;
    let outcome = execute(&bus, args.json, command).await;
    let _ = bus.close().await;
    outcome
}

async fn execute(bus: &AmqpBus, json: bool, command: &DeadLetterCommand) -> Result<(), CliError> {
    match command {
        DeadLetterCommand::List { limit } => {
            let letters = bus.dead_letters(*limit).await?;
            if json {
                let rows: Vec<Value> = letters
                    .iter()
                    .enumerate()
                    .map(|(i, l)| letter_json(i + 1, l, false))
                    .collect();
                output::print(&format!("{}\n", json!({ "dead_letters": rows })));
            } else if letters.is_empty() {
                output::print("no dead letters\n");
            } else {
                let rows: Vec<Vec<Cell>> = letters
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        vec![
                            Cell::plain((i + 1).to_string()),
                            Cell::plain(&l.agent),
                            Cell::plain(l.handler.as_deref().unwrap_or("-")),
                            Cell::plain(l.kind.as_deref().unwrap_or("-")),
                            Cell::plain(l.sender.as_deref().unwrap_or("-")),
                            Cell::plain(l.attempts.to_string()),
                            Cell::plain(&l.error),
                        ]
                    })
                    .collect();
                output::print(&output::table(&HEADERS, &rows));
                output::print(&format!("{} dead letters\n", letters.len()));
            }
        }
        DeadLetterCommand::Show { number } => {
            let letters = bus.dead_letters(*number).await?;
            let Some(letter) = number.checked_sub(1).and_then(|i| letters.get(i)) else {
                return Err(CliError::not_found(
                    format!("there is no dead letter {number} ({} in all)", letters.len()),
                    Vec::new(),
                ));
            };
            if json {
                output::print(&format!("{}\n", letter_json(*number, letter, true)));
            } else {
                let mut text = String::new();
                for (name, value) in [
                    ("agent", letter.agent.clone()),
                    (
                        "handler",
                        letter.handler.clone().unwrap_or_else(|| "-".to_owned()),
                    ),
                    ("error", letter.error.clone()),
                    ("attempts", letter.attempts.to_string()),
                    ("type", letter.kind.clone().unwrap_or_default()),
                    ("from", letter.sender.clone().unwrap_or_default()),
                    ("message id", letter.message_id.clone().unwrap_or_default()),
                    (
                        "sent to",
                        format!("exchange `{}`, key `{}`", letter.exchange, letter.routing_key),
                    ),
                ] {
                    text.push_str(&format!("{name:>10}: {value}\n"));
                }
                text.push_str(&format!(
                    "{:>10}: {}\n",
                    "body",
                    String::from_utf8_lossy(&letter.body)
                ));
                output::print(&text);
            }
        }
        DeadLetterCommand::Replay { numbers, all } => {
            if numbers.is_empty() && !all {
                return Err(CliError::failed(
                    "name the dead letters to replay (numbers from `list`), or --all",
                ));
            }
            let limit = if *all {
                DEAD_LETTER_LIMIT
            } else {
                numbers.iter().copied().max().unwrap_or(0)
            };
            let replayed = bus
                .replay_dead_letters(limit, |i, _| *all || numbers.contains(&(i + 1)))
                .await?;
            if json {
                output::print(&format!("{}\n", json!({ "replayed": replayed })));
            } else {
                output::print(&format!("replayed {replayed} dead letters\n"));
            }
        }
        DeadLetterCommand::Purge => {
            let purged = bus.purge_dead_letters().await?;
            if json {
                output::print(&format!("{}\n", json!({ "purged": purged })));
            } else {
                output::print(&format!("purged {purged} dead letters\n"));
            }
        }
    }
    Ok(())
}

fn letter_json(number: usize, letter: &DeadLetter, body: bool) -> Value {
    let mut value = json!({
        "number": number,
        "agent": letter.agent,
        "handler": letter.handler,
        "error": letter.error,
        "attempts": letter.attempts,
        "type": letter.kind,
        "from": letter.sender,
        "message_id": letter.message_id,
        "exchange": letter.exchange,
        "routing_key": letter.routing_key,
        "dead_at": letter.dead_at,
    });
    if body {
        value["body"] = Value::String(String::from_utf8_lossy(&letter.body).into_owned());
    }
    value
}
