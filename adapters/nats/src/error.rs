//! Every async-nats error → brokerkit [`Error`], in one place: kind, retryable flag, the
//! redacted broker address and the typed source.

use std::fmt::{Debug, Display};

use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamByNameErrorKind, GetStreamErrorKind, PublishErrorKind,
    RequestErrorKind,
};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::ConnectErrorKind;
use brokerkit_core::config::redact_text;
use brokerkit_core::{Error, ErrorKind};

/// A brokerkit error with the (already redacted) address. The adapter name (`nats` or
/// `nats-jetstream`, by mode) is stamped once, by the SDK and the connector, from
/// `Backend::name`.
pub fn error(kind: ErrorKind, message: impl Into<String>, address: &str) -> Error {
    Error::new(kind, redact_text(&message.into())).with_address(address)
}

/// Maps one async-nats error kind to a brokerkit kind.
pub trait Classify {
    /// The brokerkit kind of this client error kind.
    fn classify(&self) -> ErrorKind;
}

/// Converts an async-nats error of any kind, keeping it as the typed source.
pub fn from_client<K>(e: async_nats::error::Error<K>, what: &str, address: &str) -> Error
where
    K: Classify + Clone + Debug + Display + PartialEq + Send + Sync + 'static,
{
    let kind = e.kind().classify();
    // The client's error is the typed source; core redacts it wherever it is printed.
    error(kind, what, address).with_source(e)
}

fn by_code(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::STREAM_NOT_FOUND | ErrorCode::CONSUMER_NOT_FOUND => ErrorKind::NotFound,
        ErrorCode::JETSTREAM_NOT_ENABLED | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT => {
            ErrorKind::Unsupported
        }
        ErrorCode::STREAM_SUBJECT_OVERLAP | ErrorCode::STREAM_NAME_EXIST => ErrorKind::Config,
        ErrorCode::ACCOUNT_RESOURCES_EXCEEDED | ErrorCode::INSUFFICIENT_RESOURCES => {
            ErrorKind::Throttled
        }
        ErrorCode::CLUSTER_NOT_AVAILABLE | ErrorCode::CLUSTER_NO_PEERS => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

impl Classify for ConnectErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            ConnectErrorKind::ServerParse => ErrorKind::Config,
            ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                ErrorKind::PermissionDenied
            }
            ConnectErrorKind::Tls => ErrorKind::Config,
            ConnectErrorKind::TimedOut
            | ConnectErrorKind::Dns
            | ConnectErrorKind::Io
            | ConnectErrorKind::MaxReconnects => ErrorKind::Unavailable,
        }
    }
}

impl Classify for async_nats::client::PublishErrorKind {
    fn classify(&self) -> ErrorKind {
        use async_nats::client::PublishErrorKind as K;
        match self {
            K::MaxPayloadExceeded => ErrorKind::PayloadTooLarge,
            K::InvalidSubject => ErrorKind::Config,
            K::Send => ErrorKind::Closed,
        }
    }
}

impl Classify for async_nats::client::FlushErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            async_nats::client::FlushErrorKind::SendError => ErrorKind::Closed,
            async_nats::client::FlushErrorKind::FlushError => ErrorKind::Unavailable,
        }
    }
}

impl Classify for async_nats::client::SubscribeErrorKind {
    fn classify(&self) -> ErrorKind {
        use async_nats::client::SubscribeErrorKind as K;
        match self {
            K::InvalidSubject | K::InvalidQueueName => ErrorKind::Config,
            K::Other => ErrorKind::Closed,
        }
    }
}

impl Classify for PublishErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            PublishErrorKind::StreamNotFound => ErrorKind::NotFound,
            PublishErrorKind::TimedOut => ErrorKind::Timeout,
            PublishErrorKind::BrokenPipe => ErrorKind::Unavailable,
            PublishErrorKind::MaxAckPending => ErrorKind::Throttled,
            PublishErrorKind::MaxPayloadExceeded => ErrorKind::PayloadTooLarge,
            PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence
            | PublishErrorKind::Other => ErrorKind::Unexpected,
        }
    }
}

