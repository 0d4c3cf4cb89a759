//! The typed source of every claim-check failure, so handlers, policies and tests can tell a
//! missing object from a corrupt one without parsing text.

use brokerkit_core::{Error, ErrorKind};

/// What went wrong with a claim-checked payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The object is not in the store (deleted, expired by the bucket's lifecycle rule, or
    /// never written). Error kind `NotFound`: the retry policy retries it (a replica may lag)
    /// and then dead-letters it with this reason.
    Missing,
    /// The object's size or SHA-256 differs from the reference. Kind `Decode`: dead-lettered
    /// at once by the default policy.
    Corrupt,
    /// The `claim-check` header cannot be read, or names a store this consumer does not use.
    /// Kind `Decode`.
    BadReference,
    /// The payload is larger than the object store accepts. Kind `PayloadTooLarge`.
    TooLarge,
}

impl Problem {
    /// The error kind of this problem.
    pub fn kind(self) -> ErrorKind {
        match self {
            Problem::Missing => ErrorKind::NotFound,
            Problem::Corrupt | Problem::BadReference => ErrorKind::Decode,
            Problem::TooLarge => ErrorKind::PayloadTooLarge,
        }
    }
}

/// The source of a claim-check [`Error`]: the problem and what was found.
#[derive(Debug, Clone)]
pub struct ClaimCheckError {
    /// What went wrong.
    pub problem: Problem,
    /// Details (object location, sizes, digests).
    pub detail: String,
}

impl ClaimCheckError {
    pub(crate) fn new(problem: Problem, detail: String) -> Self {
        ClaimCheckError { problem, detail }
    }

    /// As brokerkit's error: kind by [`Problem::kind`], the text prefixed `claim-check:`.
    pub fn into_error(self) -> Error {
        Error::new(self.problem.kind(), format!("claim-check: {}", self.detail))
            .retryable(false)
            .with_source(self)
    }

    /// The claim-check problem behind `error`, if it is one.
    pub fn of(error: &Error) -> Option<&ClaimCheckError> {
        error.source_ref()?.downcast_ref::<ClaimCheckError>()
    }
}

impl std::fmt::Display for ClaimCheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ClaimCheckError {}
