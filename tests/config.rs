//! Typed agent configuration: the layers (defaults, file, environment,
//! code) and their precedence, every kind of bad configuration with its
//! message, and two instances of one type configured apart through the
//! launcher. On the embedded bus.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use common::unique;
use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, Config, Error, Runtime, RuntimeHandle};
use serde::{Deserialize, Serialize};

/// The configuration of a [`Sensor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SensorConfig {
    /// Required: no default.
    threshold: f64,
    #[serde(default = "default_interval")]
    interval: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    limits: Limits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Limits {
    #[serde(default)]
    max: u32,
}

fn default_interval() -> String {
    "1s".to_owned()
}

/// The identities whose setup ran, to prove that nothing started.
static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[agent(config = SensorConfig, new = Sensor::new)]
struct Sensor {
    config: SensorConfig,
}

impl Sensor {
    fn new(config: SensorConfig) -> Self {
        Sensor { config }
    }
}

#[agent]
impl Sensor {
    #[setup]
    async fn setup(&mut self, ctx: &Context) {
        STARTED.lock().unwrap().push(ctx.identity().to_owned());
    }

    #[rpc]
    async fn config(&mut self) -> SensorConfig {
        self.config.clone()
    }
}

/// A configuration whose every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct CounterConfig {
    start: u64,
}

#[agent(config = CounterConfig, new = Counter::new)]
struct Counter {
    start: u64,
}

impl Counter {
    fn new(config: CounterConfig) -> Self {
        Counter { start: config.start }
    }
}

#[agent]
impl Counter {
    #[rpc]
    async fn start(&mut self) -> u64 {
        self.start
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn config_of(rt: &RuntimeHandle, identity: &str) -> SensorConfig {
    let client = rt.client(unique("probe")).await.unwrap();
    client.call::<SensorConfig>(identity, "config", ()).await.unwrap()
}

fn bad(result: munggoggo::Result<RuntimeHandle>) -> Vec<munggoggo::ConfigError> {
    match result {
        Err(Error::BadConfig(errors)) => errors,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, but the runtime started"),
    }
}

#[tokio::test]
async fn layers_in_order_file_env_code() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("kitchen");
    let file = write(
        &dir,
        "agents.toml",
        &format!("[{id}]\nthreshold = 1.5\nlabel = \"file\"\ninterval = \"5s\"\nlimits = {{ max = 3 }}\n"),
    );
    let prefix = munggoggo::config::env_prefix(&id);
    let config = Config::new()
        .file(&file)
        .unwrap()
        .vars([
            (format!("{prefix}LABEL"), "env".to_owned()),
            (format!("{prefix}INTERVAL"), "7s".to_owned()),
            (format!("{prefix}LIMITS__MAX"), "9".to_owned()),
        ])
        .set(&id, "interval", "9s");
    let rt = Runtime::memory()
        .config(config)
        .configured_as::<Sensor>(&id)
        .start()
        .await
        .unwrap();
    assert_eq!(
        config_of(&rt, &id).await,
        SensorConfig {
            threshold: 1.5,            // file
            interval: "9s".to_owned(), // code over env over file
            label: "env".to_owned(),   // env over file
            limits: Limits { max: 9 }, // env, nested
        }
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn json_file_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("hall");
    let file = write(&dir, "agents.json", &format!(r#"{{"{id}": {{"threshold": 2}}}}"#));
    let rt = Runtime::memory()
        .config(
            Config::new()
                .file(&file)
                .unwrap()
                .vars(Vec::<(String, String)>::new()),
        )
        .configured_as::<Sensor>(&id)
        .configured::<Counter>()
        .start()
        .await
        .unwrap();
    let config = config_of(&rt, &id).await;
    assert_eq!(config.threshold, 2.0);
    assert_eq!(config.interval, "1s");
    assert_eq!(config.label, "");
    let client = rt.client(unique("probe")).await.unwrap();
    assert_eq!(client.call::<u64>("counter", "start", ()).await.unwrap(), 0);
    rt.shutdown().await;

    // Defaults alone make the registry's constructor work.
    assert_eq!(Counter::construct().map(|c| c.start), Some(0));
    assert!(Sensor::construct().is_none(), "threshold has no default");
    assert_eq!(Sensor::config_type(), Some("SensorConfig"));
}

#[tokio::test]
async fn unknown_field_names_file_section_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("kitchen");
    let file = write(
        &dir,
        "agents.toml",
        &format!("[{id}]\nthreshold = 1.0\ntreshold = 2.0\n"),
    );
    let errors = bad(Runtime::memory()
        .config(
            Config::new()
                .file(&file)
                .unwrap()
                .vars(Vec::<(String, String)>::new()),
        )
        .configured_as::<Sensor>(&id)
        .start()
        .await);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "agent `{id}` (Sensor), field `treshold`: unknown field; expected one of `threshold`, `interval`, `label`, `limits` (from {}, section [{id}])",
            file.display()
        )
    );
}

#[tokio::test]
async fn wrong_type_names_the_variable() {
    let id = unique("hall");
    let var = format!("{}THRESHOLD", munggoggo::config::env_prefix(&id));
    let errors = bad(Runtime::memory()
        .config(Config::new().vars([(var.clone(), "warm".to_owned())]))
        .configured_as::<Sensor>(&id)
        .start()
        .await);
    assert_eq!(
        errors[0].to_string(),
        format!("agent `{id}` (Sensor), field `threshold`: invalid type: string \"warm\", expected f64 (from environment variable {var})")
    );
}

#[tokio::test]
async fn wrong_type_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("hall");
    let file = write(
        &dir,
        "agents.toml",
        &format!("[{id}]\nthreshold = 1.0\nlimits = {{ max = -1 }}\n"),
    );
    let errors = bad(Runtime::memory()
        .config(
            Config::new()
                .file(&file)
                .unwrap()
                .vars(Vec::<(String, String)>::new()),
        )
        .configured_as::<Sensor>(&id)
        .start()
        .await);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "agent `{id}` (Sensor), field `limits.max`: invalid value: integer `-1`, expected u32 (from {}, section [{id}])",
            file.display()
        )
    );
}

