//! # brokerkit
//!
//! One API to publish and consume events, whatever the broker underneath: memory, RabbitMQ,
//! NATS JetStream, Kafka, SQS/SNS, chosen by URL.
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
#![warn(missing_docs)]

mod broker;
mod browse;
#[cfg(feature = "config-file")]
pub mod config_file;
mod consumer;
mod consumer_builder;
mod context;
mod event;
pub mod faults;
pub mod handler;
pub mod health;
pub mod idempotency;
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

pub use broker::{Broker, URL_ENV};
pub use brokerkit_core as core;
pub use brokerkit_core::{
    dead_letter_destination, Backend, BrokerUrl, BrowsedMessage, Bytes, Capabilities,
    ConsumerBackend, ConsumerOptions, DeadLetterEnvelope, DeadLetterReason, Delivery, Error,
    ErrorKind, Headers, Lag, LagAccuracy, Message, PartitionLag, ProducerBackend, Result, Support,
    ValidationIssue,
};
/// The always-available in-process broker (`memory://`), from the `brokerkit-memory` crate.
pub use brokerkit_memory as memory;
pub use browse::{DeadLetterView, MAX_BROWSE};
#[cfg(feature = "config-file")]
pub use config_file::BrokerConfig;
pub use consumer::{Consumer, ShutdownHandle};
pub use consumer_builder::MAX_PREFETCH;
pub use consumer_builder::{ConsumerBuilder, HandlerBuilder};
pub use context::Context;
pub use event::{encode_event, Event};
pub use handler::{Handler, RunReport, RunningHandler};
pub use idempotency::{connect_store, Idempotency, IdempotencyStore};
pub use producer::Producer;
pub use producer_builder::ProducerBuilder;
pub use redrive::{redrive, RedriveOptions, RedriveReport};
pub use registry::Registry;
pub use retry::{Backoff, Decision, RetryPolicy};
pub use schema::SchemaValidator;
pub use shutdown::shutdown_signal;

/// The group a consumer joins when it names none.
pub use brokerkit_core::DEFAULT_GROUP;

/// Canonical header names.
pub use brokerkit_core::headers::names as header_names;
