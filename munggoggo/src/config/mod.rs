//! Typed agent configuration, filled in layers by identity.
//!
//! An agent type declares its configuration with `#[agent(config = T, new =
//! path)]`: `T` is a `serde::Deserialize` struct and `path` a function
//! `fn(T) -> Self`. When the runtime builds such an agent (the launcher's
//! `run`, [`Runtime::configured`](crate::Runtime::configured), the registry),
//! it fills `T` for the instance's identity from, lowest first:
//!
//! 1. the defaults of `T` (`#[serde(default)]` on the struct or its fields);
//! 2. the file given with `--config` or [`Config::file`], TOML (`.toml`) or
//!    JSON (any other name), one table per identity;
//! 3. environment variables `MUNGGOGGO_<IDENTITY>_<FIELD>` (identity and
//!    field upper-cased, every character that is not a letter or digit
//!    written `_`; `__` reaches into a nested table: `MUNGGOGGO_HALL_DB__PATH`);
//!    a value is read as JSON when it parses as JSON and the field takes it,
//!    else as a string;
//! 4. values set in code ([`Config::set`], [`Runtime::set`](crate::Runtime::set)).
//!
//! ```toml
//! # agents.toml: one table per identity
//! [kitchen]
//! threshold = 21.5
//!
//! [hall]
//! threshold = 18.0
//! interval = "10s"
//! ```
//!
//! An unknown field, a value of the wrong type or a missing required value
//! fails the start of the whole runtime, before any agent starts, with one
//! line per problem naming the identity, the field, what was expected and
//! where the value came from (the file and its section, the variable, or
//! the code).
//!
//! (A little over 400 lines, a tenth of them this guide; the tests live
//! in `tests.rs`.)

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod error;

pub use error::{ConfigError, Origin};

/// The prefix of configuration variables: `MUNGGOGGO_<IDENTITY>_<FIELD>`.
pub const ENV_PREFIX: &str = "MUNGGOGGO_";

/// The configuration layers of a runtime: a file, the environment and
/// values set in code. Cheap to build; nothing is read until an agent's
/// configuration is loaded, except the file, read by [`Config::file`].
#[derive(Clone, Default)]
pub struct Config {
    file: Option<FileLayer>,
    vars: Option<Vec<(String, String)>>,
    code: BTreeMap<String, Map<String, Value>>,
    /// Every identity configured in the same runtime, so that the variables
    /// of `sensor-hall` are not taken for a field `hall_...` of `sensor`.
    pub(crate) known: Vec<String>,
}

/// Shows where values come from, not the values (they may be secrets).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("file", &self.path())
            .field("sections", &self.sections())
            .field(
                "vars",
                &self.vars.as_ref().map_or("process environment", |_| "given"),
            )
            .field("code", &self.code.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Clone)]
struct FileLayer {
    path: PathBuf,
    sections: Map<String, Value>,
}

impl Config {
    /// Empty layers: defaults and the process environment only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the configuration file: TOML when its name ends in `.toml`,
    /// else JSON. Each top-level table configures the agent of that identity.
    pub fn file(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bad = |reason: String| Error::ConfigFile {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let value: Value = if is_toml {
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim_end().to_owned()))?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        let Value::Object(sections) = value else {
            return Err(bad("the top level must be a table of agent identities".to_owned()));
        };
        if let Some((name, _)) = sections.iter().find(|(_, v)| !v.is_object()) {
            return Err(bad(format!(
                "`{name}` must be a table of the fields of agent `{name}`, e.g. `[{name}]` in TOML"
            )));
        }
        self.file = Some(FileLayer { path, sections });
        Ok(self)
    }

    /// Sets a field of an agent's configuration in code, the highest layer.
    /// `key` may be dotted to reach into nested tables (`db.path`).
    pub fn set(mut self, identity: impl Into<String>, key: &str, value: impl Into<Value>) -> Self {
        let section = self.code.entry(identity.into()).or_default();
        insert_path(section, &key.split('.').collect::<Vec<_>>(), value.into());
        self
    }

