//! Calls in both directions: [`Pending`], this agent's requests waiting for
//! their reply, and [`IncomingCall`], an `#[rpc]` call on its way to the
//! agent's task.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::CallError;
use crate::protocol::RpcCall;

/// A reply, as the pending call receives it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
}

/// Calls waiting for their reply, by correlation id.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    calls: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
}

/// A call's place in [`Pending`]: removed when dropped, so a caller that
/// gives up (timeout, dropped future) leaves no entry behind.
pub(crate) struct Waiting<'a> {
    pending: &'a Pending,
    id: String,
    reply: Option<oneshot::Receiver<Reply>>,
}

impl Waiting<'_> {
    /// The reply; `None` when the agent stopped first.
    pub(crate) async fn reply(&mut self) -> Option<Reply> {
        match self.reply.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.remove(&self.id);
    }
}

impl Pending {
    /// Registers a call waiting for the reply with correlation id `id`.
    pub(crate) fn insert(&self, id: String) -> Waiting<'_> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        Waiting {
            pending: self,
            id,
            reply: Some(rx),
        }
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many calls wait for their reply.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Completes the call waiting for `id`; false when none waits (late or unknown).
    pub(crate) fn complete(&self, id: &str, reply: Reply) -> bool {
        match self.lock().remove(id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting call: the connection is gone.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call of an `#[rpc]` method on its way to the agent's task, which
/// runs it and answers.
#[derive(Debug)]
pub(crate) struct IncomingCall {
    pub(crate) index: usize,
    pub(crate) call: RpcCall,
    /// Where the answer goes.
    pub(crate) to: String,
    pub(crate) correlation_id: String,
    /// Where a call from a method queue (see [`crate::pyrpc`]) takes its result.
    pub(crate) local: Option<oneshot::Sender<Result<serde_json::Value, CallError>>>,
}

/// What a local call's answer arrives on.
pub(crate) type LocalAnswer = oneshot::Receiver<Result<serde_json::Value, CallError>>;

impl IncomingCall {
    /// A call of the `index`th method whose result comes back here instead
    /// of going out as a reply.
    pub(crate) fn local(index: usize, call: RpcCall) -> (Self, LocalAnswer) {
        let (tx, rx) = oneshot::channel();
        let incoming = IncomingCall {
            index,
            call,
            to: String::new(),
            correlation_id: String::new(),
            local: Some(tx),
        };
        (incoming, rx)
    }
}
