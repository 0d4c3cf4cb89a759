//! `memory://`: an in-process broker with the semantics of a real one.
//!
//! - Destinations act as topics with durable consumer groups: every group receives each
//!   message sent after it first subscribed; consumers of one group compete. Messages sent
//!   before any group subscribed wait for the first group (so a destination also works as a
//!   plain queue). A consumer without a group joins the group `default`.
//! - At-least-once: a delivery nacked, dropped unsettled, or held past the visibility timeout
//!   is delivered again with its attempt count increased.
//! - `nack` with a delay; per-key ordering (one message per key in flight, like FIFO
//!   queues' message groups); dead-lettering to `<destination>.dlq` with the envelope.
//! - Each group holds at most `capacity` messages; senders wait for room (backpressure).
//!
//! URL: `memory://[name][?capacity=N&visibility_timeout_ms=N&max_payload_bytes=N]`.
//! Without a name every `connect` makes a private broker; with a name, connections in one
//! process share the broker of that name (its settings come from the first connection).
//!
//! Files follow the adapter template (`adapters/README.md`): `engine/` is the "client", `link`
//! the shared state, `producer`, `consumer` and `settle` on top, `backend` the handle and
//! connector, `config` the settings.
#![warn(missing_docs)]

mod backend;
mod config;
mod consumer;
mod engine;
mod lag;
mod link;
mod producer;
mod profile;
mod settle;

pub use backend::{MemoryBroker, MemoryConnector, SCHEMES};
pub use config::{MemoryConfig, KEYS};
pub use link::NAME;
