//! Producer-side idempotency key: a user function over the message sets the
//! `idempotency-key` header, which adapters map to the broker's native dedup where it has one
//! ([`brokerkit_core::Capabilities::native_dedup`]) and consumers use for idempotent handling.

use std::sync::Arc;

use brokerkit_core::{Message, Result};

use super::Stamp;

/// Sets the idempotency key from a function, unless the message has one.
#[derive(Clone)]
pub struct IdempotencyKeyLayer {
    key: crate::idempotency::KeyFn,
}

impl IdempotencyKeyLayer {
    /// Uses `key` to derive the key.
    pub fn new(key: impl Fn(&Message) -> Option<String> + Send + Sync + 'static) -> Self {
        IdempotencyKeyLayer { key: Arc::new(key) }
    }
}

impl Stamp for IdempotencyKeyLayer {
    fn stamp(&self, message: &mut Message) -> Result<()> {
        if message.headers.idempotency_key().is_none() {
            if let Some(k) = (self.key)(message) {
                message.headers.set_idempotency_key(k)?;
            }
        }
        Ok(())
    }
}
