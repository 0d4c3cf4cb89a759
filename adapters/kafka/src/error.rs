//! librdkafka errors → brokerkit [`Error`]s, in one place: kind, retryable flag, context with
//! the redacted broker address, and the typed `KafkaError` as source.

use brokerkit_core::config::redact_text;
use brokerkit_core::{Error, ErrorKind};
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};

/// Adapter name used in error context.
pub const NAME: &str = "kafka";

/// The brokerkit kind of a librdkafka error code.
pub fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::MessageSizeTooLarge | Code::InvalidMessageSize | Code::MessageBatchTooLarge => {
            ErrorKind::PayloadTooLarge
        }
        Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition => {
            ErrorKind::NotFound
        }
        Code::TopicAuthorizationFailed
        | Code::GroupAuthorizationFailed
        | Code::ClusterAuthorizationFailed
        | Code::SaslAuthenticationFailed
        | Code::Authentication
        | Code::PolicyViolation => ErrorKind::PermissionDenied,
        Code::MessageTimedOut
        | Code::RequestTimedOut
        | Code::OperationTimedOut
        | Code::TimedOutQueue => ErrorKind::Timeout,
        Code::QueueFull | Code::ThrottlingQuotaExceeded => ErrorKind::Throttled,
        Code::BrokerTransportFailure
        | Code::AllBrokersDown
        | Code::Resolve
        | Code::LeaderNotAvailable
        | Code::NotLeaderForPartition
        | Code::BrokerNotAvailable
        | Code::NetworkException
        | Code::NotEnoughReplicas
        | Code::NotEnoughReplicasAfterAppend
        | Code::CoordinatorNotAvailable
        | Code::NotCoordinator
        | Code::CoordinatorLoadInProgress
        | Code::WaitingForCoordinator
        | Code::KafkaStorageError
        | Code::PreferredLeaderNotAvailable
        | Code::ISRInsufficient => ErrorKind::Unavailable,
        Code::BrokerDestroy | Code::DestroyBroker => ErrorKind::Closed,
        Code::InvalidTopic | Code::InvalidConfig | Code::InvalidArgument => ErrorKind::Config,
        _ => ErrorKind::Unexpected,
    }
}

/// The brokerkit kind of a client error.
pub fn kind_of_error(e: &KafkaError) -> ErrorKind {
    match e {
        KafkaError::ClientConfig(..) => ErrorKind::Config,
        KafkaError::Canceled => ErrorKind::Closed,
        other => other
            .rdkafka_error_code()
            .map(kind_of)
            .unwrap_or(ErrorKind::Unexpected),
    }
}

/// Wraps a client error: `what` says what failed (e.g. "send to topic orders").
pub fn from_kafka(e: KafkaError, what: &str, address: &str, operation: &'static str) -> Error {
    let kind = kind_of_error(&e);
    let hint = match kind {
        ErrorKind::Unavailable | ErrorKind::Timeout => " (is the broker running and reachable?)",
        _ => "",
    };
    Error::new(kind, redact_text(&format!("{what} failed: {e}{hint}")))
        .with_broker(NAME)
        .with_operation(operation)
        .with_address(address)
        .with_source(e)
}

/// An error of `kind` with the adapter's context.
pub fn error(
    kind: ErrorKind,
    message: impl Into<String>,
    address: &str,
    operation: &'static str,
) -> Error {
    Error::new(kind, message)
        .with_broker(NAME)
        .with_operation(operation)
        .with_address(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retryability() {
        let e = from_kafka(
            KafkaError::MessageProduction(Code::MessageSizeTooLarge),
            "send",
            "kafka://h:9092",
            "send",
        );
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
        assert!(!e.is_retryable());
        let e = from_kafka(
            KafkaError::MetadataFetch(Code::AllBrokersDown),
            "connect",
            "kafka://h:9092",
            "connect",
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.context().address.as_deref(), Some("kafka://h:9092"));
        assert!(e
            .source_ref()
            .and_then(|s| s.downcast_ref::<KafkaError>())
            .is_some());
        assert_eq!(kind_of(Code::MessageTimedOut), ErrorKind::Timeout);
        assert_eq!(kind_of(Code::UnknownTopicOrPartition), ErrorKind::NotFound);
    }
}
