//! How a handler gets its input from a message: a typed event, JSON checked against a schema
//! file, or the raw message. A failure says why and lists schema violations.

use std::marker::PhantomData;
use std::sync::Arc;

use brokerkit_core::{Error, ErrorKind, Message, ValidationIssue};
use serde_json::Value;

use crate::event::Event;
use crate::schema::{validation_error, SchemaValidator};

/// Why a message could not be decoded (it is dead-lettered with this).
#[derive(Debug)]
pub struct Rejection {
    /// `Decode` or `Validation`.
    pub error: Error,
    /// Schema violations, where that was the problem.
    pub issues: Vec<ValidationIssue>,
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Rejection {
            error,
            issues: Vec::new(),
        }
    }
}

/// Turns a message into a handler's input.
pub trait Decoder: Send + Sync + 'static {
    /// The handler's input.
    type Output: Send + 'static;
    /// Decodes (and validates) `message`.
    fn decode(&self, message: &Message) -> Result<Self::Output, Rejection>;
}

fn parse_json(message: &Message, what: &str) -> Result<Value, Rejection> {
    serde_json::from_slice(&message.payload).map_err(|e| {
        Rejection::from(Error::new(
            ErrorKind::Decode,
            format!("payload is not valid JSON for {what}: {e}"),
        ))
    })
}

fn validate(validator: &SchemaValidator, value: &Value) -> Result<(), Rejection> {
    let issues = validator.violations(value);
    if issues.is_empty() {
        return Ok(());
    }
    Err(Rejection {
        error: validation_error(validator.name(), &issues),
        issues,
    })
}

/// Decodes typed events `E`: checks the event type and version headers (when present), parses
/// the JSON, validates it against `E`'s schema, then deserializes.
pub struct Typed<E> {
    /// `E::schema()`, looked up once per decoder rather than once per message.
    schema: std::sync::OnceLock<Arc<SchemaValidator>>,
    _event: PhantomData<fn() -> E>,
}

impl<E> Default for Typed<E> {
    fn default() -> Self {
        Typed {
            schema: std::sync::OnceLock::new(),
            _event: PhantomData,
        }
    }
}

impl<E: Event> Decoder for Typed<E> {
    type Output = E;

    fn decode(&self, message: &Message) -> Result<E, Rejection> {
        let h = &message.headers;
        if let Some(t) = h.event_type() {
            if t != E::NAME {
                return Err(Error::new(
                    ErrorKind::Decode,
                    format!("event type is {t:?}; this handler takes {:?}", E::NAME),
                )
                .into());
            }
        }
        match h.event_version() {
            Ok(Some(v)) if v != E::VERSION => {
                return Err(Error::new(
                    ErrorKind::Decode,
                    format!(
                        "event version is {v}; this handler takes {} v{}",
                        E::NAME,
                        E::VERSION
                    ),
                )
                .into())
            }
            Err(e) => return Err(e.into()),
            _ => {}
        }
        decode_with::<E>(self.schema.get_or_init(E::schema), message)
    }
}

/// Parses the payload as JSON, validates it against `E`'s schema and deserializes it (no
/// header checks).
pub(crate) fn decode_payload<E: Event>(message: &Message) -> Result<E, Rejection> {
    decode_with::<E>(&E::schema(), message)
}

/// [`decode_payload`] with `E`'s schema at hand: the payload is parsed once, the parsed form
/// validated, then moved into `E`.
fn decode_with<E: Event>(schema: &SchemaValidator, message: &Message) -> Result<E, Rejection> {
    let value = parse_json(message, E::NAME)?;
    validate(schema, &value)?;
    serde_json::from_value(value).map_err(|e| {
        Rejection::from(Error::new(
            ErrorKind::Decode,
            format!(
                "payload does not decode as {} v{}: {e}",
                E::NAME,
                E::VERSION
            ),
        ))
    })
}

/// Decodes JSON validated against a schema with no Rust type (e.g. a shared schema file).
pub struct JsonWithSchema(pub Arc<SchemaValidator>);

impl Decoder for JsonWithSchema {
    type Output = Value;

    fn decode(&self, message: &Message) -> Result<Value, Rejection> {
        let value = parse_json(message, self.0.name())?;
        validate(&self.0, &value)?;
        Ok(value)
    }
}

/// Hands over the message as it is.
pub struct Raw;

impl Decoder for Raw {
    type Output = Message;

    fn decode(&self, message: &Message) -> Result<Message, Rejection> {
        Ok(message.clone())
    }
}
