//! Several versions of one event for one handler: the handler takes the newest type `E`, and
//! each older version it accepts comes with a typed upcaster (`V1 → E`). Each version is
//! validated against its own schema before it is upcast, so a v1 payload is checked as v1.
//!
//! ```
//! use brokerkit::handler::{Unaccepted, Versions};
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # struct PlacedV1 { order_id: u64 }
//! # impl brokerkit::Event for PlacedV1 { const NAME: &'static str = "order.placed"; const VERSION: u32 = 1; }
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # struct PlacedV2 { order_id: u64, currency: String }
//! # impl brokerkit::Event for PlacedV2 { const NAME: &'static str = "order.placed"; const VERSION: u32 = 2; }
//! let versions = Versions::<PlacedV2>::new()
//!     .upcast(|v1: PlacedV1| PlacedV2 { order_id: v1.order_id, currency: "EUR".into() })
//!     .on_unaccepted(Unaccepted::RetryLater);
//! assert_eq!(versions.accepted(), vec![("order.placed", 1), ("order.placed", 2)]);
//! ```
//!
//! Versions are told apart by the `event-version` header (a message without one is taken as
//! `E`'s version). An upcaster's source type may have another name (a renamed event): its
//! messages are then recognised by that name. Any other type or version follows the
//! [`Unaccepted`] policy (default: dead-letter).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use brokerkit_core::{Message, Result};

use super::decode::{decode_payload, Decoder, Rejection};
use super::unaccepted::Unaccepted;
use crate::event::Event;
use crate::schema::SchemaValidator;

type Upcast<E> = Arc<dyn Fn(&Message) -> std::result::Result<E, Rejection> + Send + Sync>;

/// One accepted (name, version) of a [`Versions`]: how to decode it and its schema.
struct Accepted<E> {
    decode: Upcast<E>,
    schema: fn() -> Arc<SchemaValidator>,
}

impl<E> Clone for Accepted<E> {
    fn clone(&self) -> Self {
        Accepted {
            decode: self.decode.clone(),
            schema: self.schema,
        }
    }
}

/// Decodes event `E` and the older versions it has upcasters for. See the
/// [module docs](self).
pub struct Versions<E> {
    accepted: BTreeMap<(&'static str, u32), Accepted<E>>,
    policy: Option<Unaccepted>,
    _event: PhantomData<fn() -> E>,
}

impl<E> Clone for Versions<E> {
    fn clone(&self) -> Self {
        Versions {
            accepted: self.accepted.clone(),
            policy: self.policy,
            _event: PhantomData,
        }
    }
}

impl<E: Event> Default for Versions<E> {
    fn default() -> Self {
        Versions::new()
    }
}

impl<E: Event> Versions<E> {
    /// Accepts `E` itself.
    pub fn new() -> Self {
        let mut accepted = BTreeMap::new();
        accepted.insert(
            (E::NAME, E::VERSION),
            Accepted {
                decode: Arc::new(|m: &Message| decode_payload::<E>(m)) as Upcast<E>,
                schema: E::schema,
            },
        );
        Versions {
            accepted,
            policy: None,
            _event: PhantomData,
        }
    }

    /// Also accepts `V` (validated against `V`'s schema), turned into `E` by `upcast`. An
    /// upcaster registered twice for the same version replaces the first.
    pub fn upcast<V: Event>(self, upcast: impl Fn(V) -> E + Send + Sync + 'static) -> Self {
        self.try_upcast(move |v: V| Ok(upcast(v)))
    }

    /// Like [`Versions::upcast`] for an upcaster that can fail: its error goes through the
    /// retry policy like a handler's (a `Rejected` error dead-letters at once).
    pub fn try_upcast<V: Event>(
        mut self,
        upcast: impl Fn(V) -> Result<E> + Send + Sync + 'static,
    ) -> Self {
        let decode = move |m: &Message| {
            let old = decode_payload::<V>(m)?;
            upcast(old).map_err(Rejection::from)
        };
        self.accepted.insert(
            (V::NAME, V::VERSION),
            Accepted {
                decode: Arc::new(decode),
                schema: V::schema,
            },
        );
        self
    }

    /// What happens to a type or version not accepted here (default
    /// [`Unaccepted::DeadLetter`]; inside a [`super::Router`], the router's policy unless
    /// set here).
    pub fn on_unaccepted(mut self, policy: Unaccepted) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The accepted (event type, version) pairs, in order.
    pub fn accepted(&self) -> Vec<(&'static str, u32)> {
        self.accepted.keys().copied().collect()
    }

    /// The schema of each accepted version, in the order of [`Versions::accepted`].
    pub fn schemas(&self) -> Vec<Arc<SchemaValidator>> {
        self.accepted.values().map(|a| (a.schema)()).collect()
    }

    /// The event type names accepted (usually one).
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.accepted.keys().map(|(n, _)| *n).collect();
        names.dedup();
        names
    }

    /// Decodes with `fallback` as the policy when none is set here.
    pub(crate) fn decode_with(
        &self,
        message: &Message,
        fallback: Unaccepted,
    ) -> std::result::Result<E, Rejection> {
        let policy = self.policy.unwrap_or(fallback);
        let h = &message.headers;
        let name = h.event_type().unwrap_or(E::NAME);
        let version = h.event_version()?;
        let key_version = match version {
            Some(v) => v,
            None if name == E::NAME => E::VERSION,
            None => {
                return Err(policy
                    .error(Some(name), None, &self.what_is_accepted())
                    .into())
            }
        };
        match self.accepted.get(&(name, key_version)) {
            Some(a) => (a.decode)(message),
            None => Err(policy
                .error(Some(name), version, &self.what_is_accepted())
                .into()),
        }
    }

    fn what_is_accepted(&self) -> String {
        let list: Vec<String> = self
            .accepted
            .keys()
            .map(|(n, v)| format!("{n} v{v}"))
            .collect();
        format!("this handler accepts {}", list.join(", "))
    }
}

impl<E: Event> Decoder for Versions<E> {
    type Output = E;

    fn decode(&self, message: &Message) -> std::result::Result<E, Rejection> {
        self.decode_with(message, Unaccepted::default())
    }
}
