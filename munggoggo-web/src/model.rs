//! What the dashboard shows and takes: the JSON bodies of the API, the
//! WebSocket events, and their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use munggoggo::{AgentDescription, PeerStatus};

/// An agent on the bus as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct AgentView {
    /// Its identity (a replica's own name).
    pub name: String,
    /// The identity its group of replicas shares, for a replica of a
    /// replicated agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its state: `init`, `running`, `stopping`, `shutdown` or `crashed`.
    pub state: String,
    /// Its Rust type name; `None` for a munggoggo 0.4 agent.
    pub agent_type: Option<String>,
    /// `rust` for an agent that describes itself, `0.4` for one that only
    /// answers the peer ping (a munggoggo 0.4 agent).
    pub flavour: String,
    /// Its behaviours and handlers.
    pub behaviours: Vec<BehaviourView>,
    /// Its `#[rpc]` methods.
    pub methods: Vec<MethodView>,
    /// Messages its handlers took per second over the last 10 seconds (or
    /// three refresh intervals, when longer); `None` until the dashboard
    /// has looked at it twice.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The median time its handlers took over the same window, in
    /// milliseconds; `None` when none ran in it or when the agent's runtime
    /// collects no metrics (handlers are timed only with feature `metrics`
    /// and a runtime with `.metrics(...)` or `.metrics_listener(...)`).
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// The 99th percentile of the same, in milliseconds.
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

/// One behaviour or handler of an [`AgentView`]. Fields a munggoggo 0.4
/// agent does not report are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct BehaviourView {
    /// The full name, `<agent>.<method>`.
    pub name: String,
    /// The method name (the full name without the agent's prefix).
    pub method: String,
    /// Its state.
    pub state: String,
    /// `periodic`, `oneshot`, `delay`, `cyclic`, `message`, `topic` or `fallback`.
    pub kind: Option<String>,
    /// The kind in words: `periodic every 1s`, `on message Pong`, ...
    pub detail: Option<String>,
    /// The message type a `message` handler takes.
    pub message_type: Option<String>,
    /// The binding keys of a `topic` handler.
    pub topics: Vec<String>,
    /// Completed runs or handled messages.
    pub runs: Option<u64>,
    /// Failed runs or messages.
    pub errors: Option<u64>,
    /// The last error.
    pub last_error: Option<String>,
    /// A state machine's states and where it is now (`#[fsm]`); `None`
    /// for other behaviours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineView>,
    /// Runs (or messages) per second over the window of [`AgentView::rate`].
    #[serde(default)]
    pub rate: Option<f64>,
    /// The median run time over that window, in milliseconds (see
    /// [`AgentView::p50_ms`] for when it is known).
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// The 99th percentile run time over that window, in milliseconds.
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

/// A state machine of a [`BehaviourView`]: the page draws its states, the
/// current one highlighted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct MachineView {
    /// The enum's name.
    pub name: String,
    /// Its states, in declaration order.
    pub states: Vec<StateView>,
    /// The initial state.
    pub initial: String,
    /// What `start` does after a stop: `resume` or `initial`.
    pub restart: String,
    /// The current state.
    pub state: String,
    /// When it entered the current state, in milliseconds since the Unix epoch.
    pub entered_ms: u64,
    /// Transitions taken since the agent started.
    pub transitions: u64,
}

/// One state of a [`MachineView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct StateView {
    /// Its name.
    pub name: String,
    /// The states it may go to.
    pub to: Vec<String>,
    /// After this many milliseconds in the state, it goes to `timeout_to`.
    pub timeout_ms: Option<u64>,
    /// Where its timeout goes.
    pub timeout_to: Option<String>,
    /// Reaching it finishes the machine.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl From<munggoggo::fsm::MachineDescription> for MachineView {
    fn from(m: munggoggo::fsm::MachineDescription) -> Self {
        MachineView {
            name: m.name,
            states: m
                .states
                .into_iter()
                .map(|s| {
                    let (timeout_ms, timeout_to) = s.timeout.unzip();
                    StateView {
                        name: s.name,
                        to: s.to,
                        timeout_ms,
                        timeout_to,
                        is_final: s.is_final,
                    }
                })
                .collect(),
            initial: m.initial,
            restart: m.restart,
            state: m.current.state,
            entered_ms: m.current.entered_ms,
            transitions: m.current.transitions,
        }
    }
}

