//! `compatibility` (added by [`crate::ProducerBuilder::compatibility`]): a typed event whose
//! JSON Schema breaks the destination's compatibility mode against the schemas already
//! published ([`PublishedSchemas`]) is refused before any I/O, with each break named.
//!
//! The event's schema is compared with **every** published version of its type (transitive,
//! as Confluent's `*_TRANSITIVE` modes): an older published version is the old schema and the
//! event the new one; a newer published version the other way round. An identical schema
//! passes. The verdict per Rust type is computed once per producer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use brokerkit_core::{Error, ErrorKind, Result};

use super::schema::EventSchema;
use super::{BoxFuture, Outgoing, SendService};
use crate::layers::{Call, SharedService};
use crate::schema::compat::{check, BreakingChange};
use crate::schema::published::PublishedSchemas;

/// The compatibility a destination promises its consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compatibility {
    /// Consumers on a newer schema read events written with an older one.
    Backward,
    /// Consumers on an older schema read events written with a newer one.
    Forward,
    /// Both.
    Full,
}

impl Compatibility {
    fn name(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::Forward => "forward",
            Compatibility::Full => "full",
        }
    }
}

/// The type and version of a typed event being sent (set by `send_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// `Event::NAME`.
    pub name: &'static str,
    /// `Event::VERSION`.
    pub version: u32,
    /// The Rust type (two types may claim one name and version; each is judged).
    pub type_id: std::any::TypeId,
}

/// Each break of a refused event, as the source of its error.
#[derive(Debug, Clone)]
pub struct IncompatibleSchema {
    /// The mode that was broken.
    pub mode: Compatibility,
    /// (published version, where it came from, the break).
    pub breaks: Vec<(u32, String, BreakingChange)>,
}

impl std::fmt::Display for IncompatibleSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} break(s) of {} compatibility",
            self.breaks.len(),
            self.mode.name()
        )
    }
}

impl std::error::Error for IncompatibleSchema {}

/// The error text and source of a refused (type, version).
type Refusal = (String, IncompatibleSchema);

/// See the [module docs](self).
#[derive(Clone)]
pub struct CompatibilityLayer {
    mode: Compatibility,
    published: Arc<PublishedSchemas>,
    verdicts: Arc<Mutex<HashMap<std::any::TypeId, Option<Refusal>>>>,
}

impl CompatibilityLayer {
    /// Enforces `mode` against `published`.
    pub fn new(mode: Compatibility, published: PublishedSchemas) -> Self {
        CompatibilityLayer {
            mode,
            published: Arc::new(published),
            verdicts: Arc::default(),
        }
    }

    /// `Ok` when an event of `ty` with `schema` keeps the mode; otherwise a `Validation` error
    /// naming each break, with [`IncompatibleSchema`] as its source.
    pub fn verdict(&self, ty: EventType, schema: &serde_json::Value) -> Result<()> {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        let verdict = verdicts
            .entry(ty.type_id)
            .or_insert_with(|| self.judge(ty, schema));
        match verdict {
            None => Ok(()),
            Some((text, source)) => {
                Err(Error::new(ErrorKind::Validation, text.clone()).with_source(source.clone()))
            }
        }
    }

    fn judge(&self, ty: EventType, schema: &serde_json::Value) -> Option<Refusal> {
        let mut breaks = Vec::new();
        for (version, published) in self.published.versions(ty.name) {
            if published.schema == *schema {
                continue;
            }
            let report = if version <= ty.version {
                check(&published.schema, schema)
            } else {
                check(schema, &published.schema)
            };
            let mut found = Vec::new();
            if matches!(self.mode, Compatibility::Backward | Compatibility::Full) {
                found.extend(report.backward.iter().map(|c| ("backward", c.clone())));
            }
            if matches!(self.mode, Compatibility::Forward | Compatibility::Full) {
                found.extend(report.forward.iter().map(|c| ("forward", c.clone())));
            }
            for (_, change) in found {
                breaks.push((version, published.origin.clone(), change));
            }
        }
        if breaks.is_empty() {
            return None;
        }
        let list: Vec<String> = breaks
            .iter()
            .map(|(v, origin, c)| format!("against v{v} ({origin}): {c}"))
            .collect();
        let text = format!(
            "{} v{} breaks the destination's {} compatibility ({} break(s)): {}",
            ty.name,
            ty.version,
            self.mode.name(),
            breaks.len(),
            list.join("; ")
        );
        Some((
            text,
            IncompatibleSchema {
                mode: self.mode,
                breaks,
            },
        ))
    }
}

impl tower::Layer<SendService> for CompatibilityLayer {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Enforce {
            inner,
            layer: self.clone(),
        }))
    }
}

struct Enforce {
    inner: SendService,
    layer: CompatibilityLayer,
}

impl Call<Outgoing, ()> for Enforce {
    fn call(self: Arc<Self>, request: Outgoing) -> BoxFuture<Result<()>> {
        let ext = request.extensions();
        if let (Some(ty), Some(EventSchema(schema))) =
            (ext.get::<EventType>(), ext.get::<EventSchema>())
        {
            if let Err(e) = self.layer.verdict(*ty, schema.schema()) {
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        self.inner.run(request)
    }
}
