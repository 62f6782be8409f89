//! A private RabbitMQ node for tests that break their broker: its own node
//! name, ports, data folder and configuration, so that stopping, killing or
//! cutting it never touches the shared broker the other tests use. The node
//! stops and its folder goes when the [`Node`] is dropped.
//!
//! Needs `rabbitmq-server` and `rabbitmqctl` on the PATH (Debian's package;
//! run as root, the scripts start the node as the `rabbitmq` user, which is
//! why the folder is handed to that user).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start (slow under a loaded CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// TLS files of a node's TLS listener (PEM).
pub struct TlsFiles {
    pub ca_cert: String,
    pub cert: String,
    pub key: String,
}

/// A running private RabbitMQ node.
pub struct Node {
    name: String,
    dir: PathBuf,
    port: u16,
    tls_port: Option<u16>,
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl Node {
    /// [`Node::start`], or `None` with a notice when `rabbitmq-server` is
    /// not installed and `CI` is not set (with `CI` set, that fails).
    pub fn start_or_skip(tag: &str, tls: Option<&TlsFiles>) -> Option<Node> {
        Node::start_or_skip_with(tag, tls, "")
    }

    /// [`Node::start_or_skip`] with more lines for its `rabbitmq.conf`.
    pub fn start_or_skip_with(tag: &str, tls: Option<&TlsFiles>, conf_lines: &str) -> Option<Node> {
        let installed = Command::new("rabbitmq-server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            munggoggo_test_support::skip(format_args!(
                "no rabbitmq-server to start a private node for {tag} (apt-get install rabbitmq-server)"
            ));
            return None;
        }
        Some(Node::start_with(tag, tls, conf_lines))
    }

    /// Starts a node named after `tag` and this process; with `tls`, it
    /// also listens for TLS on [`Node::tls_url`]. Panics with the node's log
    /// when it does not come up.
    pub fn start(tag: &str, tls: Option<&TlsFiles>) -> Node {
        Node::start_with(tag, tls, "")
    }

    /// [`Node::start`] with more lines for its `rabbitmq.conf`.
    pub fn start_with(tag: &str, tls: Option<&TlsFiles>, conf_lines: &str) -> Node {
        let node = Node::prepare(tag, tls, conf_lines);
        node.boot();
        node
    }

    /// A node's folder and configuration, not started yet.
    fn prepare(tag: &str, tls: Option<&TlsFiles>, conf_lines: &str) -> Node {
        let name = format!("munggoggo-{tag}-{}@localhost", std::process::id());
        let dir = std::env::temp_dir().join(format!("munggoggo-node-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("log")).expect("node folder");
        let port = free_port();
        let mut conf = format!("listeners.tcp.local = 127.0.0.1:{port}\n{conf_lines}");
        let tls_port = tls.map(|files| {
            let tls_port = free_port();
            for (file, text) in [
                ("ca.pem", &files.ca_cert),
                ("cert.pem", &files.cert),
                ("key.pem", &files.key),
            ] {
                std::fs::write(dir.join(file), text).expect("TLS file");
            }
            conf.push_str(&format!(
                "listeners.ssl.local = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {0}/ca.pem\n\
                 ssl_options.certfile = {0}/cert.pem\n\
                 ssl_options.keyfile = {0}/key.pem\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                dir.display()
            ));
            tls_port
        });
        std::fs::write(dir.join("rabbitmq.conf"), conf).expect("node config");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("node plugins");
        // The Debian scripts run the node as `rabbitmq` when started by root.
        let _ = Command::new("chown").args(["-R", "rabbitmq"]).arg(&dir).status();
        Node {
            name,
            dir,
            port,
            tls_port,
        }
    }

    /// The folder's path as the node's environment names it.
    fn path(&self, leaf: &str) -> PathBuf {
        self.dir.join(leaf)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", self.path("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.path("log"))
            .env("RABBITMQ_PID_FILE", self.path("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.path("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", self.path("rabbitmq.conf"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", self.path("plugins-expand"))
            .stdin(Stdio::null());
        command
    }

    /// Starts the node's Erlang VM and waits until its AMQP listener answers.
    fn boot(&self) {
        self.launch();
        self.await_listening();
    }

    /// Starts the node's Erlang VM in the background.
    fn launch(&self) {
        let started = self
            .command("rabbitmq-server")
            .arg("-detached")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server runs (is RabbitMQ installed?)");
        assert!(started.success(), "rabbitmq-server -detached failed: {started}");
    }

    /// Waits until the node's AMQP listener answers.
    fn await_listening(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {} did not listen on {} within {START_TIMEOUT:?}; its log:\n{}",
                self.name,
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.path("log").join(format!("{}.log", self.name))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `amqp://` URL of the node (guest, default vhost).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `amqps://` URL of the node's TLS listener.
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("the node was started with TLS");
        format!("amqps://guest:guest@127.0.0.1:{port}/%2f")
    }

    /// The node's folder (its TLS files are there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's Erlang name (`munggoggo-<tag>-<pid>@localhost`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `127.0.0.1:<port>` of the AMQP listener.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `rabbitmqctl -n <node> args...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.tool("rabbitmqctl", args)
    }

    /// Runs `<tool> -q -n <node> args...`.
    pub fn tool(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool)
            .arg("-q")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} runs: {e}"))
    }

    fn ctl_ok(&self, args: &[&str]) {
        self.tool_ok("rabbitmqctl", args);
    }

    /// Runs one of RabbitMQ's tools (`rabbitmqctl`, `rabbitmq-queues`, ...)
    /// on the node; panics with its output when it fails.
    pub fn tool_ok(&self, tool: &str, args: &[&str]) {
        let out = self.tool(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} on {} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Closes every client connection, as a network cut or a broker
    /// operator would.
    pub fn close_all_connections(&self) {
        self.ctl_ok(&["close_all_connections", "munggoggo fault test"]);
    }

    /// Stops the whole node gracefully (queues and messages that are not
    /// durable and persistent are gone when it starts again).
    pub fn stop(&self) {
        let pid = std::fs::read_to_string(self.path("pid")).ok();
        self.ctl_ok(&["stop"]);
        // `rabbitmqctl stop` can return while the VM still exits (its rabbit
        // application stopped, its name and port still held): a start
        // before it is gone would meet the old VM (seen in CI as
        // `await_startup` answering rabbit_is_not_running).
        if let Some(pid) = pid {
            let alive = Path::new("/proc").join(pid.trim());
            let deadline = Instant::now() + Duration::from_secs(60);
            while alive.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                !alive.exists(),
                "node {} still runs 60 s after `rabbitmqctl stop`",
                self.name
            );
        }
    }

    /// Kills the node's VM with SIGKILL.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.path("pid")).expect("node pid file");
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 {pid} failed");
        // Wait until the port is free again, so that the restart can listen.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the node again on its folder, ports and configuration.
    pub fn start_again(&self) {
        self.boot();
    }

    /// Name and ready-message count of every queue on the node.
    pub fn queues(&self) -> Vec<(String, u64)> {
        let out = self.ctl(&["list_queues", "name", "messages", "--no-table-headers"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let stopped = self.ctl(&["stop"]);
        if !stopped.status.success() {
            if let Ok(pid) = std::fs::read_to_string(self.path("pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three private nodes joined in one RabbitMQ cluster (`rabbitmqctl
/// join_cluster`), each with its own name, ports and folder; the first
/// started node is the one the others join. Stopped and removed when
/// dropped. A node's index (0, 1, 2) names it in every method.
pub struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    /// [`Cluster::start`], or `None` with a notice when `rabbitmq-server`
    /// is not installed and `CI` is not set (with `CI` set, that fails).
    pub fn start_or_skip(tag: &str) -> Option<Cluster> {
        let installed = Command::new("rabbitmq-server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            munggoggo_test_support::skip(format_args!(
                "no rabbitmq-server to start a private cluster for {tag} (apt-get install rabbitmq-server)"
            ));
            return None;
        }
        Some(Cluster::start(tag))
    }

    /// Starts three nodes named after `tag` (the three VMs boot together)
    /// and joins the second and third to the first. Panics with the logs
    /// when they do not come up or join.
    pub fn start(tag: &str) -> Cluster {
        let nodes: Vec<Node> = (0..3)
            .map(|i| Node::prepare(&format!("{tag}-{i}"), None, ""))
            .collect();
        for node in &nodes {
            node.launch();
        }
        for node in &nodes {
            node.await_listening();
        }
        let cluster = Cluster { nodes };
        let first = cluster.nodes[0].name.clone();
        for node in &cluster.nodes[1..] {
            node.ctl_ok(&["stop_app"]);
            node.ctl_ok(&["reset"]);
            node.ctl_ok(&["join_cluster", &first]);
            node.ctl_ok(&["start_app"]);
            node.await_listening();
        }
        let status = cluster.nodes[0].ctl(&["cluster_status", "--formatter", "json"]);
        let status = String::from_utf8_lossy(&status.stdout);
        for node in &cluster.nodes {
            assert!(
                status.contains(&node.name),
                "{} is not in the cluster: {status}",
                node.name
            );
        }
        cluster
    }

    /// A node of the cluster.
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The URL naming the three nodes (guest, default vhost), `first`
    /// first and the others after it in turn: a client starts on `first`.
    pub fn url_from(&self, first: usize) -> String {
        let addresses: Vec<String> = (0..3).map(|i| self.nodes[(first + i) % 3].address()).collect();
        format!("amqp://guest:guest@{}/%2f", addresses.join(","))
    }

    /// The URL naming the three nodes in order.
    pub fn url(&self) -> String {
        self.url_from(0)
    }

    /// Stops node `index` gracefully.
    pub fn stop(&self, index: usize) {
        self.nodes[index].stop();
    }

    /// Kills node `index`'s VM with SIGKILL.
    pub fn kill(&self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again; it rejoins the cluster on its own. Waits
    /// until it has booted completely.
    pub fn start_again(&self, index: usize) {
        let node = &self.nodes[index];
        node.boot();
        node.ctl_ok(&["await_startup"]);
    }

    /// Cuts node `index` off from clients: its listeners refuse new
    /// connections and its client connections are closed, while it stays
    /// in the cluster (and keeps its queue replicas).
    pub fn cut_off(&self, index: usize) {
        let node = &self.nodes[index];
        node.ctl_ok(&["suspend_listeners"]);
        node.close_all_connections();
    }

    /// Lets clients connect to node `index` again after [`Cluster::cut_off`].
    pub fn reconnect(&self, index: usize) {
        self.nodes[index].ctl_ok(&["resume_listeners"]);
    }

    /// Pauses node `index`'s VM (SIGSTOP): its sockets stay open and
    /// silent, as with a host that hangs or a network that drops packets.
    pub fn pause(&self, index: usize) {
        self.signal(index, "-STOP");
    }

    /// Lets node `index`'s VM run again after [`Cluster::pause`] (SIGCONT).
    pub fn resume(&self, index: usize) {
        self.signal(index, "-CONT");
    }

    fn signal(&self, index: usize, signal: &str) {
        let pid = std::fs::read_to_string(self.nodes[index].path("pid")).expect("node pid file");
        let status = Command::new("kill")
            .args([signal, pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// The index of the node that leads quorum queue `queue`, asked of a
    /// running node other than `not` (if given).
    pub fn leader_of(&self, queue: &str, not: Option<usize>) -> Option<usize> {
        let asked = (0..3).find(|i| Some(*i) != not)?;
        let out = self.nodes[asked].ctl(&["list_queues", "name", "leader", "--no-table-headers"]);
        let listing = String::from_utf8_lossy(&out.stdout);
        let leader = listing.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == queue).then(|| words.next().map(str::to_owned))?
        })?;
        self.nodes.iter().position(|node| node.name == leader)
    }

    /// Waits (up to `within`) until stopping node `index` would leave every
    /// quorum queue with a majority of its members online, as a rolling
    /// restart does before it takes the next node down.
    pub fn await_not_quorum_critical(&self, index: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let out = self.nodes[index].tool("rabbitmq-queues", &["check_if_node_is_quorum_critical"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} is still quorum-critical after {within:?}: {}{}",
                self.nodes[index].name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What the nodes say of the queues and their consumers, for a failed
    /// case's message.
    pub fn describe_queues(&self) -> String {
        let mut text = String::new();
        for args in [
            &[
                "list_queues",
                "name",
                "type",
                "leader",
                "members",
                "messages_ready",
                "messages_unacknowledged",
                "consumers",
            ][..],
            &[
                "list_consumers",
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "ack_required",
                "prefetch_count",
                "active",
                "activity_status",
            ][..],
            &["list_connections", "name", "peer_port", "state", "channels"][..],
        ] {
            for node in &self.nodes {
                let out = node.ctl(args);
                text.push_str(&format!(
                    "{} {}:\n{}{}\n",
                    node.name,
                    args[0],
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        text
    }

    /// Name and ready-message count of every queue of the cluster.
    pub fn queues(&self) -> Vec<(String, u64)> {
        self.nodes[0].queues()
    }

    /// The names of the cluster's classic queues.
    pub fn classic_queues(&self) -> Vec<String> {
        let out = self.nodes[0].ctl(&["list_queues", "name", "type", "--no-table-headers"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?;
                (words.next()? == "classic").then(|| name.to_owned())
            })
            .collect()
    }
}