/// One `#[rpc]` method of an [`AgentView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct MethodView {
    /// The method's name.
    pub name: String,
    /// Its parameter names, in order.
    pub params: Vec<String>,
}

impl AgentView {
    /// The view of an agent that described itself.
    pub(crate) fn described(d: AgentDescription) -> Self {
        let prefix = format!("{}.", d.name);
        AgentView {
            group: d.group,
            state: d.state.as_str().to_owned(),
            agent_type: Some(d.agent_type),
            flavour: "rust".to_owned(),
            behaviours: d
                .behaviours
                .into_iter()
                .map(|b| BehaviourView {
                    method: b.name.strip_prefix(&prefix).unwrap_or(&b.name).to_owned(),
                    name: b.name,
                    state: b.state.as_str().to_owned(),
                    kind: Some(b.kind),
                    detail: Some(b.detail),
                    message_type: b.message_type,
                    topics: b.topics,
                    runs: Some(b.runs),
                    errors: Some(b.errors),
                    last_error: b.last_error,
                    machine: b.machine.map(MachineView::from),
                    rate: None,
                    p50_ms: None,
                    p99_ms: None,
                })
                .collect(),
            methods: d
                .methods
                .into_iter()
                .map(|m| MethodView {
                    name: m.name,
                    params: m.params,
                })
                .collect(),
            name: d.name,
            rate: None,
            p50_ms: None,
            p99_ms: None,
        }
    }

    /// The view of an agent known only by its pong (a 0.4 agent, or one
    /// that did not answer `DescribeAgent` in time: then what `previous`
    /// knew about it stays).
    pub(crate) fn from_pong(status: &PeerStatus, previous: Option<&AgentView>) -> Self {
        let prefix = format!("{}.", status.name);
        let old = |name: &str| previous.and_then(|p| p.behaviours.iter().find(|b| b.name == name));
        AgentView {
            name: status.name.clone(),
            group: status.group.clone(),
            state: status.state.clone(),
            agent_type: previous.and_then(|p| p.agent_type.clone()),
            flavour: previous.map_or_else(|| "0.4".to_owned(), |p| p.flavour.clone()),
            behaviours: status
                .behaviours
                .iter()
                .map(|b| {
                    let old = old(&b.name);
                    BehaviourView {
                        name: b.name.clone(),
                        method: b.name.strip_prefix(&prefix).unwrap_or(&b.name).to_owned(),
                        state: b.state.clone(),
                        kind: old.and_then(|o| o.kind.clone()),
                        detail: old.and_then(|o| o.detail.clone()),
                        message_type: old.and_then(|o| o.message_type.clone()),
                        topics: old.map(|o| o.topics.clone()).unwrap_or_default(),
                        runs: old.and_then(|o| o.runs),
                        errors: old.and_then(|o| o.errors),
                        last_error: old.and_then(|o| o.last_error.clone()),
                        machine: old.and_then(|o| o.machine.clone()),
                        rate: None,
                        p50_ms: None,
                        p99_ms: None,
                    }
                })
                .collect(),
            methods: previous.map(|p| p.methods.clone()).unwrap_or_default(),
            rate: None,
            p50_ms: None,
            p99_ms: None,
        }
    }

    /// An agent with nothing yet (for tests).
    #[cfg(test)]
    pub(crate) fn blank(name: &str) -> Self {
        AgentView {
            name: name.to_owned(),
            group: None,
            state: "running".to_owned(),
            agent_type: None,
            flavour: "rust".to_owned(),
            behaviours: Vec::new(),
            methods: Vec::new(),
            rate: None,
            p50_ms: None,
            p99_ms: None,
        }
    }

    /// The behaviour called `name` (full or method name).
    pub(crate) fn behaviour(&self, name: &str) -> Option<&BehaviourView> {
        self.behaviours
            .iter()
            .find(|b| b.name == name)
            .or_else(|| self.behaviours.iter().find(|b| b.method == name))
    }
}

impl BehaviourView {
    /// Whether it handles messages (rather than running on a schedule).
    pub(crate) fn is_handler(&self) -> bool {
        matches!(self.kind.as_deref(), Some("message" | "topic" | "fallback"))
    }

