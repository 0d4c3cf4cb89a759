//! Turns a panic — in a handler, its synchronous part, a decoder, a key function or any layer —
//! into an error, so the policy (retry, then dead-letter) decides and the run keeps going.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use brokerkit_core::{Error, ErrorKind, Result};

/// A future whose panic becomes an error of kind `kind` saying `who` panicked.
pub(crate) struct CatchPanic<F> {
    future: F,
    who: &'static str,
    kind: ErrorKind,
}

impl<F> CatchPanic<F> {
    /// A handler's future: a panic is a `Handler` error (retried, then dead-lettered).
    pub fn handler(future: F) -> Self {
        CatchPanic {
            future,
            who: "handler",
            kind: ErrorKind::Handler,
        }
    }

    /// A whole layer stack: a panic is an `Unexpected` error.
    pub fn layers(future: F) -> Self {
        CatchPanic {
            future,
            who: "a receive layer",
            kind: ErrorKind::Unexpected,
        }
    }
}

/// The panic's message, as far as it is a string.
fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`; a panic becomes an error of `kind` saying `who` panicked.
pub(crate) fn call_catching<T>(who: &str, kind: ErrorKind, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|panic| Error::new(kind, format!("{who} panicked: {}", message(&*panic))))
}

impl<T, F: Future<Output = Result<T>>> Future for CatchPanic<F> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        // SAFETY: structural pinning of `future`; `CatchPanic` has no `Drop` and does not
        // implement `Unpin` by hand, so the inner future is never moved once pinned. `who`
        // and `kind` are `Copy` and only read.
        let (who, kind) = (self.who, self.kind);
        let fut = unsafe { self.map_unchecked_mut(|s| &mut s.future) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(p) => p,
            Err(panic) => Poll::Ready(Err(Error::new(
                kind,
                format!("{who} panicked: {}", message(&*panic)),
            ))),
        }
    }
}