    /// Uses these variables instead of the process environment (for tests
    /// and embedding).
    pub fn vars<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.vars = Some(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// The configuration file, if one was read.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// The identities the file has a section for.
    pub fn sections(&self) -> Vec<&str> {
        self.file
            .as_ref()
            .map(|f| f.sections.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Loads the configuration of `identity` (an agent of type `agent_type`,
    /// for messages) through every layer.
    pub fn load<T: DeserializeOwned>(
        &self,
        identity: &str,
        agent_type: &'static str,
    ) -> Result<T, ConfigError> {
        let mut merged = Layered::default();
        if let Some(file) = &self.file {
            if let Some(Value::Object(section)) = file.sections.get(identity) {
                let origin = Origin::File {
                    path: file.path.clone(),
                    section: identity.to_owned(),
                };
                merged.merge(section, &origin);
            }
        }
        for var in self.env_vars(identity) {
            merged.set_env(var);
        }
        if let Some(section) = self.code.get(identity) {
            merged.merge(section, &Origin::Code);
        }
        merged.deserialize(identity, agent_type, self.path())
    }

    /// `(variable, field path, raw value)` for `identity`, skipping the
    /// variables of a longer known identity with the same prefix.
    fn env_vars(&self, identity: &str) -> Vec<(String, Vec<String>, String)> {
        let prefix = env_prefix(identity);
        let longer: Vec<String> = self
            .known
            .iter()
            .map(|k| env_prefix(k))
            .filter(|p| p.len() > prefix.len() && p.starts_with(&prefix))
            .collect();
        let vars: Vec<(String, String)> = match &self.vars {
            Some(vars) => vars.clone(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        let mut found: Vec<(String, Vec<String>, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !longer.iter().any(|l| k.starts_with(l.as_str())))
            .filter_map(|(k, v)| {
                let path: Vec<String> = k[prefix.len()..]
                    .split("__")
                    .map(str::to_ascii_lowercase)
                    .collect();
                (!path.iter().any(String::is_empty)).then_some((k, path, v))
            })
            .collect();
        found.sort();
        found
    }
}

/// `MUNGGOGGO_<IDENTITY>_`.
pub fn env_prefix(identity: &str) -> String {
    let id: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{ENV_PREFIX}{id}_")
}

/// The merged layers with the origin of every value.
#[derive(Default)]
struct Layered {
    value: Map<String, Value>,
    origins: Vec<(String, Origin)>,
    /// Variables whose value was read as JSON: (dotted path, raw text).
    env_raw: Vec<(String, String)>,
}

impl Layered {
    fn merge(&mut self, section: &Map<String, Value>, origin: &Origin) {
        let mut leaves = Vec::new();
        collect_leaves(section, String::new(), &mut leaves);
        for (path, value) in leaves {
            let parts: Vec<&str> = path.split('.').collect();
            insert_path(&mut self.value, &parts, value);
            self.origins.push((path, origin.clone()));
        }
    }

    fn set_env(&mut self, (name, path, raw): (String, Vec<String>, String)) {
        let parsed = serde_json::from_str::<Value>(&raw)
            .ok()
            .filter(|v| !v.is_string());
        let dotted = path.join(".");
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        match parsed {
            Some(value) => {
                insert_path(&mut self.value, &parts, value);
                self.env_raw.push((dotted.clone(), raw));
            }
            None => insert_path(&mut self.value, &parts, Value::String(raw)),
        }
        self.origins.push((dotted, Origin::Env { var: name }));
    }

    /// The origin of the value at `path` (or of the nearest value under it).
    fn origin(&self, path: &str) -> Option<Origin> {
        self.origins
            .iter()
            .rev()
            .find(|(p, _)| {
                p == path || p.starts_with(&format!("{path}.")) || path.starts_with(&format!("{p}."))
            })
            .map(|(_, o)| o.clone())
    }

    fn deserialize<T: DeserializeOwned>(
        mut self,
        identity: &str,
        agent_type: &'static str,
        file: Option<&Path>,
    ) -> Result<T, ConfigError> {
        let error = |field: Option<String>, problem: String, origin: Option<Origin>| ConfigError {
            identity: identity.to_owned(),
            agent_type,
            field,
            problem,
            origin: origin.map(Box::new),
            file: file.map(Path::to_path_buf),
        };
        loop {
            let mut ignored: Vec<String> = Vec::new();
            let value = Value::Object(self.value.clone());
            let mut record = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
            let deserializer = serde_ignored::Deserializer::new(value, &mut record);
            let outcome = serde_path_to_error::deserialize::<_, T>(deserializer);
            let failure = match outcome {
                Ok(config) if ignored.is_empty() => return Ok(config),
                Ok(_) => None,
                Err(e) => {
                    let path = e.path().to_string();
                    // A variable read as JSON where the field wants its text: retry with the text.
                    if let Some(i) = self.env_raw.iter().position(|(p, _)| *p == path) {
                        let (dotted, raw) = self.env_raw.remove(i);
                        let parts: Vec<&str> = dotted.split('.').collect();
                        insert_path(&mut self.value, &parts, Value::String(raw));
                        continue;
                    }
                    Some((path, e.into_inner().to_string()))
                }
            };
            // An unknown field first: it is often a misspelt required one.
            if let Some(field) = ignored.into_iter().next() {
                let expected = match field_names::<T>() {
                    Some(names) if !names.is_empty() => format!(
                        "; expected one of {}",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                };
                let origin = self.origin(&field);
                return Err(error(Some(field), format!("unknown field{expected}"), origin));
            }
            let Some((path, message)) = failure else {
                unreachable!("a success with unknown fields returned above");
            };
            let missing = missing_field(&message);
            let (field, origin) = match missing {
                Some(name) if path == "." => (Some(name.to_owned()), None),
                Some(name) => (Some(format!("{path}.{name}")), None),
                None if path == "." => (None, None),
                None => (Some(path.clone()), self.origin(&path)),
            };
            let problem = match (&field, missing) {
                (Some(field), Some(_)) => format!(
                    "required and has no default: set it in the config file, as {}{} or in code",
                    env_prefix(identity),
                    field.replace('.', "__").to_ascii_uppercase()
                ),
                _ => message,
            };
            return Err(error(field, problem, origin));
        }
    }
}

/// `missing field `name`` -> `name`.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn collect_leaves(map: &Map<String, Value>, prefix: String, out: &mut Vec<(String, Value)>) {
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => collect_leaves(inner, path, out),
            other => out.push((path, other.clone())),
        }
    }
}

fn insert_path(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for part in parents {
        let slot = current
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(inner) = slot else {
            return;
        };
        current = inner;
    }
    current.insert((*last).to_owned(), value);
}

/// The field names of a struct `T`, as its `Deserialize` impl announces them.
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(probe::Probe(&mut fields));
    fields
}

mod probe {
    use serde::de::{self, Visitor};
    use serde::forward_to_deserialize_any;

    /// A deserializer that only records the field list of a struct.
    pub(super) struct Probe<'a>(pub(super) &'a mut Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("probe"))
        }

        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests;
