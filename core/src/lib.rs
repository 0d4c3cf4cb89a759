//! `brokerkit-core`: the message model, the adapter contract, capabilities and errors.
//!
//! Adapters (`adapters/*`) implement [`Backend`], [`ProducerBackend`], [`ConsumerBackend`] and
//! [`Settle`]; applications use the `brokerkit` crate, which re-exports this one.
#![warn(missing_docs)]

pub mod adapter;
pub mod batch;
pub mod browse;
pub mod capabilities;
pub mod closed;
pub mod config;
pub mod dead_letter;
pub mod delivery;
pub mod emulation;
pub mod error;
pub mod foreign_headers;
pub mod headers;
pub mod lag;
pub mod message;
pub mod profile;
pub mod settings;
mod text;

pub use adapter::{
    Backend, Connector, ConsumerBackend, ConsumerOptions, ProducerBackend, SendNow, DEFAULT_GROUP,
};
pub use async_trait::async_trait;
pub use batch::BatchError;
pub use browse::BrowsedMessage;
pub use bytes::Bytes;
pub use capabilities::{Capabilities, Support};
pub use closed::ClosedFlag;
pub use config::{BrokerUrl, Params};
pub use dead_letter::{
    dead_letter_destination, DeadLetterEnvelope, DeadLetterReason, ValidationIssue,
};
pub use delivery::{Delivery, Settle, Settlement};
pub use emulation::{DeadLetterPrimitives, FailureRecord};
pub use error::{Error, ErrorContext, ErrorKind, Result};
pub use headers::{HeaderName, Headers};
pub use lag::{Lag, LagAccuracy, PartitionLag};
pub use message::Message;
pub use profile::{CloudEventsBinding, LeaseKey, SchemeProfile};
pub use settings::{BrokerSettings, UrlParts};
