//! One error type for every broker: a kind, a retryable flag, context and the typed source.

use std::fmt;
use std::time::Duration;

/// What went wrong, independent of the broker underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URL, config key or option is invalid; the message says what is accepted.
    Config,
    /// The adapter cannot honour the request (see [`crate::Capabilities`]); nothing was sent.
    Unsupported,
    /// The payload is larger than the destination accepts; nothing was sent.
    PayloadTooLarge,
    /// A header name or value is invalid, or there are more headers than the broker accepts.
    InvalidHeader,
    /// The payload could not be decoded (malformed JSON, wrong event type or version).
    Decode,
    /// The payload violates its event contract (JSON Schema).
    Validation,
    /// The destination (queue, topic, stream, exchange) does not exist.
    NotFound,
    /// The broker refused the credentials or the operation.
    PermissionDenied,
    /// The broker or a store could not be reached, or the connection was lost.
    Unavailable,
    /// The broker is throttling requests.
    Throttled,
    /// The operation did not finish in time.
    Timeout,
    /// The producer, consumer or broker handle was closed.
    Closed,
    /// The delivery can no longer be settled (its visibility timeout expired or its channel closed);
    /// the broker will redeliver it.
    DeliveryExpired,
    /// The user's handler failed (retried by default).
    Handler,
    /// The handler rejected the message as permanently unprocessable (dead-lettered by default).
    Rejected,
    /// The broker answered in a way brokerkit did not expect.
    Unexpected,
}

impl ErrorKind {
    /// Whether errors of this kind are retryable by default.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Throttled | ErrorKind::Timeout
        )
    }

    /// A stable lowercase name, used in logs and in dead-letter envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::InvalidHeader => "invalid_header",
            ErrorKind::Decode => "decode",
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::DeliveryExpired => "delivery_expired",
            ErrorKind::Handler => "handler",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// Parses [`ErrorKind::as_str`] back; unknown names give `None`.
    pub fn parse(name: &str) -> Option<ErrorKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == name)
    }
}

const ALL_KINDS: [ErrorKind; 16] = [
    ErrorKind::Config,
    ErrorKind::Unsupported,
    ErrorKind::PayloadTooLarge,
    ErrorKind::InvalidHeader,
    ErrorKind::Decode,
    ErrorKind::Validation,
    ErrorKind::NotFound,
    ErrorKind::PermissionDenied,
    ErrorKind::Unavailable,
    ErrorKind::Throttled,
    ErrorKind::Timeout,
    ErrorKind::Closed,
    ErrorKind::DeliveryExpired,
    ErrorKind::Handler,
    ErrorKind::Rejected,
    ErrorKind::Unexpected,
];

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an error happened: which broker, destination and operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// Adapter name ([`crate::Backend::name`]), e.g. `memory`.
    pub broker: Option<&'static str>,
    /// Queue, topic or stream name.
    pub destination: Option<String>,
    /// What was being done, e.g. `send`, `receive`, `ack`, `connect`.
    pub operation: Option<&'static str>,
    /// Broker address, always with secrets redacted.
    pub address: Option<String>,
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type of brokerkit.
///
/// `Display` gives the kind, the message and the context; secrets are never part of it
/// because addresses are stored redacted.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    retryable: bool,
    message: String,
    context: ErrorContext,
    retry_after: Option<Duration>,
    source: Option<Source>,
}

