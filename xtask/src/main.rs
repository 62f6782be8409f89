//! The project's own tasks, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`).
//!
//! `cargo xtask test [ARGS...]` runs `cargo test --workspace --all-features
//! --no-fail-fast [ARGS...]` and ends with what cargo's own summaries do
//! not say: how many tests ran in all, how many failed and which, and how
//! many were skipped and why (libtest counts a test that returned early
//! because its broker, browser or Python is missing as passed; such tests
//! record themselves through `munggoggo-test-support`'s `skip`). Its last
//! line reads `suite: N passed, N failed, N skipped`; its exit code is
//! cargo's.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("test") => test(args.collect()),
        _ => {
            eprintln!("usage: cargo xtask test [CARGO TEST ARGS...]\n\nruns the whole suite and counts what ran and what was skipped");
            ExitCode::from(2)
        }
    }
}

/// Sums of cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Test binaries and doc-test runs that reported.
    runs: u64,
}

impl Counts {
    /// Adds one `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line.
    fn add(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        let Some((_, figures)) = rest.split_once(". ") else {
            return false;
        };
        for part in figures.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
        self.runs += 1;
        true
    }
}

fn test(extra: Vec<String>) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log = std::env::temp_dir().join(format!("munggoggo-skips-{}.tsv", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut child = match Command::new(cargo)
        .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .args(&extra)
        .env("MUNGGOGGO_SKIP_LOG", &log)
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot run cargo test: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut counts = Counts::default();
    let mut failures = Failures::default();
    let stdout = child.stdout.take().expect("piped");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(out, "{line}");
        counts.add(&line);
        failures.read(&line);
    }
    drop(out);
    let status = child.wait().map(|s| s.code().unwrap_or(1)).unwrap_or(1);
    let skips = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let skips: Vec<(&str, &str, &str)> = skips
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
        .collect();
    print!("{}", summary(&counts, &skips, &failures.names, status));
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

/// The names libtest lists after a binary's last `failures:` line, one per
/// line after four spaces (the first `failures:` heads the failed tests'
/// output, `---- NAME stdout ----` sections, and lists no names).
#[derive(Debug, Default)]
struct Failures {
    listing: bool,
    names: Vec<String>,
}

impl Failures {
    fn read(&mut self, line: &str) {
        if line == "failures:" {
            self.listing = true;
        } else if line.starts_with("---- ") || line.starts_with("test result: ") {
            self.listing = false;
        } else if let Some(name) = line.strip_prefix("    ").filter(|_| self.listing) {
            if !name.is_empty() && !name.contains(' ') && !self.names.iter().any(|n| n == name) {
                self.names.push(name.to_owned());
            }
        }
    }
}

/// The closing report.
fn summary(counts: &Counts, skips: &[(&str, &str, &str)], failures: &[String], status: i32) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("\n== the suite\n");
    let skipped = skips.len() as u64;
    let _ = writeln!(
        s,
        "{} test runs reported; cargo counted {} passed, {} failed, {} ignored (a skipped test counts as passed there)",
        counts.runs, counts.passed, counts.failed, counts.ignored
    );
    if !skips.is_empty() {
        let _ = writeln!(s, "skipped, and why:");
        for (binary, test, why) in skips {
            let _ = writeln!(s, "  {binary}: {test}: {why}");
        }
    }
    if counts.failed > 0 {
        let _ = writeln!(
            s,
            "failed (their output is above, after `---- NAME stdout ----`):"
        );
        for name in failures {
            let _ = writeln!(s, "  {name}");
        }
    }
    if status != 0 && counts.failed == 0 {
        let _ = writeln!(
            s,
            "cargo test ended with exit code {status} (a build error, or a test binary that did not report)"
        );
    }
    let _ = writeln!(
        s,
        "suite: {} passed, {} failed, {} skipped",
        counts.passed.saturating_sub(skipped),
        counts.failed,
        skipped
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_summed() {
        let mut counts = Counts::default();
        assert!(counts.add(
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.10s"
        ));
        assert!(counts.add("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s"));
        assert!(!counts.add("running 14 tests"));
        assert_eq!(
            counts,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1,
                runs: 2
            }
        );
    }

    #[test]
    fn failed_tests_are_named_once() {
        let mut failures = Failures::default();
        for line in [
            "failures:",
            "",
            "---- rpc::a_call stdout ----",
            "    not a name: the test's own output",
            "",
            "failures:",
            "    rpc::a_call",
            "",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s",
            "    later_output",
        ] {
            failures.read(line);
        }
        assert_eq!(failures.names, ["rpc::a_call"]);
    }

    #[test]
    fn skipped_tests_are_taken_from_the_passed_ones() {
        let counts = Counts {
            passed: 10,
            failed: 1,
            ignored: 0,
            runs: 3,
        };
        let skips = [(
            "cli",
            "peers_lists_agents",
            "no RabbitMQ broker at amqp://guest:***@h:1/x",
        )];
        let text = summary(&counts, &skips, &["rpc::a_call".to_owned()], 101);
        assert!(text.ends_with("suite: 9 passed, 1 failed, 1 skipped\n"), "{text}");
        assert!(
            text.contains("  cli: peers_lists_agents: no RabbitMQ broker"),
            "{text}"
        );
        assert!(text.contains("  rpc::a_call\n"), "{text}");
    }
}
