//! What munggoggo's test suites share.
//!
//! - [`broker_url`]: the URL of a RabbitMQ vhost that belongs to this test
//!   process alone, made with `rabbitmqctl` on first use and deleted when the
//!   process ends, so a user's agents on the same broker never see the suite
//!   (no message, no peer, no dead letter).
//! - [`Vhost`]: one more vhost of a test's own, deleted when dropped.
//! - [`skip`]: the one way a test says it cannot run here. Outside CI it
//!   prints `SKIPPED <test>: <what is missing>` to stderr (past libtest's
//!   capture) and records it for `cargo xtask test`'s summary; with `CI` set
//!   it fails the test instead.
//!
//! The broker comes from `MUNGGOGGO_TEST_URL` (default
//! [`LOCAL_BROKER`]). A URL whose vhost is not the default one (`/`,
//! written `%2f`) is used as given: a vhost you made for the run. For the
//! default vhost the suite never uses it; it makes its own instead.

use std::fmt::Display;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The broker the tests use when `MUNGGOGGO_TEST_URL` is not set.
pub const LOCAL_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Names the file where [`skip`] records skipped tests (set by `cargo xtask test`).
pub const SKIP_LOG: &str = "MUNGGOGGO_SKIP_LOG";

/// The broker URL as the user gave it: `MUNGGOGGO_TEST_URL` or [`LOCAL_BROKER`].
pub fn given_url() -> String {
    std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| LOCAL_BROKER.to_owned())
}

/// The URL of this process's own vhost on the test broker, or why there is
/// none (no `rabbitmqctl`, a refused `add_vhost`).
///
/// The vhost is made once per process and deleted when the process ends,
/// by a watcher process (a test binary has no teardown of its own, and
/// statics are never dropped). Child processes of a test get the URL from
/// the test, never make their own.
pub fn broker_url() -> Result<String, String> {
    static RUN: OnceLock<Result<String, String>> = OnceLock::new();
    RUN.get_or_init(|| {
        let given = given_url();
        let url = BrokerUrl::parse(&given)?;
        if !url.is_default_vhost() {
            return Ok(given);
        }
        let name = format!("munggoggo-test-{}-{}", process_name(), std::process::id());
        add_vhost(&name, url.user())?;
        delete_when_process_ends(&name)?;
        Ok(url.with_vhost(&name))
    })
    .clone()
}

/// A vhost of a test's own, beside [`broker_url`]'s (for a test that checks
/// what a whole vhost holds, such as its dead-letter queue). Deleted when
/// dropped, and when the process ends if it is never dropped.
#[derive(Debug)]
pub struct Vhost {
    name: String,
    url: String,
}

impl Vhost {
    /// Makes the vhost `munggoggo-test-<tag>-<pid>` on the test broker.
    pub fn create(tag: &str) -> Result<Vhost, String> {
        let given = given_url();
        let url = BrokerUrl::parse(&given)?;
        let name = format!("munggoggo-test-{tag}-{}", std::process::id());
        add_vhost(&name, url.user())?;
        delete_when_process_ends(&name)?;
        Ok(Vhost {
            url: url.with_vhost(&name),
            name,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL, with the test broker's address and credentials.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// Says that the running test cannot run here and why (`what` names what is
/// missing and how to get it). With `CI` set this panics: CI must run
/// everything. Elsewhere it writes `SKIPPED <test>: <what>` straight to
/// stderr (libtest would hide `eprintln!` unless `--nocapture`) and records
/// the skip for `cargo xtask test`, whose summary counts it. The caller
/// returns right after.
pub fn skip(what: impl Display) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but this test cannot run: {what}");
    }
    note_skip(what);
}

/// Prints and records a skip.
fn note_skip(what: impl Display) {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_owned)
        .or_else(|| std::env::args().next())
        .unwrap_or_else(|| "a test".to_owned());
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {what}");
    if let Some(log) = std::env::var_os(SKIP_LOG) {
        // One line per skip, written at once: several test processes append.
        let what = what.to_string().replace('\n', " ");
        let line = format!("{}\t{test}\t{what}\n", process_name());
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = appended {
            let _ = writeln!(std::io::stderr().lock(), "cannot record the skip: {e}");
        }
    }
}

/// Says that an opt-in test is skipped because the environment variable
/// `var` (naming `what`) is not set: printed and recorded like [`skip`], but
/// also in CI, where what it needs is not at hand either.
pub fn skip_opt_in(var: &str, what: &str) {
    note_skip(format_args!("opt-in: set {var} to {what}"));
}

/// [`broker_url`], or `None` after a [`skip`] that says why.
pub fn broker_url_or_skip() -> Option<String> {
    match broker_url() {
        Ok(url) => Some(url),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// Hides the password of an AMQP URL, for messages.
pub fn redact(url: &str) -> String {
    match BrokerUrl::parse(url) {
        Ok(parsed) => parsed.redacted(),
        Err(_) => "<an unreadable URL>".to_owned(),
    }
}

/// The test binary's name without cargo's hash: `agents` for `agents-1a2b...`.
fn process_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .unwrap_or("test");
    let name = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => stem,
    };
    name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "-")
}

fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`rabbitmqctl` cannot run ({e})"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`rabbitmqctl {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

fn add_vhost(name: &str, user: &str) -> Result<(), String> {
    let hint = "the suite runs in a vhost of its own, made with rabbitmqctl; \
                or set MUNGGOGGO_TEST_URL to a vhost you made for it";
    rabbitmqctl(&["add_vhost", name]).map_err(|e| format!("{e}; {hint}"))?;
    rabbitmqctl(&["set_permissions", "-p", name, user, ".*", ".*", ".*"]).map_err(|e| {
        let _ = rabbitmqctl(&["delete_vhost", name]);
        format!("{e}; {hint}")
    })
}

/// Starts a watcher, in a process group of its own (a Ctrl-C of the test run
/// does not stop it), that deletes the vhost once this process is gone.
fn delete_when_process_ends(name: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    const WATCH: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
rabbitmqctl delete_vhost "$2" >/dev/null 2>&1"#;
    Command::new("sh")
        .args(["-c", WATCH, "munggoggo-test-vhost"])
        .arg(std::process::id().to_string())
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| {
            let _ = rabbitmqctl(&["delete_vhost", name]);
            format!("cannot start the watcher that deletes the vhost {name}: {e}")
        })
}

/// The parts of `amqp[s]://user:password@host:port/vhost?query` the suite needs.
struct BrokerUrl<'a> {
    /// `amqp://user:password@host:port`
    root: &'a str,
    user: &'a str,
    password: Option<&'a str>,
    /// Still percent-encoded, empty when the URL has no path.
    vhost: &'a str,
    /// With its `?`, or empty.
    query: &'a str,
}

impl<'a> BrokerUrl<'a> {
    fn parse(url: &'a str) -> Result<BrokerUrl<'a>, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "MUNGGOGGO_TEST_URL is not an amqp:// URL".to_owned())?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let root = &url[..scheme.len() + 3 + authority_end];
        let tail = &rest[authority_end..];
        let (path, query) = match tail.find('?') {
            Some(at) => (&tail[..at], &tail[at..]),
            None => (tail, ""),
        };
        let (user, password) = match authority.rsplit_once('@') {
            Some((userinfo, _)) => match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            },
            None => ("guest", None),
        };
        Ok(BrokerUrl {
            root,
            user,
            password,
            vhost: path.strip_prefix('/').unwrap_or(path),
            query,
        })
    }

    fn user(&self) -> &str {
        self.user
    }

    /// `/`, written `%2f`, or no path at all (which AMQP clients read as `/`).
    fn is_default_vhost(&self) -> bool {
        self.vhost.is_empty() || self.vhost.eq_ignore_ascii_case("%2f")
    }

    fn with_vhost(&self, vhost: &str) -> String {
        format!("{}/{vhost}{}", self.root, self.query)
    }

    fn redacted(&self) -> String {
        let root = match self.password {
            Some(password) if !password.is_empty() => {
                self.root.replacen(&format!(":{password}@"), ":***@", 1)
            }
            _ => self.root.to_owned(),
        };
        format!("{root}/{}{}", self.vhost, self.query)
    }
}

#[cfg(test)]
mod tests {
    use super::BrokerUrl;

    #[test]
    fn the_default_vhost_is_replaced_and_the_rest_kept() {
        let url = BrokerUrl::parse("amqp://u:p@h:1/%2f?heartbeat=5").unwrap();
        assert!(url.is_default_vhost());
        assert_eq!(url.user(), "u");
        assert_eq!(url.with_vhost("t"), "amqp://u:p@h:1/t?heartbeat=5");
        assert_eq!(url.redacted(), "amqp://u:***@h:1/%2f?heartbeat=5");
        assert!(BrokerUrl::parse("amqp://h:1").unwrap().is_default_vhost());
        assert!(BrokerUrl::parse("amqp://h:1/?x=1").unwrap().is_default_vhost());
        let own = BrokerUrl::parse("amqp://h:1/mine").unwrap();
        assert!(!own.is_default_vhost());
        assert_eq!(own.user(), "guest");
    }
}
