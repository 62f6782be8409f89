//! `munggoggo`: inspect and control a running munggoggo agent network.
//!
//! Install with `cargo install --path munggoggo-cli` (`--features web` for
//! the `dashboard` command); run
//! `munggoggo --help` for the commands.

fn main() -> std::process::ExitCode {
    munggoggo_cli::control_main()
}
