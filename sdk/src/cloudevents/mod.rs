//! CloudEvents 1.0 **binary content mode** as a header mapping, both ways, so CloudEvents
//! producers and consumers in other languages interoperate with brokerkit.
//!
//! **Receiving is on by default**: a message without brokerkit's `message-id` whose headers
//! carry CloudEvents attributes (prefix `ce_`, `ce-`, `cloudEvents_` or `cloudEvents:`) gets
//! the canonical headers filled in from them before anyone sees it (raw consumers and
//! handlers alike), so `message_id()`, `event_type()`, `timestamp()` and the handler
//! [`crate::Context`] work on a foreign CloudEvent. The `ce_*` headers stay as they came.
//!
//! **Sending is opt-in**, per producer: [`crate::ProducerBuilder::cloudevents`] adds the
//! `cloudevents` layer, which writes the attributes next to brokerkit's own headers (which are
//! kept, so brokerkit consumers lose nothing):
//!
//! | CloudEvents | from brokerkit |
//! |---|---|
//! | `specversion` | `1.0` |
//! | `id` | `message-id` |
//! | `source` | [`CloudEvents::source`], default `/<destination>` |
//! | `type` | `event-type` (a message without one: `brokerkit.message`) |
//! | `time` | `timestamp`, as RFC 3339 in UTC with milliseconds |
//! | `dataschema` | `<base><type>.v<version>.json` when [`CloudEvents::dataschema_base`] is set |
//! | `datacontenttype` | `content-type` (and a header of its own where the binding says so) |
//!
//! Attribute names follow the broker's CloudEvents protocol binding ([`Binding`]), which each
//! adapter declares ([`brokerkit_core::SchemeProfile::cloudevents`]; its README shows the
//! names): a prefix (`ce_`, `cloudEvents_`, `ce-`, …), whether values are percent-encoded,
//! whether `datacontenttype` is a header of its own. Where a transport has no binding the
//! HTTP binding's names are used ([`Binding::HTTP`]: `ce-id`, …, values percent-encoded).
//!
//! On receive `time` becomes `timestamp`, `datacontenttype` fills a missing `content-type`,
//! and a `dataschema` ending in `.v<N>.json` fills a missing `event-version`.

mod rfc3339;

use std::sync::Arc;

use brokerkit_core::{Headers, Message, Result};

use crate::layers::send::{BoxFuture, Outgoing, SendService};
use crate::layers::{Call, SharedService};

/// The CloudEvents version written.
pub const SPEC_VERSION: &str = "1.0";

/// The `type` of a message sent without an `event-type`.
pub const UNTYPED: &str = "brokerkit.message";

/// The attribute prefixes of the CloudEvents protocol bindings, all read on receive.
const PREFIXES: [&str; 4] = ["ce_", "ce-", "cloudEvents_", "cloudEvents:"];

/// A CloudEvents protocol binding: how attribute names and values are written (declared by
/// each adapter, see [`binding_of`]).
pub use brokerkit_core::CloudEventsBinding as Binding;

/// The binding of `broker`'s transport, as its adapter declares it.
pub fn binding_of(broker: &crate::Broker) -> Binding {
    broker.backend().profile().cloudevents
}

/// CloudEvents settings of a producer (see [`crate::ProducerBuilder::cloudevents`]).
#[derive(Debug, Clone, Default)]
pub struct CloudEvents {
    source: Option<String>,
    dataschema_base: Option<String>,
    binding: Option<Binding>,
}

impl CloudEvents {
    /// Defaults: source `/<destination>`, no `dataschema`, the broker's binding.
    pub fn new() -> Self {
        CloudEvents::default()
    }

    /// The `source` attribute (a URI-reference naming the producer, e.g.
    /// `https://orders.example.com` or `/orders/eu`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Writes `dataschema` as `<base><event type>.v<version>.json` for typed events, e.g. with
    /// base `https://schemas.example.com/` where the files of `schemas/` are served.
    pub fn dataschema_base(mut self, base: impl Into<String>) -> Self {
        self.dataschema_base = Some(base.into());
        self
    }

    /// Forces a binding instead of the broker's.
    pub fn binding(mut self, binding: Binding) -> Self {
        self.binding = Some(binding);
        self
    }

    pub(crate) fn layer(self, broker: &crate::Broker) -> CloudEventsLayer {
        let binding = self.binding.unwrap_or_else(|| binding_of(broker));
        CloudEventsLayer(Arc::new((self, binding)))
    }

