//! What an adapter tells the SDK about its wire conventions, so that the SDK's protocol-aware
//! features (AsyncAPI documents, CloudEvents headers, the configuration file's lease setting)
//! have no per-broker branches: the adapter declares, the SDK reads.
//!
//! [`crate::Connector::profile`] gives it for a URL scheme without connecting (AsyncAPI
//! documents are written offline); [`crate::Backend::profile`] for a connected broker.

/// How CloudEvents attributes travel as headers on one transport: its CloudEvents protocol
/// binding (attribute `id` becomes the header `<prefix>id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudEventsBinding {
    prefix: &'static str,
    percent_encoded: bool,
    content_type_attribute: bool,
}

impl CloudEventsBinding {
    /// The HTTP binding's names: `ce-` prefix, percent-encoded values, `datacontenttype` in
    /// the `content-type` header. Used where a transport has no binding of its own.
    pub const HTTP: CloudEventsBinding = CloudEventsBinding::new("ce-").percent_encoded();

    /// A binding with attribute names `<prefix><attribute>`, values as they are, and
    /// `datacontenttype` carried by the `content-type` header.
    pub const fn new(prefix: &'static str) -> Self {
        CloudEventsBinding {
            prefix,
            percent_encoded: false,
            content_type_attribute: false,
        }
    }

    /// Values are percent-encoded (space, `"`, `%` and everything outside printable ASCII).
    pub const fn percent_encoded(mut self) -> Self {
        self.percent_encoded = true;
        self
    }

    /// `datacontenttype` is an attribute header of its own (`<prefix>datacontenttype`), next
    /// to `content-type`.
    pub const fn content_type_attribute(mut self) -> Self {
        self.content_type_attribute = true;
        self
    }

    /// The attribute name prefix.
    pub fn prefix(self) -> &'static str {
        self.prefix
    }

    /// Whether values are percent-encoded.
    pub fn is_percent_encoded(self) -> bool {
        self.percent_encoded
    }

    /// Whether `datacontenttype` is written as an attribute header of its own.
    pub fn has_content_type_attribute(self) -> bool {
        self.content_type_attribute
    }
}

impl Default for CloudEventsBinding {
    fn default() -> Self {
        CloudEventsBinding::HTTP
    }
}

/// The URL query key that sets how long a delivery may stay unsettled
/// ([`crate::Capabilities::lease`]), and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseKey {
    /// The key takes milliseconds.
    Millis(&'static str),
    /// The key takes whole seconds (a value in milliseconds is rounded up).
    Secs(&'static str),
}

impl LeaseKey {
    /// The query pair setting the lease to `ms` milliseconds.
    pub fn pair(self, ms: u64) -> (&'static str, String) {
        match self {
            LeaseKey::Millis(k) => (k, ms.to_string()),
            LeaseKey::Secs(k) => (k, ms.div_ceil(1000).to_string()),
        }
    }
}

/// An adapter's wire conventions for one URL scheme. `#[non_exhaustive]`: adapters start from
/// [`SchemeProfile::default`] (nothing declared: no AsyncAPI protocol, the HTTP CloudEvents
/// names, no lease key) and set what applies.
///
/// AsyncAPI bindings are JSON text in which the string `"$destination"` (channel) or
/// `"$group"` (receive operation) stands for the name, e.g.
/// `{"topic": "$destination", "bindingVersion": "0.5.0"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemeProfile {
    /// The AsyncAPI protocol of a server with this scheme (`servers.<name>.protocol`);
    /// `None`: AsyncAPI has none, and such a server cannot be documented.
    pub asyncapi_protocol: Option<&'static str>,
    /// The URL query key holding the server's address where the URL names no host (an
    /// `endpoint=`), for the AsyncAPI `host`.
    pub address_key: Option<&'static str>,
    /// The AsyncAPI channel binding of a destination, under the protocol's name.
    pub asyncapi_channel: Option<&'static str>,
    /// The AsyncAPI operation binding of a consumer group, under the protocol's name.
    pub asyncapi_receive: Option<&'static str>,
    /// How CloudEvents attributes are written as headers.
    pub cloudevents: CloudEventsBinding,
    /// The URL key setting the lease, where the broker has one.
    pub lease_key: Option<LeaseKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(LeaseKey::Secs("s").pair(1001), ("s", "2".to_string()));
        assert_eq!(LeaseKey::Millis("m").pair(1001), ("m", "1001".to_string()));
    }

    #[test]
    fn http_is_the_default_binding() {
        let b = SchemeProfile::default().cloudevents;
        assert_eq!(b.prefix(), "ce-");
        assert!(b.is_percent_encoded() && !b.has_content_type_attribute());
    }
}
