//! The launcher of a binary of one's own (`munggoggo_cli::main`): `list`,
//! `run` and `run --help`, on the embedded bus (no broker needed).
//!
//! This test binary is such a launcher: started with `LAUNCHER_UNDER_TEST`
//! set, it is `munggoggo_cli::main()` with the agent types below; without
//! it, it runs the checks, each starting itself with some arguments.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use munggoggo::prelude::*;

/// Starts, says so, and stops itself: `run` then ends on its own.
#[agent(identity = "launcher-stopper")]
#[derive(Default)]
struct Stopper;

#[agent]
impl Stopper {
    #[behaviour(oneshot)]
    async fn finish(&mut self, ctx: &Context) {
        ctx.stop();
    }
}

/// No `Default` and no `new`: the registry cannot build one.
#[agent(identity = "launcher-no-ctor")]
struct NoCtor {
    #[allow(dead_code)]
    port: u16,
}

#[agent]
impl NoCtor {
    #[rpc]
    async fn port(&mut self) -> u16 {
        self.port
    }
}

const UNDER_TEST: &str = "LAUNCHER_UNDER_TEST";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs this binary as the launcher (60 s at most).
fn launcher(args: &[&str]) -> Run {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(args)
        .env(UNDER_TEST, "1")
        .env_remove("RUST_LOG")
        .env_remove("MUNGGOGGO_URL")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the launcher starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("the launcher runs").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the launcher `{}` did not finish within 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("its output");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn list_marks_types_without_a_constructor() {
    let run = launcher(&["list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let no_ctor = run
        .stdout
        .lines()
        .find(|l| l.starts_with("NoCtor "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(no_ctor.contains("[no constructor: `run` skips it"), "{no_ctor}");
    let stopper = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Stopper "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(!stopper.contains("no constructor"), "{stopper}");

    let run = launcher(&["--json", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let agents = json["agents"].as_array().expect("agents");
    let constructor = |name: &str| {
        agents
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["constructor"].clone())
    };
    assert_eq!(constructor("NoCtor"), Some(serde_json::json!(false)));
    assert_eq!(constructor("Stopper"), Some(serde_json::json!(true)));
}

fn run_without_names_starts_what_it_can_and_names_the_rest() {
    let run = launcher(&["run"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        run.stderr
            .contains("skipped NoCtor: no constructor (derive `Default` or add `#[agent(new = ...)]`)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("running launcher-stopper (Stopper) on the embedded bus"),
        "{}",
        run.stderr
    );
    // The default subscriber logs at info.
    assert!(run.stderr.contains("agent started"), "{}", run.stderr);

    let run = launcher(&["--json", "run"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let json: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap_or_default()).expect("JSON");
    assert_eq!(json["skipped"], serde_json::json!(["NoCtor"]));
    assert_eq!(json["running"][0]["type"], "Stopper");

    let run = launcher(&["run", "Stopper", "Stopper"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "two agents would have the identity `launcher-stopper`; give them their own with TYPE@ID or --identity ID"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("agent started"), "{}", run.stderr);

    let run = launcher(&["run", "NoCtor"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("agent type `NoCtor` has no constructor"),
        "{}",
        run.stderr
    );
}

fn run_help_and_url_agree_on_the_default_bus() {
    let run = launcher(&["run", "--help"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let help = run.stdout.replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("on the embedded bus unless --url or MUNGGOGGO_URL names a broker"),
        "{help}"
    );
    assert!(
        help.contains("Default: the local broker (`amqp://guest:***@127.0.0.1:5672/%2f`), but the embedded bus for a launcher's `run`"),
        "{help}"
    );
}

fn main() {
    if std::env::var_os(UNDER_TEST).is_some() {
        munggoggo_cli::main()
    }
    let checks: [(&str, fn()); 3] = [
        (
            "list_marks_types_without_a_constructor",
            list_marks_types_without_a_constructor,
        ),
        (
            "run_without_names_starts_what_it_can_and_names_the_rest",
            run_without_names_starts_what_it_can_and_names_the_rest,
        ),
        (
            "run_help_and_url_agree_on_the_default_bus",
            run_help_and_url_agree_on_the_default_bus,
        ),
    ];
    // `cargo test` passes its filters and flags on; a filter picks checks by name.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut ran = 0;
    for (name, check) in checks {
        if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
            println!("test {name} ...");
            check();
            println!("test {name} ... ok");
            ran += 1;
        }
    }
    println!("launcher: {ran} checks passed");
}
