//! The shapes of munggoggo 0.4's system messages on the wire: the
//! SerializedObject envelope of CONTROL bodies and the RpcMessage envelope
//! of RPC bodies, with the payloads of the requests munggoggo answers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message;

/// munggoggo 0.4's SerializedObject envelope (CONTROL bodies).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Serialized {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
}

/// `request_type` of a request.
pub(crate) const REQUEST: i64 = 1;
/// `request_type` of a reply.
pub(crate) const REPLY: i64 = 2;

/// munggoggo 0.4's RpcMessage envelope.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RpcMessage {
    pub(crate) c_type: String,
    pub(crate) c_data: String,
    #[serde(default = "default_request_type")]
    pub(crate) request_type: i64,
}

fn default_request_type() -> i64 {
    REQUEST
}

/// `ListTraceStore`'s payload.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct ListTraceStore {
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    #[serde(default)]
    pub(crate) app_id: Option<String>,
    #[serde(default)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) traces: Vec<serde_json::Value>,
}

/// `ManageBehav`'s payload.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct ManageBehav {
    #[serde(default)]
    pub(crate) behav: String,
    #[serde(default)]
    pub(crate) command: String,
    #[serde(default)]
    pub(crate) result: String,
}

/// `RpcCall`'s payload: a call of an `#[rpc]` method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RpcCall {
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) params: serde_json::Value,
    #[serde(default)]
    pub(crate) result: serde_json::Value,
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// What kind of error `error` is ([`crate::ErrorCode::word`]), so that
    /// a caller need not read the text. Added by munggoggo for Rust; 0.4
    /// does not know `RpcCall`, and older callers ignore the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<String>,
    /// With code `unknown_method`: the methods the agent has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) known: Option<Vec<String>>,
}

impl RpcCall {
    /// A call of `method` with `params`, not answered yet.
    pub(crate) fn request(method: &str, params: serde_json::Value) -> Self {
        RpcCall {
            method: method.to_owned(),
            params,
            result: serde_json::Value::Null,
            error: None,
            code: None,
            known: None,
        }
    }

    /// Fills in the method's result, or its error with the error's code.
    pub(crate) fn set_outcome(&mut self, outcome: Result<serde_json::Value, crate::error::CallError>) {
        match outcome {
            Ok(value) => self.result = value,
            Err(e) => {
                self.error = Some(e.to_string());
                self.code = Some(e.code().to_owned());
                if let crate::error::CallError::UnknownMethod { known, .. } = e {
                    self.known = Some(known);
                }
            }
        }
    }
}

/// Encodes an RpcMessage envelope.
pub(crate) fn rpc_body(c_type: &str, c_data: String, request_type: i64) -> Result<Bytes> {
    /// [`RpcMessage`], borrowed.
    #[derive(Serialize)]
    struct Outgoing<'a> {
        c_type: &'a str,
        c_data: &'a str,
        request_type: i64,
    }
    let msg = Outgoing {
        c_type,
        c_data: &c_data,
        request_type,
    };
    crate::message::body::json(&msg).map_err(|source| Error::Encode {
        type_name: c_type.to_owned(),
        source,
    })
}

/// Encodes a CONTROL body: the SerializedObject envelope.
pub(crate) fn serialized(c_type: &str, c_data: String) -> Result<Bytes> {
    message::envelope(c_type, &c_data)
}
