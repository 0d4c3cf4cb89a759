//! Layers: every cross-cutting concern of sending and receiving, one concern per module, as
//! [`tower::Layer`]s in a documented default order that you can change and extend.
//!
//! - **Send** ([`send`]): trace context → correlation → schema → idempotency key → *your
//!   layers* → capability check → adapter. Change it on the [`crate::ProducerBuilder`]
//!   (`layer`, `stamp`, `layer_before`, `without_layer`, `replace_layer`).
//! - **Receive** ([`receive`]): trace → correlation → retry/dead-letter → decode and schema
//!   validation → idempotency → *your layers* → handler. Change it on the
//!   [`crate::HandlerBuilder`] with the same methods.
//!
//! Both stacks are made of [`SharedService`]s, which are [`tower::Service`]s: any tower
//! middleware (timeouts, concurrency and rate limits, load shedding) fits, and [`from_fn`]
//! writes a layer as one async function.
//!
//! A user-written async send layer, timing each send and logging the result:
//!
//! ```
//! use brokerkit::layers::from_fn;
//! use brokerkit::layers::send::{Outgoing, SendService};
//!
//! let timed = from_fn(|out: Outgoing, next: SendService| async move {
//!     let destination = out.destination().to_string();
//!     let started = std::time::Instant::now();
//!     let result = next.run(out).await;
//!     tracing::info!(destination, ok = result.is_ok(), took = ?started.elapsed(), "sent");
//!     result
//! });
//! # async fn demo(timed: impl tower::Layer<brokerkit::layers::send::SendService, Service = brokerkit::layers::send::SendService> + Send + Sync + 'static) -> brokerkit::Result<()> {
//! let broker = brokerkit::Broker::connect("memory://").await?;
//! let producer = broker.producer("orders").layer("timed", timed).build().await?;
//! producer.send(brokerkit::Message::new("{}")).await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo(timed)).unwrap();
//! ```

pub mod receive;
pub mod send;
mod service;
mod stack;

pub(crate) use service::{finished, now_or_later, Call};
pub use service::{
    from_fn, BoxFuture, ErasedLayer, Extensions, FromFnLayer, SharedService, StackLayer,
};
pub use stack::LayerStack;

/// Polls `fut` once: its output if it is ready, `None` (with the waker registered) if not.
pub(crate) async fn poll_once<F: std::future::Future>(
    mut fut: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}
