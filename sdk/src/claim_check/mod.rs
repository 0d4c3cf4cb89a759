//! Claim-check: payloads of any size on every broker. A payload above a threshold is written
//! to an object store and the message carries a reference instead ([`REFERENCE_HEADER`]:
//! bucket, key, size, SHA-256, content type); the consumer fetches and verifies it before
//! decoding, so handlers and schema validation see the real payload.
//!
//! ```
//! # async fn demo() -> brokerkit::Result<()> {
//! use brokerkit::claim_check::{ClaimCheck, MemoryStore};
//! use brokerkit::{Broker, Message};
//!
//! let broker = Broker::connect("memory://?max_payload_bytes=1024").await?;
//! let cc = ClaimCheck::new(MemoryStore::new()); // or ClaimCheck::connect("s3://bucket?…")
//! let mut consumer = broker.consumer("docs").build().await?;
//! let producer = broker.producer("docs").claim_check(cc.clone()).build().await?;
//! producer.send(Message::new(vec![7u8; 100_000])).await?; // > 1 KiB: goes through the store
//! let d = consumer.next().await?.expect("a delivery");
//! assert!(d.message().payload.is_empty()); // a raw consumer sees the reference…
//! assert!(d.message().headers.get("claim-check").is_some());
//! # d.ack().await?; Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! …a handler built with `.claim_check(cc)` gets the 100,000 bytes.
//!
//! **Where the layers sit.** Send: `… → metrics → claim_check → capability check → adapter`
//! (always innermost of the named layers, so your layers see the real payload). Receive:
//! `… → metrics → retry → claim_check → decode → …`, so a missing or corrupt object goes
//! through the retry policy and is dead-lettered with the reason. Both are named
//! `claim_check`: remove or replace them like any layer.
//!
//! **Threshold.** By default a payload is offloaded when it would not fit the broker: when
//! payload plus headers exceed the broker's `max_payload_bytes`. [`ClaimCheck::threshold`]
//! sets a lower one. A payload at or under it is sent as it is, with no store I/O.
//!
//! **Capabilities.** With claim-check on, a producer's effective `max_payload_bytes` is the
//! store's limit ([`ClaimCheck::capabilities`]); a larger payload is refused with
//! `PayloadTooLarge` naming the store and both sizes.
//!
//! **Clean-up** ([`Cleanup`]). `Auto` (default) deletes the object once the message is acked
//! where only one consumer can ever see it ([`brokerkit_core::Capabilities::fan_out`] is
//! `false`), and leaves it to the bucket's expiry rule everywhere else (another group may
//! still need it). Dead-lettered messages keep their object (the reference survives the
//! dead-letter destination and a redrive); so do messages whose send failed after the
//! upload. Install an expiry rule longer than dead letters wait ([`S3Store::expire_after`],
//! or `expire_after_days` on the store URL) as the backstop everywhere.

mod error;
mod fs;
mod memory;
mod reference;
#[cfg(feature = "claim-check-s3")]
mod s3;
mod store;

use std::sync::Arc;

use brokerkit_core::{Capabilities, Message, Result};

pub use error::{ClaimCheckError, Problem};
pub use fs::FsStore;
pub use memory::MemoryStore;
pub use reference::{sha256_hex, Reference, REFERENCE_HEADER};
#[cfg(feature = "claim-check-s3")]
pub use s3::{S3Store, S3_KEYS};
pub use store::{connect_object_store, ObjectStore};

/// Key prefix of offloaded payloads: `brokerkit-claim-check/<destination>/<id>`.
pub const DEFAULT_PREFIX: &str = "brokerkit-claim-check";

/// When offloaded objects are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cleanup {
    /// Delete after ack where the destination has no fan-out (one consumer sees each
    /// message); elsewhere leave it to the bucket's expiry rule.
    #[default]
    Auto,
    /// Delete once the message is acked (also dropped by policy, or acked as a duplicate).
    /// Only safe when no other consumer group reads the destination.
    DeleteAfterAck,
    /// Never delete: the bucket's expiry rule removes objects.
    Expire,
}

impl Cleanup {
    /// Parses `auto`, `delete_after_ack` or `expire`.
    pub fn parse(text: &str) -> Result<Cleanup> {
        match text {
            "auto" => Ok(Cleanup::Auto),
            "delete_after_ack" => Ok(Cleanup::DeleteAfterAck),
            "expire" => Ok(Cleanup::Expire),
            other => Err(brokerkit_core::Error::config(format!(
                "claim-check cleanup {other:?}: expected auto, delete_after_ack or expire"
            ))),
        }
    }
}

/// A claim-check set-up: the store, the threshold and the clean-up. Cheap to clone; give the
/// same one to producers ([`crate::ProducerBuilder::claim_check`]) and handlers
/// ([`crate::HandlerBuilder::claim_check`]).
#[derive(Clone)]
pub struct ClaimCheck {
    store: Arc<dyn ObjectStore>,
    threshold: Option<usize>,
    cleanup: Cleanup,
    prefix: Arc<str>,
}

impl std::fmt::Debug for ClaimCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimCheck")
            .field(
                "store",
                &format_args!("{}://{}", self.store.kind(), self.store.bucket()),
            )
            .field("threshold", &self.threshold)
            .field("cleanup", &self.cleanup)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl ClaimCheck {
    /// Claim-check through `store`, default threshold and clean-up.
    pub fn new(store: impl ObjectStore) -> Self {
        ClaimCheck::with_store(Arc::new(store))
    }

    /// Claim-check through a shared store.
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        ClaimCheck {
            store,
            threshold: None,
            cleanup: Cleanup::Auto,
            prefix: DEFAULT_PREFIX.into(),
        }
    }

    /// Claim-check through the store at `url` (see [`connect_object_store`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(ClaimCheck::with_store(connect_object_store(url).await?))
    }

    /// Offloads payloads larger than `bytes` (capped at what the broker carries).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = Some(bytes);
        self
    }

    /// When objects are deleted (default [`Cleanup::Auto`]).
    pub fn cleanup(mut self, cleanup: Cleanup) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// Key prefix (default [`DEFAULT_PREFIX`]); scope the bucket's expiry rule to it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let p: String = prefix.into();
        self.prefix = p.trim_matches('/').into();
        self
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `message` goes through the store on a broker with `caps`.
    pub fn offloads(&self, message: &Message, caps: &Capabilities) -> bool {
        let len = message.payload.len();
        let fits = caps
            .max_payload_bytes
            .saturating_sub(message.headers.encoded_len());
        match self.threshold {
            Some(t) => len > t.min(fits),
            None => len > fits,
        }
    }

    /// The broker's capabilities as a claim-checked producer sees them: `max_payload_bytes`
    /// is the store's limit.
    pub fn capabilities(&self, broker: &Capabilities) -> Capabilities {
        let mut caps = broker.clone();
        caps.max_payload_bytes =
            usize::try_from(self.store.max_object_bytes()).unwrap_or(usize::MAX);
        caps
    }

    /// Whether consumers delete objects after ack on a broker with `caps`.
    pub fn deletes_after_ack(&self, caps: &Capabilities) -> bool {
        match self.cleanup {
            Cleanup::Auto => !caps.fan_out,
            Cleanup::DeleteAfterAck => true,
            Cleanup::Expire => false,
        }
    }
}
