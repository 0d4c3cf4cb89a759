//! AsyncAPI 3.0 documents generated from the code: channels are destinations, messages are
//! events (type + version) with their JSON Schemas, operations are producers (`send`) and
//! consumer groups (`receive`), and bindings are added where AsyncAPI defines them for the
//! servers' protocols, as each adapter declares them ([`brokerkit_core::SchemeProfile`]; a
//! server URL needs its adapter compiled in).
//!
//! ```
//! use brokerkit::asyncapi::Document;
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # struct OrderPlaced { order_id: u64 }
//! # impl brokerkit::Event for OrderPlaced { const NAME: &'static str = "order.placed"; const VERSION: u32 = 1; }
//! let doc = Document::builder("order-service", "1.0.0")
//!     .server("local", "mqtt", "broker.example.com:1883")
//!     .produces::<OrderPlaced>("orders")
//!     .consumes::<OrderPlaced>("orders", "billing")
//!     .build()?;
//! assert_eq!(doc.as_json()["asyncapi"], "3.0.0");
//! println!("{}", doc.to_pretty_json());
//! # Ok::<(), brokerkit::Error>(())
//! ```
//!
//! Payload schemas are the events' generated JSON Schemas; their `$defs` move to
//! `components/schemas` (named `<type>.v<version>.<def>`) and every `$ref` is rewritten, so
//! the document is self-contained. Each message also describes the canonical headers, with
//! `correlation-id` as its correlation id. Credentials in server URLs are never copied.

mod bindings;
mod schema_refs;

use std::collections::BTreeMap;
use std::sync::Arc;

use brokerkit_core::{Error, Result};
use serde_json::{json, Map, Value};

use crate::event::Event;
use crate::handler::{Router, Versions};
use crate::schema::SchemaValidator;

/// The AsyncAPI version written.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// A generated AsyncAPI 3.0 document. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct Document(Value);

impl Document {
    /// Starts a document for the application `title` at `version`.
    pub fn builder(title: impl Into<String>, version: impl Into<String>) -> DocumentBuilder {
        DocumentBuilder {
            title: title.into(),
            version: version.into(),
            description: None,
            servers: BTreeMap::new(),
            messages: BTreeMap::new(),
            channels: BTreeMap::new(),
            operations: BTreeMap::new(),
            error: None,
        }
    }

    /// The document as JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The document as indented JSON text (JSON is valid AsyncAPI).
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(&self.0).unwrap_or_default()
    }
}

struct Server {
    protocol: String,
    host: String,
}

struct MessageDef {
    name: String,
    version: u32,
    schema: Value,
}

struct Operation {
    send: bool,
    channel: String,
    group: Option<String>,
    messages: Vec<String>,
}

/// Builds a [`Document`]; mistakes (a bad server URL) are reported by
/// [`DocumentBuilder::build`].
pub struct DocumentBuilder {
    title: String,
    version: String,
    description: Option<String>,
    servers: BTreeMap<String, Server>,
    messages: BTreeMap<String, MessageDef>,
    channels: BTreeMap<String, Vec<String>>,
    operations: BTreeMap<String, Operation>,
    error: Option<String>,
}

impl DocumentBuilder {
    /// A longer description (CommonMark).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// A server: its AsyncAPI protocol and host. Bindings are added for the protocols an
    /// adapter compiled in declares.
    pub fn server(
        mut self,
        name: impl Into<String>,
        protocol: impl Into<String>,
        host: impl Into<String>,
    ) -> Self {
        self.servers.insert(
            key(&name.into()),
            Server {
                protocol: protocol.into(),
                host: host.into(),
            },
        );
        self
    }

    /// A server from a brokerkit URL, its protocol as the adapter of the URL's scheme declares
    /// it (the adapter must be compiled in). User and password are left out. A URL that names
    /// no host (nor the address key the adapter declares, e.g. an `endpoint=`) is an error at
    /// `build`.
    pub fn server_url(self, name: impl Into<String>, url: &str) -> Self {
        match bindings::server_of_url(url) {
            Ok((protocol, host)) => self.server(name, protocol, host),
            Err(e) => self.fail(e),
        }
    }

    fn fail(mut self, e: String) -> Self {
        self.error.get_or_insert(e);
        self
    }

    /// A producer of `E` on `destination` (a `send` operation).
    pub fn produces<E: Event>(self, destination: &str) -> Self {
        self.produces_schemas(destination, &[(E::NAME, E::VERSION, E::schema())])
    }

    /// A consumer group of `destination` taking `E` (a `receive` operation).
    pub fn consumes<E: Event>(self, destination: &str, group: &str) -> Self {
        self.consumes_schemas(destination, group, &[(E::NAME, E::VERSION, E::schema())])
    }

    /// A consumer group taking every version `versions` accepts.
    pub fn consumes_versions<E: Event>(
        self,
        destination: &str,
        group: &str,
        versions: &Versions<E>,
    ) -> Self {
        let list = zip(versions.accepted(), versions.schemas());
        self.consumes_schemas(destination, group, &list)
    }

    /// A consumer group taking every type and version `router` routes.
    pub fn consumes_events(self, destination: &str, group: &str, router: &Router) -> Self {
        let list = zip(router.accepted(), router.schemas());
        self.consumes_schemas(destination, group, &list)
    }

    /// A producer of events given by (type, version, schema), e.g. from checked-in files.
    pub fn produces_schemas(
        self,
        destination: &str,
        events: &[(&str, u32, Arc<SchemaValidator>)],
    ) -> Self {
        self.operation(destination, None, events)
    }

