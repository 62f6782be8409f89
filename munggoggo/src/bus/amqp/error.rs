//! lapin's errors as the crate's: the source kept, a lost connection told
//! apart from other failures.

use lapin::ErrorKind;

use crate::error::Error;

/// Whether `error` is the broker's reply `code` (such as 405 RESOURCE_LOCKED).
pub(super) fn is_reply_code(error: &lapin::Error, code: u16) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e) if e.get_id() == code)
}

/// Maps a lapin error, kept as the source: a lost connection or channel
/// is [`Error::ConnectionLost`], anything else [`Error::Bus`].
pub(super) fn lapin_error(error: lapin::Error, context: &str) -> Error {
    let lost = matches!(
        error.kind(),
        ErrorKind::IOError(_)
            | ErrorKind::RuntimeShutdownError(_)
            | ErrorKind::InvalidConnectionState(_)
            | ErrorKind::InvalidChannelState(..)
            | ErrorKind::InvalidChannel(_)
            | ErrorKind::MissingHeartbeatError
    );
    let reason = context.to_owned();
    let source = Some(Box::new(error) as crate::error::BoxError);
    if lost {
        Error::ConnectionLost { reason, source }
    } else {
        Error::Bus { reason, source }
    }
}
