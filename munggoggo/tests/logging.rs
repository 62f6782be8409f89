//! The default subscriber: installed when the program has none, never over
//! the program's own, and filtered by `RUST_LOG` (default `info`).
//!
//! A global subscriber can be set once per process, so the test starts
//! this binary again for each case (`LOGGING_CASE` says which).
#![cfg(feature = "logging")]

use std::process::Command;

const CASE: &str = "LOGGING_CASE";

/// Runs this test in a child process with `case` (and `RUST_LOG` if given).
fn child(case: &str, rust_log: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["the_default_subscriber", "--exact"]).env(CASE, case);
    match rust_log {
        Some(filter) => cmd.env("RUST_LOG", filter),
        None => cmd.env_remove("RUST_LOG"),
    };
    let output = cmd.output().expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_default_subscriber() {
    match std::env::var(CASE).as_deref() {
        Ok("own") => {
            tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
                .expect("the program's own subscriber");
            assert!(!munggoggo::init_logging(), "installed over the program's own");
            tracing::info!("must not be shown");
        }
        Ok("default") => {
            assert!(munggoggo::init_logging(), "nothing was installed");
            assert!(!munggoggo::init_logging(), "installed twice");
            tracing::info!("an info line");
            tracing::debug!("a debug line");
            tracing::warn!("a warning");
        }
        _ => {
            let (ok, text) = child("own", None);
            assert!(ok, "{text}");
            assert!(!text.contains("must not be shown"), "{text}");

            let (ok, text) = child("default", None);
            assert!(ok, "{text}");
            assert!(text.contains("an info line"), "{text}");
            assert!(text.contains("a warning"), "{text}");
            assert!(!text.contains("a debug line"), "{text}");

            let (ok, text) = child("default", Some("warn"));
            assert!(ok, "{text}");
            assert!(!text.contains("an info line"), "{text}");
            assert!(text.contains("a warning"), "{text}");

            let (ok, text) = child("default", Some("debug"));
            assert!(ok, "{text}");
            assert!(text.contains("a debug line"), "{text}");
        }
    }
}