#[tokio::test]
async fn missing_value_and_nothing_starts_half_configured() {
    let dir = tempfile::tempdir().unwrap();
    let good = unique("good");
    let missing = unique("missing");
    let file = write(&dir, "agents.toml", &format!("[{good}]\nthreshold = 1.0\n"));
    let errors = bad(Runtime::memory()
        .config(
            Config::new()
                .file(&file)
                .unwrap()
                .vars(Vec::<(String, String)>::new()),
        )
        .configured_as::<Sensor>(&good)
        .configured_as::<Sensor>(&missing)
        .start()
        .await);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "agent `{missing}` (Sensor), field `threshold`: required and has no default: set it in the config file, as {}THRESHOLD or in code (config file {})",
            munggoggo::config::env_prefix(&missing),
            file.display()
        )
    );
    let started = STARTED.lock().unwrap();
    assert!(
        !started.contains(&good),
        "`{good}` started although `{missing}` was misconfigured"
    );
}

#[tokio::test]
async fn every_bad_agent_is_reported_at_once() {
    let (a, b) = (unique("a"), unique("b"));
    let errors = bad(Runtime::memory()
        .config(Config::new().vars(Vec::<(String, String)>::new()))
        .set(&a, "threshold", "high")
        .configured_as::<Sensor>(&a)
        .configured_as::<Sensor>(&b)
        .start()
        .await);
    let identities: Vec<&str> = errors.iter().map(|e| e.identity.as_str()).collect();
    assert_eq!(identities, [a.as_str(), b.as_str()]);
    let message = Error::BadConfig(errors).to_string();
    assert!(
        message.starts_with("invalid agent configuration, no agent started: agent `"),
        "{message}"
    );
    assert!(message.contains("(from code); agent `"), "{message}");
}

#[test]
fn bad_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "agents.toml", "[kitchen\nthreshold = 1\n");
    let message = Config::new().file(&file).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "configuration file {}: TOML parse error at line 1",
            file.display()
        )),
        "{message}"
    );

    let file = write(&dir, "agents.json", r#"{"kitchen": 3}"#);
    let message = Config::new().file(&file).unwrap_err().to_string();
    assert_eq!(
        message,
        format!("configuration file {}: `kitchen` must be a table of the fields of agent `kitchen`, e.g. `[kitchen]` in TOML", file.display())
    );

    let missing = dir.path().join("nope.toml");
    let message = Config::new().file(&missing).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("configuration file {}: ", missing.display())),
        "{message}"
    );
}

/// `run Sensor@<kitchen> Sensor@<hall> --config agents.toml`: two instances of
/// one type, each with the file's section of its identity; the hall's
/// label comes from the process environment.
#[cfg(feature = "cli")]
#[tokio::test]
async fn two_instances_through_the_launcher() {
    use clap::Parser;
    use munggoggo_cli::LauncherArgs;

    let dir = tempfile::tempdir().unwrap();
    let (kitchen, hall) = (unique("kitchen"), unique("hall"));
    let file = write(
        &dir,
        "agents.toml",
        &format!("[{kitchen}]\nthreshold = 21.5\n\n[{hall}]\nthreshold = 18.0\ninterval = \"10s\"\n"),
    );
    std::env::set_var(
        format!("{}LABEL", munggoggo::config::env_prefix(&hall)),
        "entrance",
    );
    let args = LauncherArgs::try_parse_from([
        "launcher".to_owned(),
        "run".to_owned(),
        format!("Sensor@{kitchen}"),
        format!("sensor@{hall}"),
        "--config".to_owned(),
        file.display().to_string(),
    ])
    .unwrap();
    let rt = args
        .runtime()
        .unwrap()
        .expect("`run` has a runtime")
        .start()
        .await
        .unwrap();
    let (k, h) = (config_of(&rt, &kitchen).await, config_of(&rt, &hall).await);
    assert_eq!(
        (k.threshold, k.interval.as_str(), k.label.as_str()),
        (21.5, "1s", "")
    );
    assert_eq!(
        (h.threshold, h.interval.as_str(), h.label.as_str()),
        (18.0, "10s", "entrance")
    );
    rt.shutdown().await;

    // A bad section fails the launch before any agent starts.
    let file = write(&dir, "bad.toml", &format!("[{kitchen}]\nthreshold = \"warm\"\n"));
    let args = LauncherArgs::try_parse_from([
        "launcher".to_owned(),
        "run".to_owned(),
        format!("Sensor@{kitchen}"),
        "--config".to_owned(),
        file.display().to_string(),
    ])
    .unwrap();
    let errors = bad(args
        .runtime()
        .unwrap()
        .expect("`run` has a runtime")
        .start()
        .await);
    assert_eq!(errors[0].field.as_deref(), Some("threshold"));
}
