//! Compile-fail and compile-pass cases of munggoggo's macros.
//!
//! The `.stderr` snapshots of `fail/` hold rustc's messages, which change
//! between toolchains; they were made with rustc 1.95, so on any other
//! version only the `pass/` cases run. Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test -p munggoggo-trybuild` and read the diff.

use std::process::Command;

/// The toolchain the `fail/*.stderr` snapshots were made with.
const SNAPSHOT_RUSTC: &str = "1.95.";

fn rustc_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    text.split_whitespace().nth(1).map(str::to_owned)
}

#[test]
fn macros() {
    // Straight to stderr, past libtest's capture: the nested build below
    // takes minutes the first time and prints nothing until it is done.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "note: trybuild compiles the macro cases in a build of its own (the first run takes a few minutes)"
    );
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    match rustc_version() {
        Some(version) if version.starts_with(SNAPSHOT_RUSTC) => cases.compile_fail("fail/*.rs"),
        other => eprintln!(
            "note: skipping the compile-fail cases: their .stderr snapshots were made with rustc {SNAPSHOT_RUSTC}x, and this is rustc {}",
            other.as_deref().unwrap_or("of unknown version")
        ),
    }
}
