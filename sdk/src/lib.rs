//! # brokerkit
//!
//! One API to publish and consume events, whatever the broker underneath, chosen by URL: the
//! in-process `memory://` broker, and one adapter per broker behind a cargo feature (the
//! adapters and their URLs are listed in the repository's `adapters/` folder).
//!
//! ```
//! # async fn demo() -> brokerkit::Result<()> {
//! use brokerkit::{Broker, Message};
//!
//! let broker = Broker::connect("memory://").await?;
//! let mut billing = broker.consumer("orders").group("billing").build().await?;
//! let orders = broker.producer("orders").build().await?;
//! orders.send(Message::new(r#"{"order_id":1}"#)).await?;
//! let delivery = billing.next().await?.expect("a delivery");
//! assert_eq!(delivery.attempt(), 1);
//! delivery.ack().await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Handlers return a [`HandlerResult`]: `?` works on any error (a retried handler failure);
//! [`HandlerError::permanent`] or [`ResultExt::permanent`] dead-letters at once.
//! [`Broker::connect`] waits up to 30 s for a broker that is not up yet ([`ConnectOptions`]);
//! [`shutdown_signal`] completes on Ctrl-C or SIGTERM.
//!
//! # Cargo features
//!
//! Only `memory://` and the in-memory idempotency store are built in; everything else is
//! opt-in so a service compiles only the clients it uses. Items that need a feature show it
//! in these docs.
//!
//! | feature | adds |
//! |---|---|
//! | one per adapter, named after it | that adapter's URL schemes (see [`Registry`]; connecting to a scheme whose feature is off names the feature) |
//! | `all-brokers` | every adapter |
//! | `redis` | `redis://` idempotency store ([`idempotency::RedisStore`](crate::idempotency)) |
//! | `postgres` | `postgres://` idempotency store |
//! | `config-file` | [`Broker::from_config`] and `brokerkit.toml` ([`config_file`]) |
//! | `test-kit` | [`Context::builder`] and the in-memory `TestHarness` (`brokerkit::testing`) |
//! | `claim-check` | claim-check layers with file and memory object stores (`brokerkit::claim_check`) |
//! | `claim-check-s3` | the S3 object store for claim-check (aws-sdk-s3; LocalStack, MinIO, …) |
//!
//! A URL or store whose feature is off is a `Config` error that names the feature.
//!
//! # Guides
//!
//! In the repository, under `docs/guides/`:
//! - `testing.md`: unit-testing handlers and running them on `memory://` with the test kit;
//! - `event-versions.md`: rolling out a new event version (and why `deny_unknown_fields`
//!   makes any added field forward-breaking);
//! - `operating-a-consumer.md`: dead letters, redrive and its defaults, lag, health,
//!   in-process throughput and the allocator;
//! - `choosing-a-broker.md`: what each broker can do, and what that means for you.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[derive(Event)]` expands to `::brokerkit::Event`; this makes that path work in here too.
extern crate self as brokerkit;

pub mod asyncapi;
mod batcher;
mod broker;
mod browse;
#[cfg(feature = "claim-check")]
pub mod claim_check;
mod clock;
pub mod cloudevents;
#[cfg(feature = "config-file")]
pub mod config_file;
mod connect;
mod consumer;
mod consumer_builder;
mod context;
mod event;
pub mod faults;
mod features;
pub mod handler;
pub mod health;
pub mod idempotency;
mod ids;
mod lag;
pub mod layers;
pub mod metrics;
mod producer;
mod producer_builder;
pub mod redrive;
pub mod registry;
pub mod retry;
pub mod schema;
mod shutdown;
#[cfg(feature = "test-kit")]
pub mod testing;

pub use batcher::{BatcherOptions, Receipt, SendBatcher};
pub use broker::{Broker, URL_ENV};
pub use brokerkit_core as core;
pub use brokerkit_core::{
    dead_letter_destination, Backend, BrokerSettings, BrokerUrl, BrowsedMessage, Bytes,
    Capabilities, ConsumerBackend, ConsumerOptions, DeadLetterEnvelope, DeadLetterReason, Delivery,
    Error, ErrorKind, Headers, Lag, LagAccuracy, Message, PartitionLag, ProducerBackend, Result,
    Support, ValidationIssue,
};
/// `#[derive(Event)]` with `#[event(name = "order.placed", version = 2)]` (feature `derive`).
#[cfg(feature = "derive")]
pub use brokerkit_derive::Event;
/// The always-available in-process broker (`memory://`), from the `brokerkit-memory` crate.
pub use brokerkit_memory as memory;
pub use browse::{DeadLetterView, MAX_BROWSE};
#[cfg(feature = "config-file")]
pub use config_file::BrokerConfig;
pub use connect::{ConnectOptions, CONNECT_DEADLINE_ENV};
pub use consumer::{ack_all, Consumer, ShutdownHandle};
pub use consumer_builder::MAX_PREFETCH;
pub use consumer_builder::{ConsumerBuilder, HandlerBuilder};
pub use context::Context;
pub use event::{encode_event, Event};
pub use handler::{
    Handler, HandlerError, HandlerResult, ResultExt, RunReport, RunningHandler,
    SETTLE_FAILURE_LIMIT,
};
pub use idempotency::{connect_store, Idempotency, IdempotencyStore};
pub use producer::Producer;
pub use producer_builder::ProducerBuilder;
pub use redrive::{redrive, RedriveOptions, RedriveReport};
pub use registry::settings::*;
pub use registry::Registry;
pub use retry::{Backoff, Decision, RetryPolicy};
pub use schema::SchemaValidator;
pub use shutdown::shutdown_signal;

/// The group a consumer joins when it names none.
pub use brokerkit_core::DEFAULT_GROUP;

/// Canonical header names.
pub use brokerkit_core::headers::names as header_names;