    /// A behaviour with its kind and runs (for tests).
    #[cfg(test)]
    pub(crate) fn blank(name: &str, kind: &str, runs: Option<u64>) -> Self {
        BehaviourView {
            name: name.to_owned(),
            method: name.rsplit('.').next().unwrap_or(name).to_owned(),
            state: "running".to_owned(),
            kind: Some(kind.to_owned()),
            detail: None,
            message_type: None,
            topics: Vec::new(),
            runs,
            errors: Some(0),
            last_error: None,
            machine: None,
            rate: None,
            p50_ms: None,
            p99_ms: None,
        }
    }
}

/// `GET /api/peers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeersResponse {
    /// The agents on the bus, sorted by name.
    pub peers: Vec<AgentView>,
}

/// `GET /api/info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InfoResponse {
    /// munggoggo's version.
    pub version: String,
    /// The dashboard's own identity on the bus.
    pub identity: String,
    /// Whether changing endpoints need `Authorization: Bearer <token>`.
    pub auth_required: bool,
    /// The bus, with any password hidden.
    pub bus: String,
}

/// One message of an agent's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TraceView {
    /// The agent whose trace it is.
    pub agent: String,
    /// When it was traced, in seconds since the Unix epoch.
    pub time: f64,
    /// `incoming`, `outgoing`, `rejected` or the behaviour it was handed to.
    pub category: String,
    /// The message type (the AMQP `type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The sender.
    pub from: String,
    /// The receiver: an identity, `fanout` or `publish` (a topic).
    pub to: String,
    /// The routing key: an identity, `admin` or the topic.
    pub routing_key: String,
    /// The body as text.
    pub body: String,
    /// Why it was rejected or its handler failed.
    pub reason: Option<String>,
    /// What an RPC request or reply (type `RPC`) carries, read from its
    /// envelope; `None` for other messages and for a body the trace cut.
    pub rpc: Option<RpcView>,
}

/// An RPC request or reply of a [`TraceView`], read from its envelope. A
/// reply repeats its request (an `RpcCall` reply still holds the
/// parameters): `data` is the part that answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[non_exhaustive]
pub struct RpcView {
    /// The envelope's `c_type`: `RpcCall` (an `#[rpc]` method), `ManageBehav`,
    /// `ListBehav`, `Pong`, `RpcError`, ...
    pub request: String,
    /// Whether it is a reply (`request_type` 2, or an `RpcError`).
    pub reply: bool,
    /// The method of an `RpcCall`.
    pub method: Option<String>,
    /// Of a request: the parameters of an `RpcCall`, else the decoded
    /// `c_data`. Of a reply: the result of an `RpcCall`, else the decoded
    /// `c_data` (`null` when the reply is an error).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Why the call failed: the `error` of an `RpcCall` or `RpcError` reply.
    pub error: Option<String>,
}

impl RpcView {
    /// Reads the RpcMessage envelope `{"c_type", "c_data", "request_type"}`
    /// of an RPC body; `None` when it is not one.
    fn parse(body: &str) -> Option<RpcView> {
        let envelope: Value = serde_json::from_str(body).ok()?;
        let request = envelope.get("c_type")?.as_str()?.to_owned();
        let c_data = envelope.get("c_data")?.as_str()?;
        // `c_data` is JSON text, but for a trace listing (left out of traces).
        let data = serde_json::from_str(c_data).unwrap_or_else(|_| Value::String(c_data.to_owned()));
        let reply = envelope.get("request_type").and_then(Value::as_i64) == Some(2) || request == "RpcError";
        let text = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
        let error = if request == "RpcCall" || request == "RpcError" {
            text("error")
        } else {
            None
        };
        let method = if request == "RpcCall" {
            text("method")
        } else {
            None
        };
        let data = match (request.as_str(), reply) {
            ("RpcCall", false) => data.get("params").cloned().unwrap_or(Value::Null),
            ("RpcCall", true) => data.get("result").cloned().unwrap_or(Value::Null),
            ("RpcError", _) => Value::Null,
            _ => data,
        };
        Some(RpcView {
            request,
            reply,
            method,
            data,
            error,
        })
    }
}

