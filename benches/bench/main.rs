//! The benchmark program: one subcommand per figure, each printing
//! munggoggo's figure beside a baseline measured in the same run (tokio
//! channels for the embedded bus, raw lapin for RabbitMQ), as the median of
//! several runs, with the ratio.
//!
//! ```sh
//! cargo bench -p munggoggo-bench --bench bench -- list                      # the subcommands
//! cargo bench -p munggoggo-bench --bench bench -- embedded-one-way          # one figure
//! cargo bench -p munggoggo-bench --features metrics --bench bench -- embedded-one-way-metrics
//! cargo bench -p munggoggo-bench --features otel --bench bench -- embedded-one-way-tracing
//! cargo bench -p munggoggo-bench --features amqp,metrics,otel --bench bench -- amqp-one-way-metrics
//! cargo bench -p munggoggo-bench --features amqp,metrics,otel --bench bench -- amqp-one-way-tracing
//! cargo bench -p munggoggo-bench --features amqp --bench bench -- all --json docs/bench.json
//! cargo bench -p munggoggo-bench --bench bench -- chart docs/bench.json docs/bench.svg
//! ```
//!
//! The RabbitMQ figures need the `amqp` feature and a broker at
//! `MUNGGOGGO_TEST_URL` (default: the local broker); the historian's needs
//! the `historian` feature. CI builds this program (clippy `--all-targets`)
//! but never runs it.

mod agents;
#[cfg(feature = "amqp")]
mod amqp;
#[cfg(any(feature = "metrics", feature = "otel"))]
mod bus;
mod chart;
mod embedded;
mod figure;
mod fsm;
#[cfg(feature = "historian")]
mod historian;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "otel")]
mod otel;
mod rpc;
mod scale;

use std::path::PathBuf;

#[cfg(any(feature = "metrics", feature = "otel"))]
use bus::OnBus;
use clap::{Parser, Subcommand};
use figure::Figure;

#[derive(Parser)]
#[command(name = "bench", about = "munggoggo's figures beside same-run baselines")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Runs per figure; the median is reported.
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Set by `cargo bench`; ignored.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