    /// Writes the attributes of `message` (sent to `destination`) under `binding`.
    pub fn stamp(&self, binding: Binding, destination: &str, message: &mut Message) -> Result<()> {
        let h = &mut message.headers;
        let p = binding.prefix();
        let mut attrs: Vec<(&str, String)> = vec![("specversion", SPEC_VERSION.to_string())];
        if let Some(id) = h.message_id() {
            attrs.push(("id", id.to_string()));
        }
        let source = match &self.source {
            Some(s) => s.clone(),
            None => format!("/{destination}"),
        };
        attrs.push(("source", source));
        let event_type = h.event_type().unwrap_or(UNTYPED).to_string();
        if let (Some(base), Some(version)) = (&self.dataschema_base, h.event_version()?) {
            if h.event_type().is_some() {
                attrs.push(("dataschema", format!("{base}{event_type}.v{version}.json")));
            }
        }
        attrs.push(("type", event_type));
        if let Some(at) = h.timestamp()? {
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            attrs.push(("time", rfc3339::format_millis(ms)));
        }
        if binding.has_content_type_attribute() {
            if let Some(ct) = h.content_type() {
                attrs.push(("datacontenttype", ct.to_string()));
            }
        }
        for (name, value) in attrs {
            let value = match binding.is_percent_encoded() {
                true => percent_encode(&value),
                false => value,
            };
            h.insert(format!("{p}{name}"), value)?;
        }
        Ok(())
    }
}

/// Fills brokerkit's canonical headers of a received CloudEvent from its attributes (see the
/// [module docs](self)). A canonical header the message already has is kept (an AMQP
/// `message_id` property, say); attributes that do not make valid header values are skipped.
/// A message with only canonical headers costs one check; one with others and none starting
/// with `ce` or `cloudEvents`, one pass over its header names.
pub fn accept(headers: &mut Headers) {
    if headers.all_canonical() || !headers.iter().any(|(n, _)| has_ce_prefix(n)) {
        return;
    }
    let Some(prefix) = PREFIXES
        .into_iter()
        .find(|p| headers.get(&format!("{p}id")).is_some())
    else {
        return;
    };
    let attr = |h: &Headers, name: &str| -> Option<String> {
        let raw = h.get(&format!("{prefix}{name}"))?;
        if prefix == "ce-" {
            percent_decode(unquote(raw))
        } else {
            Some(raw.to_string())
        }
    };
    if headers.message_id().is_none() {
        if let Some(id) = attr(headers, "id") {
            let _ = headers.set_message_id(id);
        }
    }
    if headers.event_type().is_none() {
        if let Some(t) = attr(headers, "type") {
            let _ = headers.set_event_type(t);
        }
    }
    if headers
        .get(brokerkit_core::headers::names::TIMESTAMP)
        .is_none()
    {
        if let Some(ms) = attr(headers, "time").and_then(|t| rfc3339::parse_millis(&t)) {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            let _ = headers.set_timestamp(at);
        }
    }
    if headers.content_type().is_none() {
        if let Some(ct) = attr(headers, "datacontenttype") {
            let _ = headers.set_content_type(ct);
        }
    }
    if headers
        .get(brokerkit_core::headers::names::EVENT_VERSION)
        .is_none()
    {
        if let Some(v) = attr(headers, "dataschema").and_then(|s| version_of_schema(&s)) {
            let _ = headers.set_event_version(v);
        }
    }
}

/// Whether `name` starts with one of [`PREFIXES`] (ASCII case ignored): checked on every
/// received message, so it looks at bytes before comparing.
fn has_ce_prefix(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() < 4 || (b[0] | 0x20) != b'c' {
        return false;
    }
    ((b[1] | 0x20) == b'e' && matches!(b[2], b'_' | b'-'))
        || (b.len() > 12
            && b[..11].eq_ignore_ascii_case(b"cloudevents")
            && matches!(b[11], b'_' | b':'))
}

/// `…/order.placed.v2.json` → 2.
fn version_of_schema(uri: &str) -> Option<u32> {
    let stem = uri.strip_suffix(".json")?;
    stem.rsplit_once(".v")?.1.parse().ok()
}

fn unquote(v: &str) -> std::borrow::Cow<'_, str> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out.into()
        }
        Some(inner) => inner.into(),
        None => v.into(),
    }
}

/// Percent-encodes space, `"`, `%` and everything outside printable ASCII (bindings with
/// [`Binding::is_percent_encoded`]), upper-case hex.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One round of percent-decoding; `None` if the result is not UTF-8 or an escape is broken.
fn percent_decode(v: std::borrow::Cow<'_, str>) -> Option<String> {
    if !v.contains('%') {
        return Some(v.into_owned());
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `cloudevents` send layer; see [`crate::ProducerBuilder::cloudevents`].
#[derive(Clone)]
pub struct CloudEventsLayer(Arc<(CloudEvents, Binding)>);

impl tower::Layer<SendService> for CloudEventsLayer {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Stamp {
            inner,
            settings: self.0.clone(),
        }))
    }
}

struct Stamp {
    inner: SendService,
    settings: Arc<(CloudEvents, Binding)>,
}

