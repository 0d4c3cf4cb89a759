//! The innermost service: the user's function, given the [`crate::Context`] and the input the
//! `decode` layer produced. Its [`crate::HandlerError`] becomes a `brokerkit::Error` by its
//! classification; a panic in the function is a `Handler` error, not a crash.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use brokerkit_core::{Error, ErrorKind, Result};

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::context::Context;
use crate::handler::{call_catching, CatchPanic, HandlerResult};

/// Wraps `f` as the innermost receive service; its input of type `T` comes from the
/// request's extensions (put there by the `decode` layer).
pub fn handler_service<T, F, Fut>(f: F) -> ReceiveService
where
    T: Send + 'static,
    F: Fn(Context, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    ReceiveService::from_arc(Arc::new(HandlerFn {
        f,
        _input: PhantomData::<fn() -> T>,
    }))
}

struct HandlerFn<T, F> {
    f: F,
    _input: PhantomData<fn() -> T>,
}

impl<T, F, Fut> Call<Incoming, Disposition> for HandlerFn<T, F>
where
    T: Send + 'static,
    F: Fn(Context, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(self: Arc<Self>, mut request: Incoming) -> BoxFuture<Result<Disposition>> {
        let Some(input) = request.extensions_mut().remove::<T>() else {
            let e = Error::new(
                ErrorKind::Unexpected,
                format!(
                    "no decoded {} for the handler: the decode layer was removed or replaced",
                    std::any::type_name::<T>()
                ),
            );
            return Box::pin(std::future::ready(Err(e)));
        };
        // The closure's synchronous part may panic too.
        let started = call_catching("handler", ErrorKind::Handler, || {
            (self.f)(request.context, input)
        });
        match started {
            Ok(fut) => {
                // The handler's error becomes a `brokerkit::Error` of the kind its
                // classification says (see `HandlerError::into_error`).
                let fut = async move { fut.await.map_err(crate::HandlerError::into_error) };
                Box::pin(async move { CatchPanic::handler(fut).await.map(|()| Disposition::Ack) })
            }
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}
