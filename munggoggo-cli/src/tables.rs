//! How the commands show what they found: the peers table, a peer's
//! behaviours in one cell, the message graph and trace lines.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::output::{self, behaviour_state, short_name, Cell, Colour};
use munggoggo::fsm::MachineDescription;
use munggoggo::PeerStatus;

/// The peers as a table: name, state, behaviours with their states. The
/// replicas of a replicated agent follow a row of their group's (its
/// identity and how many replicas run), indented under it.
pub(crate) fn peers_table(peers: &[PeerStatus]) -> String {
    let row = |p: &PeerStatus, name: String| {
        vec![
            Cell::coloured(&name, Some(Colour::Cyan)),
            Cell::state(&p.state),
            Cell::plain(behaviour_summary(p)),
        ]
    };
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(peers.len());
    let mut groups_done: Vec<&str> = Vec::new();
    for p in peers {
        let Some(group) = p.group.as_deref() else {
            rows.push(row(p, p.name.clone()));
            continue;
        };
        if groups_done.contains(&group) {
            continue;
        }
        groups_done.push(group);
        let replicas: Vec<&PeerStatus> = peers
            .iter()
            .filter(|r| r.group.as_deref() == Some(group))
            .collect();
        let running = replicas.iter().filter(|r| r.state == "running").count();
        rows.push(vec![
            Cell::coloured(group, Some(Colour::Cyan)),
            Cell::plain(format!("{running} of {} replicas running", replicas.len())),
            Cell::plain("replicated".to_owned()),
        ]);
        for replica in replicas {
            rows.push(row(replica, format!("  {}", replica.name)));
        }
    }
    output::table(&["AGENT", "STATE", "BEHAVIOURS"], &rows)
}

/// `ping (running), pong (init)`.
pub(crate) fn behaviour_summary(peer: &PeerStatus) -> String {
    let list: Vec<String> = peer
        .behaviours
        .iter()
        .map(|b| {
            let state = behaviour_state(&b.state, &peer.state, false);
            format!("{} ({state})", short_name(&peer.name, &b.name))
        })
        .collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(", ")
    }
}

/// The agents and their behaviours as a Graphviz digraph; a state
/// machine (`machines`, by behaviour name) is drawn beside its behaviour,
/// its current state highlighted.
pub(crate) fn graph(peers: &[PeerStatus], machines: &HashMap<String, MachineDescription>) -> String {
    fn fill(state: &str) -> &'static str {
        match state {
            "running" => "#c6efce",
            "init" | "stopped" | "stopping" => "#ffeb9c",
            "crashed" => "#ffc7ce",
            "standby" => "#bdd7ee",
            _ => "#e0e0e0",
        }
    }
    // Two lines: the name, then the state.
    fn label(name: &str, state: &str) -> String {
        format!("\"{}\\n{}\"", escape(name), escape(state))
    }
    let mut dot =
        String::from("digraph munggoggo {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", style=filled];\n");
    for peer in peers {
        dot.push_str(&format!(
            "  {} [shape=box, fillcolor={}, label={}];\n",
            quote(&peer.name),
            quote(fill(&peer.state)),
            label(&peer.name, &peer.state),
        ));
        for b in &peer.behaviours {
            let state = behaviour_state(&b.state, &peer.state, false);
            dot.push_str(&format!(
                "  {} [shape=ellipse, fillcolor={}, label={}];\n  {} -> {};\n",
                quote(&b.name),
                quote(fill(state)),
                label(short_name(&peer.name, &b.name), state),
                quote(&peer.name),
                quote(&b.name),
            ));
            if let Some(machine) = machines.get(&b.name) {
                dot.push_str(&machine_dot(&b.name, machine));
            }
        }
    }
    dot.push_str("}\n");
    dot
}

