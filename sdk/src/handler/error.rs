//! The error a handler returns: any `std::error::Error` converts into it with `?`, so a
//! handler needs no `map_err`. By default it is a handler failure (retried by the policy,
//! then dead-lettered); [`HandlerError::permanent`] dead-letters at once and
//! [`HandlerError::transient`] always retries. A [`brokerkit::Error`](crate::Error) keeps its
//! kind, so `Err(Error::new(ErrorKind::Rejected, …))?` still dead-letters now.
//!
//! ```
//! use brokerkit::{Context, HandlerResult, ResultExt};
//!
//! #[derive(Debug)]
//! struct OutOfStock(u32);
//! impl std::fmt::Display for OutOfStock {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "sku {} is out of stock", self.0)
//!     }
//! }
//! impl std::error::Error for OutOfStock {}
//!
//! async fn reserve(_ctx: Context, payload: String) -> HandlerResult {
//!     let sku: u32 = payload.parse().permanent()?; // a bad payload never gets better
//!     if sku == 0 {
//!         return Err(OutOfStock(sku).into()); // retried, then dead-lettered
//!     }
//!     let _json: serde_json::Value = serde_json::from_str("{}")?; // `?` on any error
//!     Ok(())
//! }
//! ```

use std::fmt;

use brokerkit_core::{Error, ErrorKind};

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler returns: `Ok(())` acks; an error goes to the retry policy.
pub type HandlerResult<T = ()> = std::result::Result<T, HandlerError>;

/// How the retry policy should treat a [`HandlerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Classification {
    /// A `brokerkit::Error` keeps its kind; any other error is an
    /// [`ErrorKind::Handler`] failure (retried, then dead-lettered).
    Default,
    /// Dead-letter now ([`ErrorKind::Rejected`]): retrying cannot help.
    Permanent,
    /// Retry ([`ErrorKind::Handler`], retryable) until the attempts run out.
    Transient,
}

/// A handler's error: the typed source plus how to treat it. Converts from any
/// `std::error::Error + Send + Sync + 'static` (like `anyhow::Error`, it does not implement
/// `std::error::Error` itself, which is what makes that conversion possible).
pub struct HandlerError {
    source: Source,
    class: Classification,
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError {
            source: Box::new(e),
            class: Classification::Default,
        }
    }
}

impl HandlerError {
    /// Dead-letter the message now: `e` says why it can never be handled.
    pub fn permanent(e: impl Into<HandlerError>) -> Self {
        HandlerError {
            class: Classification::Permanent,
            ..e.into()
        }
    }

    /// Retry the message (after the policy's backoff) until the attempts run out.
    pub fn transient(e: impl Into<HandlerError>) -> Self {
        HandlerError {
            class: Classification::Transient,
            ..e.into()
        }
    }

    /// A handler failure with just a message (retried by default).
    pub fn msg(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Handler, message).into()
    }

    /// How the policy will treat it.
    pub fn classification(&self) -> Classification {
        self.class
    }

    /// The error as returned, to downcast to your type.
    pub fn source_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The error as returned, when it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.source.downcast_ref::<T>()
    }

    /// The kind the retry policy sees (see [`Classification`]).
    pub fn kind(&self) -> ErrorKind {
        match (self.class, self.source.downcast_ref::<Error>()) {
            (Classification::Permanent, _) => ErrorKind::Rejected,
            (Classification::Default, Some(e)) => e.kind(),
            (Classification::Transient, Some(e)) if e.kind().default_retryable() => e.kind(),
            (Classification::Default | Classification::Transient, _) => ErrorKind::Handler,
        }
    }

    /// The `brokerkit::Error` the retry policy decides on: of [`HandlerError::kind`], with
    /// this error as its typed source (a `brokerkit::Error` returned as is stays as it is).
    pub fn into_error(self) -> Error {
        let kind = self.kind();
        let source = match self.source.downcast::<Error>() {
            Ok(e) if e.kind() == kind => {
                return match self.class {
                    Classification::Transient => e.retryable(true),
                    _ => *e,
                }
            }
            Ok(e) => e as Source,
            Err(other) => other,
        };
        let message = match self.class {
            Classification::Permanent => "the handler rejected the message",
            _ => "the handler failed",
        };
        let error = Error::new(kind, message).with_boxed_source(source);
        match self.class {
            Classification::Transient => error.retryable(true),
            _ => error,
        }
    }
}

