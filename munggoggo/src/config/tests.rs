//! The configuration layers, their precedence and their errors.

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
struct Sensor {
    threshold: f64,
    #[serde(default = "interval")]
    interval: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    db: Db,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
struct Db {
    #[serde(default)]
    path: String,
}

fn interval() -> String {
    "1s".to_owned()
}

fn no_vars() -> Config {
    Config::new().vars(Vec::<(String, String)>::new())
}

#[test]
fn code_layer_and_defaults() {
    let config = no_vars()
        .set("kitchen", "threshold", 3.5)
        .set("kitchen", "db.path", "x.db");
    let sensor: Sensor = config.load("kitchen", "Sensor").unwrap();
    assert_eq!(sensor.threshold, 3.5);
    assert_eq!(sensor.interval, "1s");
    assert_eq!(sensor.db.path, "x.db");
}

#[test]
fn env_values_are_json_or_text() {
    let config = Config::new().vars([
        ("MUNGGOGGO_HALL_THRESHOLD", "2"),
        ("MUNGGOGGO_HALL_LABEL", "123"),
        ("MUNGGOGGO_HALL_DB__PATH", "true"),
        ("MUNGGOGGO_HALL_SOUTH_THRESHOLD", "9"),
    ]);
    let mut config = config;
    config.known = vec!["hall".to_owned(), "hall-south".to_owned()];
    let sensor: Sensor = config.load("hall", "Sensor").unwrap();
    assert_eq!(sensor.threshold, 2.0);
    assert_eq!(sensor.label, "123");
    assert_eq!(sensor.db.path, "true");
}

#[test]
fn errors_name_field_and_origin() {
    let config = Config::new().vars([("MUNGGOGGO_HALL_THRESHOLD", "warm")]);
    let e = config.load::<Sensor>("hall", "Sensor").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("threshold"));
    assert!(e.problem.contains("expected f64"), "{e}");
    assert_eq!(
        e.origin.as_deref(),
        Some(&Origin::Env {
            var: "MUNGGOGGO_HALL_THRESHOLD".to_owned()
        })
    );

    let e = no_vars()
        .set("hall", "treshold", 1)
        .load::<Sensor>("hall", "Sensor")
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("treshold"));
    assert!(
        e.problem
            .starts_with("unknown field; expected one of `threshold`"),
        "{e}"
    );
    assert_eq!(e.origin.as_deref(), Some(&Origin::Code));

    let e = no_vars().load::<Sensor>("hall", "Sensor").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("threshold"));
    assert_eq!(
        e.to_string(),
        "agent `hall` (Sensor), field `threshold`: required and has no default: set it in the config file, as MUNGGOGGO_HALL_THRESHOLD or in code (no config file given)"
    );
}