#[derive(Subcommand, Clone)]
enum Command {
    /// Lists the subcommands and what each measures.
    List,
    /// Embedded bus, agent to agent, typed JSON bodies (vs tokio mpsc + JSON).
    EmbeddedOneWay {
        /// Messages per run.
        #[arg(default_value_t = 200_000)]
        messages: u64,
        /// Runs munggoggo alone, for a profiler (`perf`, `valgrind
        /// --tool=callgrind`); no figure is printed.
        #[arg(long)]
        profile: bool,
    },
    /// Embedded one-way with metrics on beside off, rounds interleaved in one run.
    #[cfg(feature = "metrics")]
    EmbeddedOneWayMetrics {
        /// Messages per run.
        #[arg(default_value_t = 200_000)]
        messages: u64,
    },
    /// Embedded one-way with spans exported (OpenTelemetry) beside not, rounds interleaved in one run.
    #[cfg(feature = "otel")]
    EmbeddedOneWayTracing {
        /// Messages per run.
        #[arg(default_value_t = 200_000)]
        messages: u64,
    },
    /// RabbitMQ one-way with metrics on beside off, rounds interleaved in one run.
    #[cfg(all(feature = "metrics", feature = "amqp"))]
    AmqpOneWayMetrics {
        /// Messages per run.
        #[arg(default_value_t = 20_000)]
        messages: u64,
    },
    /// RabbitMQ one-way with spans exported (OpenTelemetry) beside not, rounds interleaved in one run.
    #[cfg(all(feature = "otel", feature = "amqp"))]
    AmqpOneWayTracing {
        /// Messages per run.
        #[arg(default_value_t = 20_000)]
        messages: u64,
    },
    /// Embedded bus, `#[rpc]` p50/p99 and calls/s at 1/10/100 callers (vs tokio mpsc + oneshot).
    EmbeddedRpc {
        /// Runs munggoggo alone, for a profiler; no figure is printed.
        #[arg(long)]
        profile: bool,
    },
    /// Embedded bus, a declared state machine's transitions per second, driven by messages (vs the same logic by hand in a cyclic behaviour, and in the handler).
    Fsm {
        /// Transitions per run.
        #[arg(default_value_t = 100_000)]
        transitions: u64,
    },
    /// Embedded bus, a topic publication to N subscribers (vs tokio broadcast + JSON).
    Fanout {
        /// Subscribers.
        #[arg(default_value_t = 100)]
        subscribers: usize,
        /// Publications per run.
        #[arg(default_value_t = 2_000)]
        messages: u64,
        /// Runs munggoggo alone, for a profiler; no figure is printed.
        #[arg(long)]
        profile: bool,
    },
    /// Process start to first agent ready and idle RSS, one agent, embedded bus (vs a bare tokio process).
    Startup,
    /// Memory per agent (RSS delta / agents) and start time (vs bare tokio actors).
    Memory {
        /// Agents.
        #[arg(default_value_t = 1_000)]
        agents: usize,
    },
    /// 10,000 embedded agents with a periodic behaviour and a handler each.
    Agents10k,
    /// RabbitMQ, agent to agent, and a forwarding chain (vs raw lapin with pipelined confirms).
    #[cfg(feature = "amqp")]
    AmqpOneWay {
        /// Messages per run.
        #[arg(default_value_t = 20_000)]
        messages: u64,
    },
    /// RabbitMQ cluster: one-way and forwarding with quorum queues on 3 private nodes (vs classic durable queues on one private node).
    #[cfg(feature = "amqp")]
    AmqpCluster {
        /// Messages per run.
        #[arg(default_value_t = 10_000)]
        messages: u64,
    },
    /// RabbitMQ, `#[rpc]` p50/p99 and calls/s at 1/10/100 callers (vs raw lapin request/reply).
    #[cfg(feature = "amqp")]
    AmqpRpc,
    /// Ping latency to an agent with 10,000 messages queued (vs an idle agent), both buses.
    #[cfg(feature = "amqp")]
    BacklogPing,
    /// RabbitMQ, `ctx.call` p50 to a munggoggo 0.4 agent (a raw stand-in, or a real one with `--peer`) vs `ctx.call_exposed` of the same method.
    #[cfg(feature = "amqp")]
    AmqpPy04Call {
        /// A running 0.4 agent to call (default: a stand-in of the run's own).
        #[arg(long)]
        peer: Option<String>,
        /// The exposed method (with `--peer`, one that takes `x` and `y`, such as `example_rpc_method`).
        #[arg(long, default_value = "bench_py04_multiply")]
        method: String,
    },
    /// 1,000 agents on RabbitMQ in one process: start, then one ping each answered.
    #[cfg(feature = "amqp")]
    Amqp1k {
        /// Agents.
        #[arg(default_value_t = 1_000)]
        agents: usize,
    },
    /// 10,000 agents on RabbitMQ in one process (channels shared): start, one ping each answered, memory per agent and the broker's.
    #[cfg(feature = "amqp")]
    Amqp10k {
        /// Agents.
        #[arg(default_value_t = 10_000)]
        agents: usize,
    },
    /// RabbitMQ, a replicated agent doing ~200 µs of CPU work per job as 1, 2 and 4 replica processes (vs N x one replica, capped by the cores).
    #[cfg(feature = "amqp")]
    ScaleOut {
        /// Jobs per run.
        #[arg(default_value_t = 10_000)]
        jobs: u64,
        /// CPU work per job, in µs.
        #[arg(long, default_value_t = 200)]
        work_us: u64,
    },
    /// (internal) A replica process of `scale-out`.
    #[cfg(feature = "amqp")]
    #[command(hide = true)]
    ScaleOutChild {
        identity: String,
        collector: String,
        work_us: u64,
    },
    /// The SQLite historian's store rate (vs the bus rate).
    #[cfg(feature = "historian")]
    Historian {
        /// Messages per run.
        #[arg(default_value_t = 100_000)]
        messages: u64,
    },
    /// Every figure above with its defaults.
    All,
    /// Draws the figures of a JSON file as an SVG chart.
    Chart {
        /// The JSON written by `--json`.
        input: PathBuf,
        /// The SVG to write.
        output: PathBuf,
    },
    /// (internal) The child process of `startup`, `memory` and `agents10k`.
    #[command(hide = true)]
    Child {
        /// Start bare tokio actors instead of munggoggo agents.
        #[arg(long)]
        baseline: bool,
        /// How many.
        agents: usize,
    },
}

fn main() {
    let args = Args::parse();
    let runs = args.runs.max(1);
    let figures: Vec<Figure> = match args.command.clone() {
        Command::List => {
            let mut cmd = <Args as clap::CommandFactory>::command();
            for sub in cmd.get_subcommands_mut().filter(|s| !s.is_hide_set()) {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                println!("{:<18} {about}", sub.get_name());
            }
            return;
        }
        Command::Chart { input, output } => {
            if let Err(e) = chart::draw(&input, &output) {
                eprintln!("cannot draw the chart: {e}");
                std::process::exit(1);
            }
            println!("wrote {}", output.display());
            return;
        }
        Command::Child { baseline, agents } => return scale::child(baseline, agents),
        #[cfg(feature = "amqp")]
        Command::ScaleOutChild {
            identity,
            collector,
            work_us,
        } => return amqp::scale_out_child(identity, collector, work_us),
        Command::All => all(runs),
        command => one(command, runs),
    };
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&figures).expect("figures are JSON");
        if let Err(e) = std::fs::write(&path, json + "\n") {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}

