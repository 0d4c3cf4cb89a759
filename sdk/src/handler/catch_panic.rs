//! Turns a panicking handler into an error, so the policy (retry, then dead-letter) decides
//! and the consumer keeps running.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use brokerkit_core::{Error, ErrorKind, Result};

pub(crate) struct CatchPanic<F>(pub F);

impl<F: Future<Output = Result<()>>> Future for CatchPanic<F> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // SAFETY: structural pinning of the only field; `CatchPanic` has no `Drop` and does
        // not implement `Unpin` by hand, so the inner future is never moved once pinned.
        let fut = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(p) => p,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Poll::Ready(Err(Error::new(
                    ErrorKind::Handler,
                    format!("handler panicked: {what}"),
                )))
            }
        }
    }
}
