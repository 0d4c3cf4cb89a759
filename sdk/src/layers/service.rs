//! The type-erased service both stacks are made of, and [`from_fn`] layers.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use brokerkit_core::{Error, Result};
use tower::ServiceExt;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A type-erased service of a layer stack: cheap to clone (one `Arc`), callable through
/// `&self` ([`SharedService::run`]) and a [`tower::Service`], so any tower layer can wrap it.
pub struct SharedService<Req, Resp>(Arc<dyn Call<Req, Resp>>);

impl<Req, Resp> Clone for SharedService<Req, Resp> {
    fn clone(&self) -> Self {
        SharedService(self.0.clone())
    }
}

/// The object-safe core of a [`SharedService`]; brokerkit's own layers implement it directly
/// so a call costs one `Arc` clone and at most one boxed future.
pub(crate) trait Call<Req, Resp>: Send + Sync + 'static {
    fn call(self: Arc<Self>, request: Req) -> BoxFuture<Result<Resp>>;
}

impl<Req: Send + 'static, Resp: Send + 'static> SharedService<Req, Resp> {
    /// Wraps any tower service; it is cloned once per call, as hyper and axum do.
    pub fn new<S>(service: S) -> Self
    where
        S: tower::Service<Req, Response = Resp, Error = Error> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        SharedService(Arc::new(Tower(service)))
    }

    /// A service from an async function.
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        SharedService(Arc::new(FnService(f)))
    }

    pub(crate) fn from_arc(inner: Arc<dyn Call<Req, Resp>>) -> Self {
        SharedService(inner)
    }

    /// Calls the service.
    pub fn run(&self, request: Req) -> BoxFuture<Result<Resp>> {
        self.0.clone().call(request)
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> tower::Service<Req> for SharedService<Req, Resp> {
    type Response = Resp;
    type Error = Error;
    type Future = BoxFuture<Result<Resp>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> BoxFuture<Result<Resp>> {
        self.run(request)
    }
}

/// A finished call's outcome as a [`BoxFuture`]: `Ok(())` is a zero-sized future, so its box
/// allocates nothing (a send the adapter completed at once costs no future).
pub(crate) fn finished(result: Result<()>) -> BoxFuture<Result<()>> {
    /// Ready with `Ok(())`; zero-sized.
    struct Done;
    impl Future for Done {
        type Output = Result<()>;
        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
    match result {
        Ok(()) => Box::pin(Done),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// Polls `fut` once with a waker that does nothing: its output if it finished at once. A
/// future still pending is polled again with the caller's waker before anything waits on it
/// (a future registers the waker of its latest poll), so nothing is lost.
pub(crate) fn now_or_later<T>(fut: &mut BoxFuture<T>) -> Option<T> {
    match fut
        .as_mut()
        .poll(&mut TaskContext::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

struct Tower<S>(S);

impl<Req, Resp, S> Call<Req, Resp> for Tower<S>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    S: tower::Service<Req, Response = Resp, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    fn call(self: Arc<Self>, request: Req) -> BoxFuture<Result<Resp>> {
        Box::pin(self.0.clone().oneshot(request))
    }
}

struct FnService<F>(F);

impl<Req, Resp, F, Fut> Call<Req, Resp> for FnService<F>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp>> + Send + 'static,
{
    fn call(self: Arc<Self>, request: Req) -> BoxFuture<Result<Resp>> {
        Box::pin((self.0)(request))
    }
}

/// A layer from an async function of the request and the next service, like axum's
/// `middleware::from_fn`. Works on both stacks.
///
/// ```
/// use brokerkit::layers::from_fn;
/// use brokerkit::layers::receive::{Incoming, ReceiveService};
/// use brokerkit::{Error, ErrorKind};
///
/// // Dead-letter messages of an unknown tenant without running the handler.
/// let tenant_check = from_fn(|incoming: Incoming, next: ReceiveService| async move {
///     match incoming.message.headers.get("tenant") {
///         Some("acme") => next.run(incoming).await,
///         _ => Err(Error::new(ErrorKind::Rejected, "unknown tenant")),
///     }
/// });
/// # let _ = tenant_check;
/// ```
pub fn from_fn<F>(f: F) -> FromFnLayer<F> {
    FromFnLayer(f)
}

/// See [`from_fn`].
#[derive(Clone)]
pub struct FromFnLayer<F>(F);

impl<Req, Resp, F, Fut> tower::Layer<SharedService<Req, Resp>> for FromFnLayer<F>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(Req, SharedService<Req, Resp>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp>> + Send + 'static,
{
    type Service = SharedService<Req, Resp>;

    fn layer(&self, inner: SharedService<Req, Resp>) -> SharedService<Req, Resp> {
        let f = self.0.clone();
        SharedService::from_fn(move |request| f(request, inner.clone()))
    }
}

/// A tower layer that fits a brokerkit stack of `Req → Resp` services: any
/// `tower::Layer<SharedService<Req, Resp>>` whose service is `Clone + Send + Sync` and answers
/// with brokerkit's [`Error`]. Implemented for every such layer; you never implement it.
pub trait StackLayer<Req, Resp>: Send + Sync + 'static {
    /// The layer as a function over [`SharedService`].
    #[doc(hidden)]
    fn into_layer_fn(self) -> ErasedLayer<Req, Resp>;
}

/// A type-erased layer (see [`StackLayer`]).
#[doc(hidden)]
pub struct ErasedLayer<Req, Resp>(pub(crate) super::stack::LayerFn<Req, Resp>);

impl<Req, Resp, L> StackLayer<Req, Resp> for L
where
    Req: Send + 'static,
    Resp: Send + 'static,
    L: tower::Layer<SharedService<Req, Resp>> + Send + Sync + 'static,
    L::Service: tower::Service<Req, Response = Resp, Error = Error> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<Req>>::Future: Send + 'static,
{
    /// Without re-wrapping services that already are a [`SharedService`].
    fn into_layer_fn(self) -> ErasedLayer<Req, Resp> {
        ErasedLayer(Arc::new(move |inner| {
            let service = self.layer(inner);
            match (&service as &dyn Any).downcast_ref::<SharedService<Req, Resp>>() {
                Some(same) => same.clone(),
                None => SharedService::new(service),
            }
        }))
    }
}

/// A type map: at most one value per type.
///
/// A request carries a handful of values at most (the decoded input, the handler's hooks,
/// an event's schema), so they sit in a small list searched by `TypeId`: no hashing, one
/// allocation once the first value is stored.
#[derive(Default)]
pub struct Extensions(Vec<(TypeId, Box<dyn Any + Send>)>);

impl Extensions {
    /// Stores `value`, returning the previous value of its type.
    pub fn insert<T: Send + 'static>(&mut self, value: T) -> Option<T> {
        let id = TypeId::of::<T>();
        if let Some((_, slot)) = self.0.iter_mut().find(|(t, _)| *t == id) {
            let old = std::mem::replace(slot, Box::new(value));
            return old.downcast().ok().map(|b| *b);
        }
        if self.0.capacity() == 0 {
            self.0.reserve_exact(4);
        }
        self.0.push((id, Box::new(value)));
        None
    }

    /// The value of type `T`, if any.
    pub fn get<T: Send + 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.0.iter().find(|(t, _)| *t == id)?.1.downcast_ref()
    }

    /// Takes out the value of type `T`.
    pub fn remove<T: Send + 'static>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let at = self.0.iter().position(|(t, _)| *t == id)?;
        self.0.swap_remove(at).1.downcast().ok().map(|b| *b)
    }
}

#[cfg(test)]
mod extension_tests {
    use super::Extensions;

    #[test]
    fn one_value_per_type_replaced_read_and_taken() {
        let mut ext = Extensions::default();
        assert_eq!(ext.get::<u32>(), None);
        assert_eq!(ext.insert(7u32), None);
        assert_eq!(ext.insert("a"), None);
        assert_eq!(ext.insert(String::from("b")), None);
        assert_eq!(ext.insert(8u32), Some(7));
        assert_eq!(ext.get::<u32>(), Some(&8));
        assert_eq!(ext.get::<&str>(), Some(&"a"));
        assert_eq!(ext.remove::<&str>(), Some("a"));
        assert_eq!(ext.remove::<&str>(), None);
        assert_eq!(ext.get::<String>().map(String::as_str), Some("b"));
        assert_eq!(ext.get::<u32>(), Some(&8));
        assert_eq!(ext.get::<u64>(), None);
    }
}
