//! The `munggoggo` command line and the agent launcher, on munggoggo's
//! public API. `cargo install munggoggo-cli` (or `--path munggoggo-cli` in
//! a checkout) installs the `munggoggo` binary; a launcher of your own adds
//! `munggoggo-cli = "0.1"` beside `munggoggo`. Feature `web` adds the
//! `dashboard` command and `run --dashboard` (crate `munggoggo-web`),
//! `metrics` a `/metrics` listener for `run` (`MUNGGOGGO_METRICS`).
//!
//! Two entry points:
//!
//! - [`control_main`] is the `munggoggo` binary: it joins a live agent
//!   network on RabbitMQ as a short-lived observer with an identity of its
//!   own (`munggoggo-cli-<pid>-<random>`, so several can run at once) and
//!   inspects and steers the agents through their system requests: `peers`,
//!   `behaviours`, `start`, `stop`, `traces`, `send`, `broadcast`,
//!   `publish`, `call`, `shutdown`, `graph` and `watch`; `dead-letters`
//!   lists, shows, replays and purges what agents could not handle.
//! - [`main`] is the launcher for a binary of your own: one line gives it
//!   `list` (the `#[agent]` types compiled in) and `run [AGENT...]`, plus
//!   every command of the `munggoggo` binary.
//!
//! ```no_run
//! // The body of `fn main()` in a binary with some `#[agent]` types:
//! munggoggo_cli::main()
//! ```
//!
//! Exit codes: 0 success, 1 failure (an agent answered with an error, a bad
//! argument such as malformed JSON), 2 usage error, 3 the broker is
//! unreachable, 4 unknown agent, behaviour, method or agent type, 5 timeout.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
#[cfg(feature = "web")]
mod dashboard;
mod dead_letters;
mod error;
mod launcher;
mod output;
mod session;
mod tables;
mod watch;

pub use args::{Command, ControlArgs, DeadLetterCommand, GlobalArgs, LauncherArgs, LauncherCommand};
pub use error::{CliError, ErrorKind};

/// The `munggoggo` binary: parses the command line, runs one command and
/// returns the exit code. Its `main` is `munggoggo_cli::control_main()`.
pub fn control_main() -> ExitCode {
    let args = ControlArgs::parse();
    init_logging(args.global.verbose, "error");
    ExitCode::from(finish(
        block_on(commands::run(&args.global, &args.command)),
        args.global.json,
    ))
}

/// The launcher of a user's binary: `list` shows the agent types compiled in,
/// `run [AGENT...] [--identity ID...]` runs them until Ctrl-C or SIGTERM, and
/// every command of the `munggoggo` binary (`peers`, `call`, ...) works as
/// well. Exits the process with the command's exit code. As the program's
/// entry, it sets up the process: a `tracing` subscriber (unless one is
/// set) and [`munggoggo::quiet_caught_panics`].
///
/// ```no_run
/// // fn main() {
/// munggoggo_cli::main()
/// // }
/// ```
pub fn main() -> ! {
    let args = LauncherArgs::parse();
    let default_level = match args.command {
        LauncherCommand::Run { .. } => munggoggo::logging::DEFAULT_FILTER,
        _ => "error",
    };
    init_logging(args.global.verbose, default_level);
    munggoggo::quiet_caught_panics();
    std::process::exit(i32::from(finish(
        block_on(launcher::run(&args)),
        args.global.json,
    )))
}

/// Runs a future on a new multi-threaded tokio runtime.
fn block_on<T>(future: impl std::future::Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the tokio runtime: {e}")))?;
    runtime.block_on(future)
}

/// Prints the error (one line on stderr, or a JSON document on stdout with
/// `--json`) and turns the outcome into an exit code.
fn finish(outcome: Result<(), CliError>, json: bool) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            output::print_error(&e, json);
            e.kind().code()
        }
    }
}

/// Logs to stderr with the default subscriber (unless the program set
/// one): `RUST_LOG` when set, else `debug` with `-v`, else `default_level`.
fn init_logging(verbose: bool, default_level: &str) {
    let default = if verbose {
        "debug,lapin=info"
    } else {
        default_level
    };
    munggoggo::logging::init_logging_with(default);
}

/// Chapter 9 of the user guide (`docs/guide/09-operations.md`): the
/// launcher and the command line, so that `cargo test --doc` compiles its
/// examples.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide/09-operations.md")]
mod guide_operations {}
