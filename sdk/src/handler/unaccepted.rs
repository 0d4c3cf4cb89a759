//! What happens to an event no handler declared: a version a [`super::Versions`] does not
//! accept, or a type a [`super::Router`] has no route for.
//!
//! The default is [`Unaccepted::DeadLetter`]: the message is kept (on the dead-letter
//! destination, with the reason in its envelope) and can be redriven once a handler for it is
//! deployed. The policy is applied inside the `decode` layer, so the `retry` layer and the
//! handler runner treat it like any other outcome.

use brokerkit_core::{Error, ErrorKind};

/// The policy for events no handler declared. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unaccepted {
    /// Dead-letter at once, reason and error kind (`decode`) in the envelope. The default.
    #[default]
    DeadLetter,
    /// Deliver again after the retry policy's backoff, counting attempts (a rolling deploy:
    /// another instance, or this one once upgraded, may take it). When the attempts run out
    /// the message is dead-lettered. The error kind is `Unavailable`.
    RetryLater,
    /// Acknowledge without handling, with one `warn` log line. Nothing is kept.
    Skip,
}

/// The source of the error an unaccepted event produces; the `decode` layer reads it to
/// apply [`Unaccepted::Skip`].
#[derive(Debug, Clone)]
pub struct UnacceptedEvent {
    /// The policy that applied.
    pub policy: Unaccepted,
    /// The event type of the message (`None`: it had no `event-type` header).
    pub event_type: Option<String>,
    /// Its event version, when it had one.
    pub version: Option<u32>,
}

impl std::fmt::Display for UnacceptedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.event_type, self.version) {
            (Some(t), Some(v)) => write!(f, "no handler accepts {t} v{v}"),
            (Some(t), None) => write!(f, "no handler accepts {t}"),
            (None, _) => write!(f, "the message has no event-type header to route by"),
        }
    }
}

impl std::error::Error for UnacceptedEvent {}

impl Unaccepted {
    /// The error for an unaccepted event under this policy; `why` says what was accepted.
    pub(crate) fn error(self, event_type: Option<&str>, version: Option<u32>, why: &str) -> Error {
        let source = UnacceptedEvent {
            policy: self,
            event_type: event_type.map(str::to_string),
            version,
        };
        let text = format!("{source}: {why}");
        let error = match self {
            Unaccepted::RetryLater => Error::new(ErrorKind::Unavailable, text).retryable(true),
            Unaccepted::DeadLetter | Unaccepted::Skip => Error::new(ErrorKind::Decode, text),
        };
        error.with_source(source)
    }
}

/// The policy carried by `error`, when it is an unaccepted event's error.
pub(crate) fn policy_of(error: &Error) -> Option<Unaccepted> {
    error
        .source_ref()
        .and_then(|s| s.downcast_ref::<UnacceptedEvent>())
        .map(|u| u.policy)
}