fn one(command: Command, runs: usize) -> Vec<Figure> {
    let figures = match command {
        Command::EmbeddedOneWay {
            messages,
            profile: true,
        } => return embedded::profile_one_way(messages, runs),
        Command::EmbeddedOneWay { messages, .. } => embedded::one_way(messages, runs),
        #[cfg(feature = "metrics")]
        Command::EmbeddedOneWayMetrics { messages } => metrics::one_way(OnBus::Embedded, messages, runs),
        #[cfg(feature = "otel")]
        Command::EmbeddedOneWayTracing { messages } => otel::one_way(OnBus::Embedded, messages, runs),
        #[cfg(all(feature = "metrics", feature = "amqp"))]
        Command::AmqpOneWayMetrics { messages } => metrics::one_way(OnBus::Amqp, messages, runs),
        #[cfg(all(feature = "otel", feature = "amqp"))]
        Command::AmqpOneWayTracing { messages } => otel::one_way(OnBus::Amqp, messages, runs),
        Command::EmbeddedRpc { profile: true } => return rpc::profile_embedded(runs),
        Command::EmbeddedRpc { .. } => rpc::embedded(runs),
        Command::Fsm { transitions } => fsm::transitions(transitions, runs),
        Command::Fanout {
            subscribers,
            messages,
            profile: true,
        } => return embedded::profile_fanout(subscribers, messages, runs),
        Command::Fanout {
            subscribers,
            messages,
            ..
        } => embedded::fanout(subscribers, messages, runs),
        Command::Startup => scale::startup(runs),
        Command::Memory { agents } => scale::agents(agents, runs),
        Command::Agents10k => scale::agents(10_000, runs),
        #[cfg(feature = "amqp")]
        Command::AmqpOneWay { messages } => amqp::one_way(messages, runs),
        #[cfg(feature = "amqp")]
        Command::AmqpCluster { messages } => amqp::cluster(messages, runs),
        #[cfg(feature = "amqp")]
        Command::AmqpRpc => amqp::rpc(runs),
        #[cfg(feature = "amqp")]
        Command::BacklogPing => amqp::backlog_ping(runs),
        #[cfg(feature = "amqp")]
        Command::AmqpPy04Call { peer, method } => amqp::py04_call(amqp::Target { peer, method }, runs),
        #[cfg(feature = "amqp")]
        Command::Amqp1k { agents } => amqp::many_agents(agents, runs),
        #[cfg(feature = "amqp")]
        Command::Amqp10k { agents } => amqp::many_agents(agents, runs),
        #[cfg(feature = "amqp")]
        Command::ScaleOut { jobs, work_us } => amqp::scale_out(jobs, work_us, runs),
        #[cfg(feature = "historian")]
        Command::Historian { messages } => historian::run(messages, runs),
        Command::List | Command::All | Command::Chart { .. } | Command::Child { .. } => {
            unreachable!("handled in main")
        }
        #[cfg(feature = "amqp")]
        Command::ScaleOutChild { .. } => unreachable!("handled in main"),
    };
    figure::print(&figures, runs);
    figures
}

fn all(runs: usize) -> Vec<Figure> {
    #[allow(unused_mut)] // extended with the RabbitMQ and historian figures
    let mut commands = vec![
        Command::EmbeddedOneWay {
            messages: 200_000,
            profile: false,
        },
        Command::EmbeddedRpc { profile: false },
        Command::Fsm { transitions: 100_000 },
        Command::Fanout {
            subscribers: 100,
            messages: 2_000,
            profile: false,
        },
        Command::Startup,
        Command::Memory { agents: 1_000 },
        Command::Agents10k,
    ];
    #[cfg(feature = "amqp")]
    commands.extend([
        Command::AmqpOneWay { messages: 20_000 },
        Command::AmqpCluster { messages: 10_000 },
        Command::AmqpRpc,
        Command::BacklogPing,
        Command::AmqpPy04Call {
            peer: None,
            method: "bench_py04_multiply".to_owned(),
        },
        Command::Amqp1k { agents: 1_000 },
        Command::ScaleOut {
            jobs: 10_000,
            work_us: 200,
        },
    ]);
    #[cfg(feature = "historian")]
    commands.push(Command::Historian { messages: 100_000 });
    #[cfg(feature = "metrics")]
    commands.push(Command::EmbeddedOneWayMetrics { messages: 200_000 });
    commands.into_iter().flat_map(|c| one(c, runs)).collect()
}

/// A tokio runtime as the examples use it: two worker threads.
pub(crate) fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
