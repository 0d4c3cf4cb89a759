//! The closed state of a backend, written once: `Backend::close` sets it, every later call
//! fails with the same [`ErrorKind::Closed`] error.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// Whether a backend was closed. Put one in the adapter's shared state.
#[derive(Debug, Default)]
pub struct ClosedFlag(AtomicBool);

impl ClosedFlag {
    /// Open.
    pub fn new() -> Self {
        ClosedFlag(AtomicBool::new(false))
    }

    /// Marks closed; `true` the first time (so the caller closes its client once).
    pub fn close(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// Whether [`ClosedFlag::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `Ok` while open; after close, the one `Closed` error (not retryable) naming the
    /// operation.
    pub fn check(&self, operation: &'static str) -> Result<()> {
        if self.is_closed() {
            return Err(closed_error().with_operation(operation));
        }
        Ok(())
    }
}

/// The error every operation on a closed backend returns.
pub fn closed_error() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the broker handle was closed (Broker::close); connect again to continue",
    )
    .retryable(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_once() {
        let f = ClosedFlag::new();
        assert!(f.check("send").is_ok());
        assert!(f.close());
        assert!(!f.close());
        let e = f.check("send").unwrap_err();
        assert_eq!(
            (e.kind(), e.context().operation),
            (ErrorKind::Closed, Some("send"))
        );
    }
}
