//! [`ContextBuilder`]: a handler's [`Context`] without a broker, for unit tests.

use std::sync::Arc;

use brokerkit_core::{Headers, Result};

use crate::context::Context;

/// Builds the [`Context`] a handler would get, for calling the handler directly in a test.
/// Start from [`Context::builder`]. The message id is a fresh one and the correlation id
/// equals it unless set; the attempt is 1.
///
/// ```
/// # async fn demo() -> brokerkit::Result<()> {
/// use brokerkit::Context;
/// let ctx = Context::builder("orders")
///     .group("billing")
///     .attempt(2)
///     .correlation_id("checkout-42")
///     .header("tenant", "acme")
///     .build()?;
/// assert_eq!(ctx.attempt(), 2);
/// assert_eq!(ctx.correlation_id(), Some("checkout-42"));
/// assert_eq!(ctx.headers().get("tenant"), Some("acme"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    destination: String,
    group: Option<String>,
    attempt: u32,
    headers: Headers,
    pending: Vec<(String, String)>,
}

impl Context {
    /// A [`ContextBuilder`] for a message consumed from `destination` (feature `test-kit`).
    pub fn builder(destination: &str) -> ContextBuilder {
        ContextBuilder {
            destination: destination.to_string(),
            group: None,
            attempt: 1,
            headers: Headers::new(),
            pending: Vec::new(),
        }
    }
}

impl ContextBuilder {
    /// The consumer group handling the message.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// The delivery attempt (1 on the first).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// Starts from these headers (e.g. those of a message a test published).
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Sets a header; invalid names or values are reported by [`ContextBuilder::build`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.pending.push((name.to_string(), value.to_string()));
        self
    }

    /// The handled message's id.
    pub fn message_id(self, id: &str) -> Self {
        self.header(crate::header_names::MESSAGE_ID, id)
    }

    /// Its correlation id.
    pub fn correlation_id(self, id: &str) -> Self {
        self.header(crate::header_names::CORRELATION_ID, id)
    }

    /// Its causation id.
    pub fn causation_id(self, id: &str) -> Self {
        self.header(crate::header_names::CAUSATION_ID, id)
    }

    /// The context. Errors: an `InvalidHeader` for a header name or value a message cannot
    /// carry.
    pub fn build(self) -> Result<Context> {
        let mut headers = self.headers;
        for (name, value) in self.pending {
            headers.insert(name, value)?;
        }
        if headers.message_id().is_none() {
            headers.set_message_id(crate::layers::send::correlation::new_message_id())?;
        }
        if headers.correlation_id().is_none() {
            let id = headers.message_id().unwrap_or_default().to_string();
            headers.set_correlation_id(id)?;
        }
        Ok(Context::new(
            headers,
            Arc::from(self.destination.as_str()),
            self.group.map(|g| Arc::from(g.as_str())),
            self.attempt,
        ))
    }
}