impl Classify for RequestErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            // No JetStream API responder: JetStream is off, or the server is (re)starting.
            RequestErrorKind::NoResponders => ErrorKind::Unavailable,
            RequestErrorKind::TimedOut => ErrorKind::Timeout,
            RequestErrorKind::InvalidSubject => ErrorKind::Config,
            RequestErrorKind::Other => ErrorKind::Unavailable,
        }
    }
}

impl Classify for async_nats::client::RequestErrorKind {
    fn classify(&self) -> ErrorKind {
        use async_nats::client::RequestErrorKind as K;
        match self {
            K::TimedOut => ErrorKind::Timeout,
            K::NoResponders => ErrorKind::Unavailable,
            K::InvalidSubject => ErrorKind::Config,
            K::MaxPayloadExceeded => ErrorKind::PayloadTooLarge,
            _ => ErrorKind::Unavailable,
        }
    }
}

impl Classify for GetStreamByNameErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            GetStreamByNameErrorKind::NotFound => ErrorKind::NotFound,
            GetStreamByNameErrorKind::InvalidSubject => ErrorKind::Config,
            GetStreamByNameErrorKind::Request => ErrorKind::Unavailable,
            GetStreamByNameErrorKind::JetStream(e) => by_code(e.error_code()),
        }
    }
}

impl Classify for GetStreamErrorKind {
    fn classify(&self) -> ErrorKind {
        match self {
            GetStreamErrorKind::EmptyName | GetStreamErrorKind::InvalidStreamName => {
                ErrorKind::Config
            }
            GetStreamErrorKind::Request => ErrorKind::Unavailable,
            GetStreamErrorKind::JetStream(e) => by_code(e.error_code()),
        }
    }
}

impl Classify for CreateStreamErrorKind {
    fn classify(&self) -> ErrorKind {
        use CreateStreamErrorKind as K;
        match self {
            K::EmptyStreamName | K::InvalidStreamName | K::DomainAndExternalSet => {
                ErrorKind::Config
            }
            K::JetStreamUnavailable => ErrorKind::Unavailable,
            K::JetStream(e) => by_code(e.error_code()),
            K::TimedOut => ErrorKind::Timeout,
            K::Response | K::ResponseParse => ErrorKind::Unexpected,
            K::NotFound => ErrorKind::NotFound,
        }
    }
}

impl Classify for ConsumerErrorKind {
    fn classify(&self) -> ErrorKind {
        use ConsumerErrorKind as K;
        match self {
            K::TimedOut => ErrorKind::Timeout,
            K::Request => ErrorKind::Unavailable,
            K::InvalidConsumerType | K::InvalidName => ErrorKind::Config,
            K::JetStream(e) => by_code(e.error_code()),
            K::Other => ErrorKind::Unexpected,
        }
    }
}

impl Classify for async_nats::jetstream::consumer::pull::BatchRequestErrorKind {
    fn classify(&self) -> ErrorKind {
        use async_nats::jetstream::consumer::pull::BatchRequestErrorKind as K;
        match self {
            K::Publish | K::Flush => ErrorKind::Unavailable,
            K::Serialize => ErrorKind::Unexpected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_redaction() {
        let e = async_nats::error::Error::new(ConnectErrorKind::Io);
        let mapped = from_client(e, "connect to nats://u:***@h:1", "nats://u:***@h:1");
        assert_eq!(mapped.kind(), ErrorKind::Unavailable);
        assert!(mapped.is_retryable());
        assert!(mapped
            .source_ref()
            .and_then(|s| s.downcast_ref::<async_nats::error::Error<ConnectErrorKind>>())
            .is_some());
        let e = error(ErrorKind::Unexpected, "at nats://u:hunter2@h:1", "x");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            PublishErrorKind::StreamNotFound.classify(),
            ErrorKind::NotFound
        );
        assert!(Error::new(PublishErrorKind::TimedOut.classify(), "t").is_retryable());
    }
}
