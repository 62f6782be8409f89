//! `munggoggo`: inspect and control a running munggoggo agent network.
//!
//! Install with `cargo install --path munggoggo --features cli`; run
//! `munggoggo --help` for the commands.

fn main() -> std::process::ExitCode {
    munggoggo::cli::control_main()
}