impl Call<Outgoing, ()> for Stamp {
    fn call(self: Arc<Self>, mut request: Outgoing) -> BoxFuture<Result<()>> {
        let (ce, binding) = &*self.settings;
        let destination = request.destination().to_string();
        for m in request.messages_mut() {
            if let Err(e) = ce.stamp(*binding, &destination, m) {
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        self.inner.run(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.insert(k.to_string(), v.to_string()).unwrap();
        }
        h
    }

    #[test]
    fn an_underscore_prefixed_cloudevent_gets_canonical_headers() {
        let mut h = foreign(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "1234-1234-1234"),
            ("ce_type", "com.example.someevent"),
            ("ce_source", "/mycontext"),
            ("ce_time", "2018-04-05T03:56:24Z"),
            (
                "ce_dataschema",
                "https://s.example.com/order.placed.v3.json",
            ),
            ("content-type", "application/json"),
        ]);
        accept(&mut h);
        assert_eq!(h.message_id(), Some("1234-1234-1234"));
        assert_eq!(h.event_type(), Some("com.example.someevent"));
        assert_eq!(h.event_version().unwrap(), Some(3));
        let ms = h
            .timestamp()
            .unwrap()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert_eq!(ms, 1_522_900_584_000);
        assert_eq!(h.get("ce_id"), Some("1234-1234-1234"), "attributes stay");
    }

    #[test]
    fn dash_prefixed_values_are_percent_decoded_and_cloudevents_names_are_read() {
        let mut h = foreign(&[
            ("ce-id", "a%20b"),
            ("ce-type", "\"t\""),
            ("ce-datacontenttype", "application/json"),
        ]);
        accept(&mut h);
        assert_eq!(h.message_id(), Some("a b"));
        assert_eq!(h.event_type(), Some("t"));
        assert_eq!(h.content_type(), Some("application/json"));
        let mut h = foreign(&[("cloudEvents_id", "x"), ("cloudEvents_type", "y")]);
        accept(&mut h);
        assert_eq!((h.message_id(), h.event_type()), (Some("x"), Some("y")));
        // Broken escapes or non-UTF-8 are skipped, not fatal.
        let mut h = foreign(&[("ce-id", "%C0%A0"), ("ce-type", "ok")]);
        accept(&mut h);
        assert_eq!((h.message_id(), h.event_type()), (None, Some("ok")));
    }

    #[test]
    fn prefixes_are_recognised_ignoring_case() {
        for yes in ["ce_id", "CE-type", "cloudEvents_id", "CLOUDEVENTS:id"] {
            assert!(has_ce_prefix(yes), "{yes}");
        }
        for no in [
            "ce_",
            "correlation-id",
            "content-type",
            "cloudevents",
            "cex_id",
            "x-ce_id",
        ] {
            assert!(!has_ce_prefix(no), "{no}");
        }
    }

    #[test]
    fn canonical_headers_already_there_are_kept() {
        let mut h = foreign(&[("message-id", "m1"), ("ce_id", "other"), ("ce_type", "t")]);
        accept(&mut h);
        assert_eq!((h.message_id(), h.event_type()), (Some("m1"), Some("t")));
        let mut plain = foreign(&[("message-id", "m1"), ("x-tenant", "a")]);
        accept(&mut plain);
        assert_eq!(plain.len(), 2);
    }

    #[test]
    fn stamping_writes_each_binding_and_round_trips() {
        let bindings = [
            Binding::new("ce_"),
            Binding::new("cloudEvents_"),
            Binding::new("ce-")
                .percent_encoded()
                .content_type_attribute(),
            Binding::HTTP,
        ];
        for binding in bindings {
            let mut m = Message::new("{}");
            m.headers.set_message_id("id 1").unwrap();
            m.headers.set_event_type("order.placed").unwrap();
            m.headers.set_event_version(2).unwrap();
            m.headers.set_content_type("application/json").unwrap();
            m.headers
                .set_timestamp(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
                )
                .unwrap();
            CloudEvents::new()
                .dataschema_base("https://s.example.com/")
                .stamp(binding, "orders", &mut m)
                .unwrap();
            let p = binding.prefix();
            let h = &m.headers;
            assert_eq!(h.get(&format!("{p}specversion")), Some("1.0"));
            assert_eq!(h.get(&format!("{p}source")), Some("/orders"));
            assert_eq!(h.get(&format!("{p}type")), Some("order.placed"));
            assert_eq!(h.get(&format!("{p}time")), Some("2023-11-14T22:13:20.123Z"));
            assert_eq!(
                h.get(&format!("{p}dataschema")),
                Some("https://s.example.com/order.placed.v2.json")
            );
            let id = h.get(&format!("{p}id")).unwrap();
            match binding.is_percent_encoded() {
                true => assert_eq!(id, "id%201"),
                false => assert_eq!(id, "id 1"),
            }
            // What a foreign consumer would see, without brokerkit's own headers:
            let mut only_ce = Headers::new();
            for (k, v) in h.iter().filter(|(k, _)| k.starts_with(p)) {
                only_ce.insert(k.to_string(), v.to_string()).unwrap();
            }
            accept(&mut only_ce);
            assert_eq!(only_ce.message_id(), Some("id 1"), "{binding:?}");
            assert_eq!(only_ce.event_version().unwrap(), Some(2));
            assert_eq!(only_ce.timestamp().unwrap(), m.headers.timestamp().unwrap());
        }
    }
}