/// `Result` with brokerkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`; retryable by the kind's default.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            retryable: kind.default_retryable(),
            message: message.into(),
            context: ErrorContext::default(),
            retry_after: None,
            source: None,
        }))
    }

    /// Shorthand for an [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.0.retryable
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Where it happened.
    pub fn context(&self) -> &ErrorContext {
        &self.0.context
    }

    /// A hint from the broker for when to retry (e.g. throttling).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Overrides the retryable flag.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.0.retryable = retryable;
        self
    }

    /// Sets the retry-after hint.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Sets the adapter name.
    pub fn with_broker(mut self, broker: &'static str) -> Self {
        self.0.context.broker = Some(broker);
        self
    }

    /// Sets the destination.
    pub fn with_destination(mut self, destination: impl Into<String>) -> Self {
        self.0.context.destination = Some(destination.into());
        self
    }

    /// Sets the operation.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.0.context.operation = Some(operation);
        self
    }

    /// Sets the broker address. Pass a redacted address (see [`crate::config::redact_url`]).
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.0.context.address = Some(address.into());
        self
    }

    /// Fills in context fields that are still empty (adapters may set them more precisely).
    pub fn or_context(
        mut self,
        broker: &'static str,
        destination: &str,
        operation: &'static str,
    ) -> Self {
        let c = &mut self.0.context;
        c.broker.get_or_insert(broker);
        if c.destination.is_none() {
            c.destination = Some(destination.to_string());
        }
        c.operation.get_or_insert(operation);
        self
    }

    /// Attaches the typed source error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// Attaches an already boxed source error.
    pub fn with_boxed_source(mut self, source: Source) -> Self {
        self.0.source = Some(source);
        self
    }

    /// Takes the source out when it is a `T`; gives the error back otherwise.
    pub fn take_source<T: std::error::Error + 'static>(mut self) -> Result<T, Error> {
        match self.0.source.take().map(|s| s.downcast::<T>()) {
            Some(Ok(t)) => Ok(*t),
            Some(Err(s)) => {
                self.0.source = Some(s);
                Err(self)
            }
            None => Err(self),
        }
    }

    /// The source error, to downcast to the client library's type.
    pub fn source_ref(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.0.source.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.message)?;
        let c = &self.0.context;
        let mut parts = Vec::new();
        if let Some(b) = c.broker {
            parts.push(format!("broker={b}"));
        }
        if let Some(d) = &c.destination {
            parts.push(format!("destination={d}"));
        }
        if let Some(o) = c.operation {
            parts.push(format!("operation={o}"));
        }
        if let Some(a) = &c.address {
            parts.push(format!("address={a}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        if self.0.retryable {
            f.write_str(" [retryable]")?;
        }
        if let Some(s) = &self.0.source {
            // A client library's error may quote the broker URL: never print its password.
            let s: &(dyn std::error::Error + 'static) = &**s;
            write!(f, ": {}", RedactedChain(s))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    /// The `Display` text (which ends with the source's causes), so a `main` returning
    /// `Result<(), brokerkit::Error>` prints a readable report. `{:#?}` gives the fields.
    /// Secrets never print: addresses are stored redacted and source texts are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            // A client library's `Debug` may hold a URL or a password field: only its
            // redacted `Display` chain is printed.
            return f
                .debug_struct("Error")
                .field("kind", &self.0.kind)
                .field("retryable", &self.0.retryable)
                .field("message", &self.0.message)
                .field("context", &self.0.context)
                .field("retry_after", &self.0.retry_after)
                .field(
                    "source",
                    &self.0.source.as_ref().map(|s| RedactedChain(&**s)),
                )
                .finish();
        }
        fmt::Display::fmt(self, f)
    }
}

/// Prints an error and its sources as redacted `Display` text, joined by `: `.
struct RedactedChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for RedactedChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut next = self.0.source();
        while let Some(s) = next {
            text.push_str(": ");
            text.push_str(&s.to_string());
            next = s.source();
        }
        f.write_str(&crate::config::redact_text(&text))
    }
}

impl fmt::Debug for RedactedChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_kind_context_and_retryable() {
        let e = Error::new(ErrorKind::Unavailable, "connection refused")
            .with_broker("memory")
            .with_destination("orders")
            .with_operation("send");
        let s = e.to_string();
        assert_eq!(
            s,
            "unavailable: connection refused (broker=memory, destination=orders, operation=send) [retryable]"
        );
        assert!(e.is_retryable());
        assert!(!Error::config("x").is_retryable());
    }

    #[test]
    fn debug_reads_like_display_and_redacts() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused amqp://guest:s3cret@127.0.0.1:5672",
        );
        let e = Error::new(ErrorKind::Unavailable, "cannot connect")
            .with_operation("connect")
            .with_source(io);
        let debug = format!("{e:?}");
        assert_eq!(debug, e.to_string());
        assert!(debug.starts_with("unavailable: cannot connect (operation=connect) [retryable]"));
        assert!(!debug.contains("s3cret"), "{debug}");
        let pretty = format!("{e:#?}");
        assert!(pretty.contains("kind: Unavailable"), "{pretty}");
        assert!(!pretty.contains("s3cret"), "{pretty}");
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ALL_KINDS {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::parse("nope"), None);
    }

    #[test]
    fn source_is_typed() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::new(ErrorKind::Unavailable, "connect").with_source(io);
        let src = e
            .source_ref()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            src.map(|s| s.kind()),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
    }
}
