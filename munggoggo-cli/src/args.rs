//! The command line, as clap parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The bus: `amqp://user:password@host:port/vhost`, or `memory://`.
    /// Default: the local broker (`amqp://guest:***@127.0.0.1:5672/%2f`),
    /// but the embedded bus for a launcher's `run`
    #[arg(long, env = munggoggo::runtime::URL_VAR, global = true, hide_env_values = true)]
    pub url: Option<String>,

    /// How long to wait for replies (`500ms`, `3s`, `1m`); peer discovery
    /// takes half of it, at most 1 s.
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Print one JSON document per command (errors too) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log debug messages to stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl GlobalArgs {
    /// The broker URL of control commands: `--url`, `MUNGGOGGO_URL`, else the local broker.
    pub fn broker_url(&self) -> &str {
        self.url.as_deref().unwrap_or(munggoggo::runtime::LOCAL_BROKER)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `500ms`, `3s`"))?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// The `munggoggo` binary: inspect and control a running agent network.
#[derive(Debug, Parser)]
#[command(name = "munggoggo", version, about = "Inspect and control a running munggoggo agent network.", long_about = None)]
pub struct ControlArgs {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of the `munggoggo` binary.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List the agents on the bus with their state and behaviours.
    Peers,
    /// List an agent's behaviours with their states.
    #[command(visible_alias = "behaviors")]
    Behaviours {
        /// The agent's identity.
        agent: String,
    },
    /// Start a stopped behaviour of an agent.
    Start {
        /// The agent's identity.
        agent: String,
        /// The behaviour: its method name or full name `<agent>.<method>`.
        behaviour: String,
    },
    /// Stop a behaviour of an agent.
    Stop {
        /// The agent's identity.
        agent: String,
        /// The behaviour: its method name or full name `<agent>.<method>`.
        behaviour: String,
    },
    /// Show an agent's trace of recent messages, oldest first.
    Traces {
        /// The agent's identity.
        agent: String,
        /// At most this many of the newest entries.
        #[arg(short, long)]
        limit: Option<usize>,
        /// Only messages from senders whose identity contains this text
        /// (CLI identities are random: `-s munggoggo-cli` finds them all).
        #[arg(short, long)]
        sender: Option<String>,
        /// Only this category: `incoming`, `outgoing`, `rejected` or a behaviour's full name.
        #[arg(short, long)]
        category: Option<String>,
    },
    /// Send a message to one agent.
    Send {
        /// The receiver's identity.
        target: String,
        /// The message type (the AMQP `type`, e.g. `Ping`).
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The body, usually JSON: '{"n": 1}'.
        body: String,
    },
    /// Send a message to every agent (fanout).
    Broadcast {
        /// The message type.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The body, usually JSON.
        body: String,
    },
    /// Publish a message on a topic.
    Publish {
        /// The topic (routing key), e.g. `sensors.kitchen`.
        topic: String,
        /// The body, usually JSON.
        body: String,
        /// The message type (default: `PUBSUB`, as 0.4's publish).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
    },
    /// Call an `#[rpc]` method of an agent and print its result; a
    /// method of a munggoggo 0.4 agent is called as 0.4 exposes it
    /// (named parameters only).
    Call {
        /// The agent's identity (with `--exposed`, only shown).
        agent: String,
        /// The method's name.
        method: String,
        /// The parameters as JSON: an array (positional) or an object (named).
        #[arg(value_name = "PARAMS_JSON", default_value = "[]")]
        params: String,
        /// Call METHOD as munggoggo 0.4 agents expose methods (aio-pika's
        /// RPC pattern): whichever agent exposing it answers, whether it
        /// is AGENT or not; PARAMS_JSON must be an object.
        #[arg(long)]
        exposed: bool,
    },
    /// Ask an agent to shut down gracefully.
    Shutdown {
        /// The agent's identity.
        agent: String,
    },
    /// Print the agents and their behaviours as a Graphviz graph (`| dot -Tpng -o net.png`).
    Graph,
    /// Serve the web dashboard: watch and steer the agents in a browser.
    #[cfg(feature = "web")]
    Dashboard {
        /// The address to listen on (use 0.0.0.0:PORT, with a token, to serve beyond this machine).
        #[arg(long, default_value = munggoggo_web::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// The bearer token that endpoints which change something want.
        #[arg(long, env = munggoggo_web::TOKEN_VAR, hide_env_values = true)]
        token: Option<String>,
    },
    /// List, show, replay or purge the dead letters: messages agents
    /// could not handle, kept in the queue `munggoggo.dead-letters`.
    #[command(name = "dead-letters", subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Follow the agents and the messages they receive until Ctrl-C.
    Watch {
        /// Time between two looks.
        #[arg(short, long, default_value = "2s", value_parser = parse_duration)]
        interval: Duration,
        /// Stop after this long instead of waiting for Ctrl-C.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
    },
}

/// What `munggoggo dead-letters` does.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadLetterCommand {
    /// List the dead letters, oldest first, with agent, handler and error.
    List {
        /// At most this many.
        #[arg(short, long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one dead letter (its number in `list`) with its body.
    Show {
        /// The number `list` gives it (1 is the oldest).
        number: usize,
    },
    /// Send dead letters again to where they first went, and remove them.
    Replay {
        /// Numbers from `list` (1 is the oldest).
        numbers: Vec<usize>,
        /// Replay every dead letter (up to 100,000).
        #[arg(long, conflicts_with = "numbers")]
        all: bool,
    },
    /// Delete every dead letter.
    Purge,
}

/// A launcher binary made with [`crate::main`].
#[derive(Debug, Parser)]
#[command(version, about = "Run the munggoggo agents of this binary, or inspect a running network.", long_about = None)]
pub struct LauncherArgs {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: LauncherCommand,
}

/// The commands of a launcher binary.
#[derive(Debug, Clone, Subcommand)]
pub enum LauncherCommand {
    /// List the agent types compiled into this binary.
    List,
    /// Run agents of this binary until Ctrl-C or SIGTERM, on the embedded bus unless --url or MUNGGOGGO_URL names a broker.
    Run {
        /// Agent types to run (type name or default identity, `TYPE@IDENTITY` for
        /// an identity of its own: `sensor@kitchen sensor@hall`; default: every
        /// type with a constructor).
        #[arg(value_name = "AGENT")]
        agents: Vec<String>,
        /// Identities for the agents, in order (repeat it: `--identity a --identity b`).
        #[arg(short, long = "identity", value_name = "ID")]
        identities: Vec<String>,
        /// The agents' configuration file: TOML (`.toml`) or JSON, one table per identity.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Also serve the web dashboard on this address, e.g. 127.0.0.1:8000
        /// (token: MUNGGOGGO_DASHBOARD_TOKEN).
        #[cfg(feature = "web")]
        #[arg(long, value_name = "ADDR")]
        dashboard: Option<std::net::SocketAddr>,
    },
    /// The commands of the `munggoggo` binary.
    #[command(flatten)]
    Control(Command),
}