/// A machine as a cluster of its states: `to` as arrows, timeouts as
/// dashed arrows labelled with their time, final states with a double
/// border, the initial one pointed at by its behaviour, the current one
/// bold and filled.
fn machine_dot(behaviour: &str, machine: &MachineDescription) -> String {
    let id = |state: &str| quote(&format!("{behaviour}/{state}"));
    let current = &machine.current.state;
    let mut dot = format!(
        "  subgraph {} {{\n    label={}; style=\"rounded,dashed\"; color=\"#999999\";\n",
        quote(&format!("cluster_{behaviour}")),
        quote(&format!(
            "{} ({} transitions)",
            machine.name, machine.current.transitions
        )),
    );
    for state in &machine.states {
        let (fill, pen) = if &state.name == current {
            ("#ffd966", ", penwidth=3, fontname=\"Helvetica-Bold\"")
        } else {
            ("#ffffff", "")
        };
        let peripheries = if state.is_final { ", peripheries=2" } else { "" };
        dot.push_str(&format!(
            "    {} [shape=box, style=\"rounded,filled\", fillcolor={}, label={}{peripheries}{pen}];\n",
            id(&state.name),
            quote(fill),
            quote(&state.name),
        ));
    }
    for state in &machine.states {
        for to in &state.to {
            dot.push_str(&format!("    {} -> {};\n", id(&state.name), id(to)));
        }
        if let Some((after, to)) = &state.timeout {
            let after = humantime::format_duration(std::time::Duration::from_millis(*after));
            dot.push_str(&format!(
                "    {} -> {} [style=dashed, label={}];\n",
                id(&state.name),
                id(to),
                quote(&format!("after {after}")),
            ));
        }
    }
    dot.push_str("  }\n");
    dot.push_str(&format!(
        "  {} -> {} [style=dotted, label=\"initial\"];\n",
        quote(behaviour),
        id(&machine.initial),
    ));
    dot
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn quote(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// Column headers of trace tables.
pub(crate) const TRACE_HEADERS: [&str; 6] =
    ["TIME (UTC)", "CATEGORY", "TYPE", "FROM/TO", "ROUTING KEY", "BODY"];

/// One trace entry as 0.4 sends it: `[epoch seconds, record, category]`.
pub(crate) struct TraceLine {
    pub(crate) time: f64,
    pub(crate) category: String,
    pub(crate) record: Value,
}

impl TraceLine {
    /// Reads a wire entry; `None` when it is not one.
    pub(crate) fn parse(entry: &Value) -> Option<TraceLine> {
        let entry = entry.as_array()?;
        Some(TraceLine {
            time: entry.first()?.as_f64()?,
            record: entry.get(1)?.clone(),
            category: entry.get(2)?.as_str()?.to_owned(),
        })
    }

    fn field(&self, name: &str) -> &str {
        self.record.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether the record was sent by the agent (0.4 leaves `app_id` empty then).
    fn outgoing(&self) -> bool {
        self.field("app_id").is_empty() && !self.field("target").is_empty()
    }

    /// The other side: `<- sender` or `-> target`.
    pub(crate) fn peer(&self) -> String {
        if self.outgoing() {
            format!("-> {}", self.field("target"))
        } else {
            format!("<- {}", self.field("app_id"))
        }
    }

    /// Who sent it (empty for what the agent sent).
    pub(crate) fn sender(&self) -> &str {
        self.field("app_id")
    }

    /// Whether a CLI observer (this one or another) sent or receives it.
    pub(crate) fn involves_cli(&self) -> bool {
        let cli = |s: &str| s.starts_with(super::session::CLI_PREFIX);
        cli(self.field("app_id")) || cli(self.field("target")) || cli(self.field("routing_key"))
    }

    /// The JSON form of `--json`.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "time": self.time, "category": self.category, "record": self.record })
    }

    /// A row under [`TRACE_HEADERS`].
    pub(crate) fn row(&self) -> Vec<Cell> {
        // The body is shortened, the reason of a rejection never.
        let mut body = output::shorten(self.field("body"), 72);
        if let Some(reason) = self.record.get("reason").and_then(Value::as_str) {
            body = format!("{body}  [{}]", reason.replace(['\n', '\r'], " "));
        }
        let category_colour = match self.category.as_str() {
            "rejected" => Some(Colour::Red),
            "incoming" | "outgoing" => None,
            _ => Some(Colour::Cyan),
        };
        vec![
            Cell::coloured(output::clock(self.time), Some(Colour::Dim)),
            Cell::coloured(&self.category, category_colour),
            Cell::plain(self.field("type")),
            Cell::plain(self.peer()),
            Cell::plain(self.field("routing_key")),
            Cell::plain(body),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use munggoggo::PeerBehaviour;

    fn peer(name: &str, group: Option<&str>, state: &str) -> PeerStatus {
        PeerStatus {
            name: name.to_owned(),
            group: group.map(str::to_owned),
            state: state.to_owned(),
            behaviours: vec![PeerBehaviour {
                name: format!("{name}.tick"),
                state: "standby".to_owned(),
            }],
        }
    }

    #[test]
    fn replicas_are_listed_under_their_group() {
        let peers = [
            peer("worker@a1", Some("worker"), "running"),
            peer("calc", None, "running"),
            peer("worker@b2", Some("worker"), "stopping"),
        ];
        let table = peers_table(&peers);
        let lines: Vec<&str> = table.lines().map(str::trim_end).collect();
        let at = |text: &str| {
            lines
                .iter()
                .position(|l| l.contains(text))
                .unwrap_or_else(|| panic!("{text} in {table}"))
        };
        assert!(
            lines[at("worker ")].contains("1 of 2 replicas running"),
            "{table}"
        );
        assert_eq!(at("  worker@a1"), at("worker ") + 1, "{table}");
        assert_eq!(at("  worker@b2"), at("worker ") + 2, "{table}");
        assert!(lines[at("worker@a1")].contains("tick (standby)"), "{table}");
        assert!(at("calc") > at("worker@b2"), "{table}");
    }
}