impl From<HandlerError> for Error {
    fn from(e: HandlerError) -> Self {
        e.into_error()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl fmt::Debug for HandlerError {
    /// The message and its causes, so a failing `unwrap()` in a test reads well.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.source, self.class)?;
        let mut cause = self.source.source();
        while let Some(c) = cause {
            write!(f, "\ncaused by: {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// Marks a `Result`'s error for the retry policy, without `map_err`:
/// `serde_json::from_slice(&bytes).permanent()?`.
pub trait ResultExt<T> {
    /// On error: dead-letter now (see [`HandlerError::permanent`]).
    fn permanent(self) -> HandlerResult<T>;
    /// On error: retry (see [`HandlerError::transient`]).
    fn transient(self) -> HandlerResult<T>;
}

impl<T, E: Into<HandlerError>> ResultExt<T> for std::result::Result<T, E> {
    fn permanent(self) -> HandlerResult<T> {
        self.map_err(HandlerError::permanent)
    }

    fn transient(self) -> HandlerResult<T> {
        self.map_err(HandlerError::transient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Action, RetryPolicy};

    #[derive(Debug, PartialEq)]
    struct AppError(&'static str);
    impl fmt::Display for AppError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for AppError {}

    fn parse(s: &str) -> HandlerResult<serde_json::Value> {
        Ok(serde_json::from_str(s)?)
    }

    #[test]
    fn question_mark_converts_any_error_to_a_retried_handler_error() {
        let e = parse("{").unwrap_err();
        assert_eq!(e.classification(), Classification::Default);
        assert!(e.downcast_ref::<serde_json::Error>().is_some());
        let error = e.into_error();
        assert_eq!(error.kind(), ErrorKind::Handler);
        assert!(error
            .to_string()
            .starts_with("handler: the handler failed: EOF"));
        assert!(error
            .source_ref()
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .is_some());
        let policy = RetryPolicy::immediate(3);
        assert_eq!(policy.decide(&error, 1), Action::Retry(Default::default()));
    }

    #[test]
    fn permanent_dead_letters_now_and_keeps_the_typed_source() {
        let r: Result<(), AppError> = Err(AppError("no such sku"));
        let e = r.permanent().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        let error = Error::from(e);
        assert_eq!(error.kind(), ErrorKind::Rejected);
        assert_eq!(
            error.to_string(),
            "rejected: the handler rejected the message: no such sku"
        );
        let typed = error.take_source::<AppError>().unwrap();
        assert_eq!(typed, AppError("no such sku"));
        let policy = RetryPolicy::immediate(3);
        let e = HandlerError::permanent(AppError("x")).into_error();
        assert_eq!(
            policy.decide(&e, 1),
            Action::DeadLetter { exhausted: false }
        );
    }

    #[test]
    fn brokerkit_errors_keep_their_kind_unless_marked() {
        let rejected: HandlerError = Error::new(ErrorKind::Rejected, "bad order").into();
        let e = rejected.into_error();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(e.to_string(), "rejected: bad order");
        let down: HandlerError = Error::new(ErrorKind::Unavailable, "db down").into();
        assert_eq!(down.into_error().kind(), ErrorKind::Unavailable);
        // Marked transient, a dead-letter-now kind is retried, with the original as source.
        let retried = HandlerError::transient(Error::new(ErrorKind::Validation, "stale"));
        let e = retried.into_error();
        assert_eq!(e.kind(), ErrorKind::Handler);
        assert!(e.is_retryable());
        assert_eq!(
            e.source_ref()
                .and_then(|s| s.downcast_ref::<Error>())
                .map(Error::kind),
            Some(ErrorKind::Validation)
        );
        let msg = HandlerError::msg("card declined").into_error();
        assert_eq!(msg.to_string(), "handler: card declined");
    }

    #[test]
    fn debug_is_the_message_and_its_causes() {
        let e = HandlerError::transient(AppError("later"));
        assert_eq!(format!("{e:?}"), "later (Transient)");
    }
}
