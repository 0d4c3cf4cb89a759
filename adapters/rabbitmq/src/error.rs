//! lapin errors → brokerkit errors, in one place: kind, retryable flag, redacted address.

use brokerkit_core::config::redact_text;
use brokerkit_core::{Error, ErrorKind};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

use crate::NAME;

/// Maps a lapin error from operation `op` against the broker at `address` (already redacted).
pub fn map(e: lapin::Error, op: &'static str, address: &str) -> Error {
    let (kind, message) = classify(&e);
    Error::new(kind, redact_text(&message))
        .with_broker(NAME)
        .with_operation(op)
        .with_address(address)
        .with_source(e)
}

/// Whether the error means the connection or channel is gone (so it must be re-created).
pub fn is_link_failure(e: &lapin::Error) -> bool {
    use lapin::ErrorKind as L;
    match e.kind() {
        L::IOError(_)
        | L::InvalidChannelState(..)
        | L::InvalidConnectionState(_)
        | L::InvalidChannel(_)
        | L::MissingHeartbeatError
        | L::RuntimeShutdownError(_) => true,
        L::ProtocolError(p) => matches!(p.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

fn classify(e: &lapin::Error) -> (ErrorKind, String) {
    use lapin::ErrorKind as L;
    match e.kind() {
        L::IOError(io) => (
            ErrorKind::Unavailable,
            format!("cannot reach RabbitMQ ({io})"),
        ),
        L::InvalidConnectionState(_) | L::MissingHeartbeatError => (
            ErrorKind::Unavailable,
            "the connection to RabbitMQ is closed or was lost".to_string(),
        ),
        L::InvalidChannelState(..) | L::InvalidChannel(_) => (
            ErrorKind::Unavailable,
            "the AMQP channel is closed (connection lost or closed by the broker)".to_string(),
        ),
        L::ChannelsLimitReached => (
            ErrorKind::Throttled,
            "the connection has reached its channel limit (channel_max)".to_string(),
        ),
        L::ProtocolError(p) => {
            let text = p.get_message().as_str().to_string();
            let kind = match p.kind() {
                AMQPErrorKind::Soft(s) => match s {
                    AMQPSoftError::ACCESSREFUSED => ErrorKind::PermissionDenied,
                    AMQPSoftError::NOTFOUND
                    | AMQPSoftError::NOROUTE
                    | AMQPSoftError::NOCONSUMERS => ErrorKind::NotFound,
                    AMQPSoftError::CONTENTTOOLARGE => ErrorKind::PayloadTooLarge,
                    AMQPSoftError::RESOURCELOCKED => ErrorKind::Unavailable,
                    AMQPSoftError::PRECONDITIONFAILED if text.contains("message size") => {
                        ErrorKind::PayloadTooLarge
                    }
                    AMQPSoftError::PRECONDITIONFAILED => ErrorKind::Config,
                },
                AMQPErrorKind::Hard(h) => match h {
                    AMQPHardError::CONNECTIONFORCED | AMQPHardError::INTERNALERROR => {
                        ErrorKind::Unavailable
                    }
                    AMQPHardError::RESOURCEERROR => ErrorKind::Throttled,
                    AMQPHardError::NOTALLOWED if text.contains("not found") => ErrorKind::NotFound,
                    AMQPHardError::NOTALLOWED | AMQPHardError::INVALIDPATH => {
                        ErrorKind::PermissionDenied
                    }
                    _ => ErrorKind::Unexpected,
                },
            };
            let hint = match kind {
                ErrorKind::PermissionDenied => {
                    " (check the user name, password and the user's permissions on the vhost)"
                }
                ErrorKind::NotFound if text.contains("vhost") => " (create the vhost first)",
                ErrorKind::Config => {
                    " (a queue or exchange of this name exists with other settings)"
                }
                _ => "",
            };
            (
                kind,
                format!("RabbitMQ refused: {} {text}{hint}", p.get_id()),
            )
        }
        L::AuthProviderError(m) => (
            ErrorKind::PermissionDenied,
            format!("authentication failed: {m}"),
        ),
        _ => (ErrorKind::Unexpected, format!("AMQP client error: {e}")),
    }
}

/// An error that is not from lapin (unexpected broker answers, limits).
pub fn new(kind: ErrorKind, message: impl Into<String>, op: &'static str, address: &str) -> Error {
    Error::new(kind, message)
        .with_broker(NAME)
        .with_operation(op)
        .with_address(address)
}

/// A lapin operation that did not finish within `limit` (see `link::OPERATION_TIMEOUT`):
/// retryable, the connection is probably blocked by the broker or half dead.
pub fn timed_out(op: &'static str, address: &str, limit: std::time::Duration) -> Error {
    new(
        ErrorKind::Timeout,
        format!(
            "RabbitMQ did not take the {op} within {limit:?} (the connection is blocked by a \
             broker alarm or no longer answers); it may still reach the broker once the \
             connection moves again, so a retry may duplicate it"
        ),
        op,
        address,
    )
}