impl TraceView {
    /// Reads one 0.4 trace entry, `[epoch seconds, record, category]`, of
    /// agent `agent`'s trace; `None` when it is not one.
    pub(crate) fn parse(agent: &str, entry: &Value) -> Option<TraceView> {
        let entry = entry.as_array()?;
        let time = entry.first()?.as_f64()?;
        let record = entry.get(1)?;
        let category = entry.get(2)?.as_str()?.to_owned();
        let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default();
        let app_id = field("app_id");
        let target = field("target");
        let outgoing = app_id.is_empty() && !target.is_empty();
        let (from, to) = if outgoing {
            (agent.to_owned(), target.to_owned())
        } else {
            (app_id.to_owned(), agent.to_owned())
        };
        let kind = field("type");
        let body = field("body");
        Some(TraceView {
            agent: agent.to_owned(),
            time,
            category,
            kind: kind.to_owned(),
            from,
            to,
            routing_key: field("routing_key").to_owned(),
            body: body.to_owned(),
            reason: record.get("reason").and_then(Value::as_str).map(str::to_owned),
            rpc: (kind == munggoggo::message::RPC)
                .then(|| RpcView::parse(body))
                .flatten(),
        })
    }
}

/// `GET /api/agents/{agent}/traces`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TracesResponse {
    /// The agent.
    pub agent: String,
    /// Its entries, oldest first.
    pub traces: Vec<TraceView>,
}

/// The filters of `GET /api/agents/{agent}/traces`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceParams {
    /// At most this many of the newest entries.
    pub limit: Option<usize>,
    /// Only messages from this sender.
    pub sender: Option<String>,
    /// Only this category: `incoming`, `outgoing`, `rejected` or a behaviour's full name.
    pub category: Option<String>,
    /// Also the system requests of munggoggo's own tools (dashboards, the
    /// CLI) and their replies, left out by default.
    #[serde(default)]
    pub tools: bool,
}

/// The reply to starting or stopping a behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManageResponse {
    /// The agent.
    pub agent: String,
    /// The behaviour's full name.
    pub behaviour: String,
    /// `start` or `stop`.
    pub command: String,
    /// The agent's answer, as munggoggo 0.4 words it (`agent1.ping stopped: init`).
    pub result: String,
    /// The behaviour's state after the command.
    pub state: String,
}

/// A message to send to one agent or to every agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendRequest {
    /// The message type (the AMQP `type`), such as `Ping`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The body: a JSON value, sent as its JSON text (a string is sent as it is).
    #[schema(value_type = Object)]
    pub body: Value,
}

/// A message to publish on a topic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishRequest {
    /// The topic (routing key), such as `sensors.kitchen`.
    pub topic: String,
    /// The message type; `PUBSUB` (as 0.4's publish) when left out.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The body: a JSON value, sent as its JSON text (a string is sent as it is).
    #[schema(value_type = Object)]
    pub body: Value,
}

/// What was sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SentResponse {
    /// `send`, `broadcast` or `publish`.
    pub sent: String,
    /// The receiver of a send.
    pub to: Option<String>,
    /// The topic of a publish.
    pub topic: Option<String>,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The size of the body in bytes.
    pub bytes: usize,
}

/// A call of an `#[rpc]` method.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallRequest {
    /// The method's name.
    pub method: String,
    /// The parameters: an array (positional) or an object (named).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Value,
}

/// The result of a call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallResponse {
    /// The agent.
    pub agent: String,
    /// The method.
    pub method: String,
    /// What the method returned.
    #[schema(value_type = Object)]
    pub result: Value,
}

/// The reply to a shutdown request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShutdownResponse {
    /// The agent.
    pub agent: String,
    /// Its answer, such as `Shutdown of agent1 initiated.`.
    pub result: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `bad_request`, `unauthorized`, `unknown_agent`,
    /// `unknown_behaviour`, `unknown_method`, `bad_params`, `too_large`,
    /// `unsupported_media_type`, `forbidden_host`, `not_found`,
    /// `method_not_allowed`, `timeout`, `call_failed`, `bus`.
    pub code: String,
    /// The message, in words.
    pub message: String,
    /// The names that would have been known (agents, behaviours, methods).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
}

/// What the WebSocket at `GET /ws` pushes, one JSON text frame each.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Everything at once: sent first, and again after a client fell behind.
    Snapshot {
        /// The agents.
        peers: Vec<AgentView>,
        /// The latest messages, oldest first.
        traces: Vec<TraceView>,
    },
    /// An agent joined or changed (a behaviour started or stopped, a counter moved).
    Peer {
        /// Its new view.
        peer: AgentView,
    },
    /// An agent left the bus.
    Left {
        /// Its identity.
        name: String,
    },
    /// New messages in agents' traces.
    Traces {
        /// The entries, oldest first.
        traces: Vec<TraceView>,
    },
}
