//! [`Client`]: a participant without handlers, for tools and tests.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};

use super::{AgentHandle, RuntimeHandle};
use crate::agent::{
    Agent, AgentDefaults, AgentOptions, AgentSpec, BehaviourKind, BehaviourSpec, BoxFuture, HandlerError,
    HandlerRoute,
};
use crate::context::Context;
use crate::error::Result;
use crate::message::Received;

/// Joins the bus with an identity of its own but no handlers: it sends as
/// any agent does (it derefs to [`Context`]) and receives whatever is sent
/// to its identity or broadcast, one message at a time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> munggoggo::Result<()> {
/// let rt = munggoggo::Runtime::memory().start().await?;
/// let client = rt.client("tester").await?;
/// client.send_raw("tester", "Note", "to myself").await?;
/// let note = client.recv().await.expect("a message");
/// assert_eq!((note.message_type(), note.sender()), ("Note", "tester"));
/// rt.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    handle: AgentHandle,
    inbox: Mutex<mpsc::Receiver<Arc<Received>>>,
}

/// How many received messages a [`Client`] holds until [`Client::recv`]
/// takes them; past it the client stops taking deliveries, and further
/// messages wait in its queue (whose maximum length then refuses them).
pub const CLIENT_INBOX: usize = 1024;

impl Client {
    pub(super) async fn start(runtime: &RuntimeHandle, options: AgentOptions) -> Result<Client> {
        let (tx, rx) = mpsc::channel(CLIENT_INBOX);
        let handle = runtime.spawn_with(Inbox { tx }, options).await?;
        Ok(Client {
            handle,
            inbox: Mutex::new(rx),
        })
    }

    /// A client's default options: identity `identity`, no ping at start
    /// (`announce` off), the default call timeout.
    pub fn options(identity: impl Into<String>) -> AgentOptions {
        let mut options = Inbox::options();
        options.identity = identity.into();
        options.announce = false;
        options
    }

    /// The next message received, or `None` once the client has stopped.
    pub async fn recv(&self) -> Option<Arc<Received>> {
        self.inbox.lock().await.recv().await
    }

    /// The next message received within `timeout`.
    pub async fn recv_timeout(&self, timeout: Duration) -> Option<Arc<Received>> {
        tokio::time::timeout(timeout, self.recv()).await.ok().flatten()
    }

    /// The client's agent handle.
    pub fn handle(&self) -> &AgentHandle {
        &self.handle
    }

    /// Leaves the bus: its queues are deleted.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

impl RuntimeHandle {
    /// Joins the bus as a client without handlers: it can send, and it
    /// receives what is sent to its identity (see [`Client::recv`]).
    pub async fn client(&self, identity: impl Into<String>) -> Result<Client> {
        self.client_with(Client::options(identity)).await
    }

    /// [`RuntimeHandle::client`] with options of its own, such as the
    /// timeout of its calls; start from [`Client::options`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> munggoggo::Result<()> {
    /// let rt = munggoggo::Runtime::memory().start().await?;
    /// let mut options = munggoggo::runtime::Client::options("tool");
    /// options.call_timeout = std::time::Duration::from_secs(10);
    /// let client = rt.client_with(options).await?;
    /// assert_eq!(client.options().call_timeout, std::time::Duration::from_secs(10));
    /// rt.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn client_with(&self, options: AgentOptions) -> Result<Client> {
        Client::start(self, options).await
    }
}

impl crate::rpc::Caller for Client {
    fn context(&self) -> &Context {
        self
    }
}

impl std::ops::Deref for Client {
    type Target = Context;
    fn deref(&self) -> &Context {
        self.handle.context()
    }
}

/// The agent behind a [`Client`]: a fallback handler feeding its inbox.
struct Inbox {
    tx: mpsc::Sender<Arc<Received>>,
}

static INBOX_SPEC: AgentSpec = AgentSpec {
    name: "Client",
    behaviours: &[BehaviourSpec::new(
        "inbox",
        BehaviourKind::Handler(HandlerRoute::Fallback),
    )],
    rpcs: &[],
};

impl AgentDefaults for Inbox {
    fn options() -> AgentOptions {
        AgentOptions::new("client")
    }

    fn construct() -> Option<Self> {
        None
    }
}

impl Agent for Inbox {
    fn spec() -> &'static AgentSpec {
        &INBOX_SPEC
    }

    fn handle<'a>(
        &'a mut self,
        _: &'a Context,
        _: usize,
        msg: &'a Arc<Received>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.tx
                .send(Arc::clone(msg))
                .await
                .map_err(|_| HandlerError::Failed("the client is gone".into()))
        })
    }
}