    /// A consumer group taking events given by (type, version, schema).
    pub fn consumes_schemas(
        self,
        destination: &str,
        group: &str,
        events: &[(&str, u32, Arc<SchemaValidator>)],
    ) -> Self {
        self.operation(destination, Some(group), events)
    }

    fn operation(
        mut self,
        destination: &str,
        group: Option<&str>,
        events: &[(&str, u32, Arc<SchemaValidator>)],
    ) -> Self {
        let channel = key(destination);
        let mut keys = Vec::new();
        for (name, version, schema) in events {
            let k = key(&format!("{name}.v{version}"));
            self.messages
                .entry(k.clone())
                .or_insert_with(|| MessageDef {
                    name: name.to_string(),
                    version: *version,
                    schema: schema.schema().clone(),
                });
            let listed = self.channels.entry(channel.clone()).or_default();
            if !listed.contains(&k) {
                listed.push(k.clone());
            }
            keys.push(k);
        }
        self.channels.entry(channel.clone()).or_default();
        let id = match group {
            None => format!("send-{channel}"),
            Some(g) => format!("receive-{channel}-{}", key(g)),
        };
        let op = self.operations.entry(id).or_insert_with(|| Operation {
            send: group.is_none(),
            channel: channel.clone(),
            group: group.map(str::to_string),
            messages: Vec::new(),
        });
        for k in keys {
            if !op.messages.contains(&k) {
                op.messages.push(k);
            }
        }
        self
    }

    /// The document.
    pub fn build(self) -> Result<Document> {
        if let Some(e) = self.error {
            return Err(Error::config(e));
        }
        let protocols: Vec<&str> = self.servers.values().map(|s| s.protocol.as_str()).collect();
        let profiles = bindings::profiles_of(&protocols);
        let mut info = json!({"title": self.title, "version": self.version});
        if let Some(d) = &self.description {
            info["description"] = json!(d);
        }
        let mut doc = json!({"asyncapi": ASYNCAPI_VERSION, "info": info});
        if !self.servers.is_empty() {
            let servers: Map<String, Value> = self
                .servers
                .iter()
                .map(|(n, s)| (n.clone(), json!({"host": s.host, "protocol": s.protocol})))
                .collect();
            doc["servers"] = Value::Object(servers);
        }
        let mut schemas = Map::new();
        let mut messages = Map::new();
        for (k, m) in &self.messages {
            let payload = schema_refs::lift(&m.schema, k, &mut schemas);
            messages.insert(k.clone(), message_object(m, payload));
        }
        let mut channels = Map::new();
        for (name, keys) in &self.channels {
            let refs: Map<String, Value> = keys
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        json!({"$ref": format!("#/components/messages/{k}")}),
                    )
                })
                .collect();
            let mut channel = json!({"address": name, "messages": refs});
            if let Some(b) = bindings::channel(name, &profiles) {
                channel["bindings"] = b;
            }
            channels.insert(name.clone(), channel);
        }
        let mut operations = Map::new();
        for (id, op) in &self.operations {
            let refs: Vec<Value> = op
                .messages
                .iter()
                .map(|k| json!({"$ref": format!("#/channels/{}/messages/{k}", op.channel)}))
                .collect();
            let mut o = json!({
                "action": if op.send { "send" } else { "receive" },
                "channel": {"$ref": format!("#/channels/{}", op.channel)},
                "messages": refs,
            });
            if let Some(g) = &op.group {
                o["summary"] = json!(format!("consumer group {g}"));
                if let Some(b) = bindings::receive(g, &profiles) {
                    o["bindings"] = b;
                }
            }
            operations.insert(id.clone(), o);
        }
        doc["channels"] = Value::Object(channels);
        doc["operations"] = Value::Object(operations);
        let mut components = json!({"messages": messages});
        if !schemas.is_empty() {
            components["schemas"] = Value::Object(schemas);
        }
        doc["components"] = components;
        Ok(Document(doc))
    }
}

fn zip(
    accepted: Vec<(&'static str, u32)>,
    schemas: Vec<Arc<SchemaValidator>>,
) -> Vec<(&'static str, u32, Arc<SchemaValidator>)> {
    accepted
        .into_iter()
        .zip(schemas)
        .map(|((n, v), s)| (n, v, s))
        .collect()
}

/// A component or channel key: AsyncAPI allows letters, digits, `.`, `-` and `_`.
pub(crate) fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn message_object(m: &MessageDef, payload: Value) -> Value {
    let title = m
        .schema
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(&m.name);
    let mut msg = json!({
        "name": m.name,
        "title": format!("{title} v{}", m.version),
        "contentType": crate::event::JSON,
        "headers": headers_schema(&m.name, m.version),
        "payload": payload,
        "correlationId": {"location": "$message.header#/correlation-id"},
    });
    if let Some(d) = m.schema.get("description").and_then(Value::as_str) {
        msg["summary"] = json!(d);
    }
    msg
}

fn headers_schema(name: &str, version: u32) -> Value {
    json!({
        "type": "object",
        "required": ["event-type", "event-version"],
        "properties": {
            "event-type": {"type": "string", "const": name},
            "event-version": {"type": "string", "const": version.to_string()},
            "message-id": {"type": "string", "description": "Unique per message."},
            "correlation-id": {"type": "string", "description": "Shared by a chain of messages."},
            "causation-id": {"type": "string", "description": "The message-id of the message that caused this one."},
            "idempotency-key": {"type": "string"},
            "traceparent": {"type": "string", "description": "W3C trace context."},
            "tracestate": {"type": "string"},
            "content-type": {"type": "string"},
            "timestamp": {"type": "string", "description": "Milliseconds since the Unix epoch."}
        }
    })
}
