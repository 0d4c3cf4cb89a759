//! The one mapping from the Redis client's error to brokerkit's [`Error`].

use brokerkit_core::{Error, ErrorKind};
use redis::RedisError;

/// Maps a client error: connection problems are retryable `Unavailable`, timeouts `Timeout`,
/// refused credentials or ACLs `PermissionDenied`, a missing group `NotFound`, `LOADING` or
/// `TRYAGAIN` `Unavailable`; the rest `Unexpected`. The client error is the typed source.
pub fn map(e: RedisError) -> Error {
    let code = e.code().unwrap_or("");
    let (kind, what) = if e.is_timeout() {
        (ErrorKind::Timeout, "Redis did not answer in time")
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        (ErrorKind::Unavailable, "cannot reach Redis")
    } else if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM")
    {
        (
            ErrorKind::PermissionDenied,
            "Redis refused the credentials or the command",
        )
    } else if code == "NOGROUP" {
        (
            ErrorKind::NotFound,
            "the stream or its consumer group does not exist",
        )
    } else if matches!(code, "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "BUSY") {
        (ErrorKind::Unavailable, "Redis is not ready")
    } else if matches!(e.kind(), redis::ErrorKind::InvalidClientConfig) {
        (ErrorKind::Config, "invalid Redis client configuration")
    } else {
        (ErrorKind::Unexpected, "Redis answered with an error")
    };
    Error::new(kind, what).with_source(e)
}

/// A reply of an unexpected shape.
pub fn unexpected(what: &str) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("Redis answered {what} in an unexpected shape"),
    )
}
