//! One consumer, many typed handlers: a [`Router`] dispatches each message by its
//! `event-type` header (and, through [`Versions`], its `event-version`) to the handler of that
//! type. Decoding, schema validation and upcasting happen in the `decode` layer, so a bad
//! payload is dead-lettered with its violations like any typed handler's; the chosen handler
//! runs innermost, inside idempotency and your layers.
//!
//! ```no_run
//! use brokerkit::handler::{Router, Unaccepted};
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # struct Placed { order_id: u64 }
//! # impl brokerkit::Event for Placed { const NAME: &'static str = "order.placed"; const VERSION: u32 = 1; }
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # struct Cancelled { order_id: u64 }
//! # impl brokerkit::Event for Cancelled { const NAME: &'static str = "order.cancelled"; const VERSION: u32 = 1; }
//! # async fn run(broker: brokerkit::Broker) -> brokerkit::Result<()> {
//! let router = Router::new()
//!     .on(|_ctx, e: Placed| async move { Ok(()) })
//!     .on(|_ctx, e: Cancelled| async move { Ok(()) })
//!     .on_unaccepted(Unaccepted::Skip); // other types: ack and log
//! broker.consumer("orders").group("read-model").handle_events(router).run().await?;
//! # Ok(()) }
//! ```
//!
//! A type with no route, or a message without an `event-type` header, follows the router's
//! [`Unaccepted`] policy (default: dead-letter); a version a route does not accept follows
//! that route's `Versions` policy, or the router's when it sets none.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use brokerkit_core::{Message, Result};

use super::decode::{Decoder, Rejection};
use super::unaccepted::Unaccepted;
use super::versions::Versions;
use crate::context::Context;
use crate::event::Event;
use crate::layers::BoxFuture;
use crate::schema::SchemaValidator;

/// A decoded event bound to the handler that takes it; the [`Router`]'s decoder output.
pub struct Dispatch(Box<dyn FnOnce(Context) -> BoxFuture<crate::HandlerResult> + Send>);

impl Dispatch {
    /// Runs the handler on the event.
    pub fn run(self, ctx: Context) -> BoxFuture<crate::HandlerResult> {
        (self.0)(ctx)
    }
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dispatch")
    }
}

trait Route: Send + Sync + 'static {
    fn decode(&self, message: &Message, fallback: Unaccepted) -> Result<Dispatch, Rejection>;
    fn names(&self) -> Vec<&'static str>;
    fn accepted(&self) -> Vec<(&'static str, u32)>;
    fn schemas(&self) -> Vec<Arc<SchemaValidator>>;
}

struct TypedRoute<E, F> {
    versions: Versions<E>,
    f: Arc<F>,
}

impl<E, F, Fut> Route for TypedRoute<E, F>
where
    E: Event,
    F: Fn(Context, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = crate::HandlerResult> + Send + 'static,
{
    fn decode(&self, message: &Message, fallback: Unaccepted) -> Result<Dispatch, Rejection> {
        let event = self.versions.decode_with(message, fallback)?;
        let f = self.f.clone();
        Ok(Dispatch(Box::new(move |ctx| Box::pin(f(ctx, event)))))
    }
    fn names(&self) -> Vec<&'static str> {
        self.versions.names()
    }
    fn accepted(&self) -> Vec<(&'static str, u32)> {
        self.versions.accepted()
    }
    fn schemas(&self) -> Vec<Arc<SchemaValidator>> {
        self.versions.schemas()
    }
}

/// Typed handlers by event type. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Router {
    routes: HashMap<&'static str, Arc<dyn Route>>,
    policy: Unaccepted,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("accepted", &self.accepted())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Router {
    /// No routes; every message follows the policy.
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes events of type `E` (its version only) to `f`. A later route for the same type
    /// replaces an earlier one.
    pub fn on<E, F, Fut>(self, f: F) -> Self
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.on_versions(Versions::<E>::new(), f)
    }

    /// Routes every type and version `versions` accepts to `f`, upcast to `E`.
    pub fn on_versions<E, F, Fut>(mut self, versions: Versions<E>, f: F) -> Self
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        let route: Arc<dyn Route> = Arc::new(TypedRoute {
            versions,
            f: Arc::new(f),
        });
        for name in route.names() {
            self.routes.insert(name, route.clone());
        }
        self
    }

    /// What happens to a type no route takes (default [`Unaccepted::DeadLetter`]).
    pub fn on_unaccepted(mut self, policy: Unaccepted) -> Self {
        self.policy = policy;
        self
    }

    /// Every accepted (event type, version), sorted.
    pub fn accepted(&self) -> Vec<(&'static str, u32)> {
        let mut all: Vec<_> = self.routes.values().flat_map(|r| r.accepted()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The schema of every accepted version (one per (type, version)).
    pub fn schemas(&self) -> Vec<Arc<SchemaValidator>> {
        let mut seen = std::collections::BTreeMap::new();
        for r in self.routes.values() {
            for (key, schema) in r.accepted().into_iter().zip(r.schemas()) {
                seen.entry(key).or_insert(schema);
            }
        }
        seen.into_values().collect()
    }
}

impl Decoder for Router {
    type Output = Dispatch;

    fn decode(&self, message: &Message) -> Result<Dispatch, Rejection> {
        let Some(event_type) = message.headers.event_type() else {
            return Err(self.policy.error(None, None, &self.what_is_routed()).into());
        };
        match self.routes.get(event_type) {
            Some(route) => route.decode(message, self.policy),
            None => {
                let version = message.headers.event_version().ok().flatten();
                Err(self
                    .policy
                    .error(Some(event_type), version, &self.what_is_routed())
                    .into())
            }
        }
    }
}

impl Router {
    fn what_is_routed(&self) -> String {
        let mut names: Vec<_> = self.routes.keys().copied().collect();
        names.sort_unstable();
        format!("this consumer routes {}", names.join(", "))
    }
}
