//! Human output (aligned tables, colours on a terminal only) and JSON output.

use std::io::{IsTerminal, Write};

use super::error::CliError;

/// A colour of a table cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    Green,
    Yellow,
    Red,
    Dim,
    Bold,
    Cyan,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Green => "32",
            Colour::Yellow => "33",
            Colour::Red => "31",
            Colour::Dim => "2",
            Colour::Bold => "1",
            Colour::Cyan => "36",
        }
    }

    /// The colour of a state word.
    pub(crate) fn of_state(state: &str) -> Option<Colour> {
        match state {
            "running" => Some(Colour::Green),
            "init" | "stopped" | "stopping" => Some(Colour::Yellow),
            "crashed" => Some(Colour::Red),
            "standby" => Some(Colour::Cyan),
            "shutdown" => Some(Colour::Dim),
            _ => None,
        }
    }
}

/// Whether colours go to stdout: a terminal, and `NO_COLOR` unset.
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Whether colours go to stderr.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Text, in a colour when stdout is a terminal.
pub(crate) fn paint(text: &str, colour: Option<Colour>) -> String {
    match colour {
        Some(colour) if stdout_is_terminal() => format!("\x1b[{}m{text}\x1b[0m", colour.code()),
        _ => text.to_owned(),
    }
}

/// The word shown for a behaviour's state. A behaviour that was stopped
/// reports `init`, as one that never started (munggoggo 0.4's word, kept
/// on the wire); behaviours start with their agent, so one in `init` while
/// its agent runs, or one that has counted runs or errors, was stopped:
/// it reads `stopped`. Any other state reads as reported.
pub(crate) fn behaviour_state<'a>(state: &'a str, agent_state: &str, ran: bool) -> &'a str {
    if state == "init" && (agent_state == "running" || ran) {
        "stopped"
    } else {
        state
    }
}

/// One cell: text and an optional colour.
pub(crate) struct Cell {
    text: String,
    colour: Option<Colour>,
}

impl Cell {
    /// Plain text.
    pub(crate) fn plain(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            colour: None,
        }
    }

    /// Coloured text.
    pub(crate) fn coloured(text: impl Into<String>, colour: Option<Colour>) -> Self {
        Cell {
            text: text.into(),
            colour,
        }
    }

    /// A state word, coloured by state.
    pub(crate) fn state(state: &str) -> Self {
        Self::coloured(state, Colour::of_state(state))
    }
}

/// Renders rows under bold headers, columns aligned by character count (the
/// last column is not padded).
pub(crate) fn table(headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.text.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<Cell> = headers
        .iter()
        .map(|h| Cell::coloured(*h, Some(Colour::Bold)))
        .collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(&paint(&cell.text, cell.colour));
            if i + 1 < row.len().min(columns) {
                let pad = widths[i] - cell.text.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints text to stdout (ignores a closed pipe).
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a line on stderr.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints one JSON document on one line (pretty when stdout is a terminal).
pub(crate) fn print_json(value: &serde_json::Value) {
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_else(|_| "null".to_owned());
    print(&format!("{text}\n"));
}

/// Prints one JSON document on one line, always (a stream of events).
pub(crate) fn print_json_line(value: &serde_json::Value) {
    print(&format!(
        "{}\n",
        serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
    ));
}

/// Prints an error: one line on stderr, and with `--json` also a document
/// `{"error": {"kind", "message", "known"}}` on stdout.
pub(crate) fn print_error(error: &CliError, json: bool) {
    let label = if stderr_is_terminal() {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    let line = error.message().replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "{label} {line}");
    if json {
        print_json(&serde_json::json!({
            "error": {
                "kind": error.kind().as_str(),
                "message": error.message(),
                "known": error.known(),
            }
        }));
    }
}

/// `HH:MM:SS.mmm` (UTC) of float epoch seconds.
pub(crate) fn clock(epoch: f64) -> String {
    if !epoch.is_finite() || epoch < 0.0 {
        return "?".to_owned();
    }
    let millis = (epoch * 1000.0).round() as u64;
    let day = millis % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3_600_000,
        day / 60_000 % 60,
        day / 1000 % 60,
        day % 1000
    )
}

/// Shortens text to `max` characters with an ellipsis, on one line.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut short: String = one_line.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// A behaviour's name without its agent's prefix.
pub(crate) fn short_name<'a>(agent: &str, behaviour: &'a str) -> &'a str {
    behaviour
        .strip_prefix(agent)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(behaviour)
}
