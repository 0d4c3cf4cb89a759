//! Typed events: a stable name and version, a JSON Schema generated from the Rust type, and
//! validated encoding into a [`Message`].

use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::schema::SchemaValidator;
use brokerkit_core::{Error, ErrorKind, Headers, Message, Result};

/// Content type of encoded events.
pub const JSON: &str = "application/json";

/// An event contract: serde for the payload, schemars for its JSON Schema, a stable name and
/// version for routing and compatibility.
///
/// ```
/// use brokerkit::Event;
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// struct OrderPlaced { order_id: u64 }
/// impl Event for OrderPlaced {
///     const NAME: &'static str = "order.placed";
///     const VERSION: u32 = 1;
/// }
/// ```
///
/// Or with the derive (feature `derive`, on by default):
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, brokerkit::Event)]
/// #[event(name = "order.placed", version = 2)]
/// struct OrderPlaced { order_id: u64, currency: String }
///
/// use brokerkit::Event;
/// assert_eq!((OrderPlaced::NAME, OrderPlaced::VERSION), ("order.placed", 2));
/// ```
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Stable event type, e.g. `order.placed`.
    const NAME: &'static str;
    /// Schema version; bump it on a breaking change.
    const VERSION: u32;

    /// The JSON Schema of this event (generated once, cached).
    fn schema() -> Arc<SchemaValidator> {
        crate::schema::cache::validator_for::<Self>()
    }

    /// File name of the checked-in schema, e.g. `order.placed.v1.json`.
    fn schema_file_name() -> String {
        format!("{}.v{}.json", Self::NAME, Self::VERSION)
    }
}

/// Encodes `event` as JSON with its type, version and content-type headers, without
/// validating it (the producer's `schema` layer does that).
pub(crate) fn encode_event_unchecked<E: Event>(event: &E) -> Result<Message> {
    let payload = serde_json::to_vec(event).map_err(|e| encode_error::<E>(&e))?;
    event_message::<E>(payload)
}

fn encode_error<E: Event>(e: &serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!("cannot encode {} as JSON: {e}", E::NAME),
    )
}

fn event_message<E: Event>(payload: Vec<u8>) -> Result<Message> {
    let mut headers = Headers::new();
    headers.set_event_type(E::NAME)?;
    headers.set_event_version(E::VERSION)?;
    headers.set_content_type(JSON)?;
    Ok(Message::new(payload).with_headers(headers))
}

/// Encodes `event` as JSON after validating it against its schema, with the event type,
/// version and content type headers set.
///
/// A violation is an [`ErrorKind::Validation`] error listing each one (JSON pointer and reason).
pub fn encode_event<E: Event>(event: &E) -> Result<Message> {
    let value = serde_json::to_value(event).map_err(|e| encode_error::<E>(&e))?;
    E::schema().check(&value)?;
    let payload = serde_json::to_vec(&value).map_err(|e| encode_error::<E>(&e))?;
    event_message::<E>(payload)
}
