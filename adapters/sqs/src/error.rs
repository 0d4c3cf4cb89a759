//! AWS SDK errors → brokerkit [`Error`], in one place: kind, retryable flag, context with the
//! redacted address, and the typed source.

use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use brokerkit_core::config::redact_text;
use brokerkit_core::{Error, ErrorKind};

pub(crate) use crate::site::Site;

/// The kind for an AWS error code (SQS, SNS and generic AWS codes; SQS's JSON protocol gives
/// either the modern name or the query-compatible `AWS.SimpleQueueService.*` one).
pub(crate) fn kind_for_code(code: &str) -> Option<ErrorKind> {
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    Some(match code {
        "ThrottlingException"
        | "Throttling"
        | "RequestThrottled"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "OverLimit"
        | "KMSThrottlingException"
        | "KmsThrottled"
        | "SlowDown" => ErrorKind::Throttled,
        "QueueDoesNotExist"
        | "NonExistentQueue"
        | "NotFound"
        | "NotFoundException"
        | "ResourceNotFoundException" => ErrorKind::NotFound,
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "AuthorizationErrorException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "InvalidSecurity"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "IncompleteSignature"
        | "KmsAccessDenied"
        | "KMSAccessDeniedException" => ErrorKind::PermissionDenied,
        "ReceiptHandleIsInvalid" | "InvalidReceiptHandle" | "MessageNotInflight" => {
            ErrorKind::DeliveryExpired
        }
        "MessageTooLong" | "BatchRequestTooLong" => ErrorKind::PayloadTooLarge,
        "InvalidMessageContents" => ErrorKind::Validation,
        "InternalError"
        | "InternalFailure"
        | "InternalErrorException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "QueueDeletedRecently"
        | "KMSUnavailable"
        | "KmsUnavailable" => ErrorKind::Unavailable,
        "InvalidParameterValue"
        | "InvalidParameterException"
        | "InvalidAttributeName"
        | "InvalidAttributeValue"
        | "InvalidParameterValueException"
        | "InvalidAddress"
        | "UnsupportedOperation"
        | "QueueNameExists"
        | "QueueAlreadyExists" => ErrorKind::Config,
        _ => return None,
    })
}

/// A one-line description: HTTP status, AWS error code and message for a service error,
/// else the chain of causes.
fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(s) = err {
        let status = s.raw().status().as_u16();
        let e = s.err();
        if let Some(code) = e.code() {
            return format!(
                "HTTP {status} {code}: {}",
                e.message().unwrap_or("(no message)")
            );
        }
    }
    let mut text = err.to_string();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if let Some(status) = err.raw_response().map(|r| r.status().as_u16()) {
        text = format!("HTTP {status}: {text}");
    }
    text
}

/// Converts an AWS SDK error (SQS or SNS) at `site`.
pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>, site: Site<'_>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let shown = redact_text(&describe(&err));
    let (kind, retryable, retry_after) = match &err {
        SdkError::ConstructionFailure(_) => (ErrorKind::Config, false, None),
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, true, None),
        SdkError::DispatchFailure(d) if d.is_timeout() => (ErrorKind::Timeout, true, None),
        SdkError::DispatchFailure(d) if d.is_user() => (ErrorKind::Config, false, None),
        SdkError::DispatchFailure(_) => (ErrorKind::Unavailable, true, None),
        // The body could not be read or parsed: the broker answered something unexpected.
        // Whether the request took effect is unknown, so nothing is assumed done.
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status >= 500 {
                (ErrorKind::Unavailable, true, None)
            } else {
                (ErrorKind::Unexpected, false, None)
            }
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let by_code = s.err().code().and_then(kind_for_code);
            let kind = match (by_code, status) {
                (Some(k), _) => k,
                (None, 429) => ErrorKind::Throttled,
                (None, 401 | 403) => ErrorKind::PermissionDenied,
                (None, 404) => ErrorKind::NotFound,
                (None, s) if s >= 500 => ErrorKind::Unavailable,
                (None, _) => ErrorKind::Unexpected,
            };
            let retry_after = s
                .raw()
                .headers()
                .get("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            (kind, kind.default_retryable(), retry_after)
        }
        _ => (ErrorKind::Unexpected, false, None),
    };
    let what = match kind {
        ErrorKind::Throttled => "the service is throttling requests",
        ErrorKind::Unavailable => "the service could not be reached or failed",
        ErrorKind::Timeout => "the request timed out",
        ErrorKind::NotFound => "the queue or topic does not exist",
        ErrorKind::PermissionDenied => "the credentials were refused or lack permission",
        ErrorKind::DeliveryExpired => {
            "the receipt handle is no longer valid (visibility timeout expired); \
             the message is delivered again"
        }
        ErrorKind::Unexpected => "the service answered in an unexpected way",
        _ => "the request was refused",
    };
    let mut e = site
        .error(kind, format!("{what}: {shown}"))
        .retryable(retryable);
    if let Some(after) = retry_after {
        e = e.with_retry_after(after);
    }
    e.with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            kind_for_code("AWS.SimpleQueueService.NonExistentQueue"),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            kind_for_code("ThrottlingException"),
            Some(ErrorKind::Throttled)
        );
        assert_eq!(
            kind_for_code("RequestThrottled"),
            Some(ErrorKind::Throttled)
        );
        assert_eq!(
            kind_for_code("ReceiptHandleIsInvalid"),
            Some(ErrorKind::DeliveryExpired)
        );
        assert_eq!(kind_for_code("Whatever"), None);
    }
}
