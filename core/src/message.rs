//! The message: payload bytes, headers and an optional ordering key.

use bytes::Bytes;

use crate::headers::Headers;

/// A message as it travels through a broker.
///
/// The payload is opaque bytes (an empty payload is valid). The ordering key, where the adapter
/// supports it (see [`crate::Capabilities::ordering_key`]), keeps messages with the same key in
/// send order (a record key, a FIFO message group, …: the adapter's README says which).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Body bytes.
    pub payload: Bytes,
    /// Headers, canonical and user-defined.
    pub headers: Headers,
    /// Ordering key.
    pub key: Option<String>,
}

impl Message {
    /// A message with this payload, no headers and no key.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Message {
            payload: payload.into(),
            headers: Headers::new(),
            key: None,
        }
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the ordering key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}
