//! Where a request was made, for error context (no AWS types: the header codec uses it
//! without the client).

use brokerkit_core::{Error, ErrorKind};

/// Where a request was made: for the error context.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    pub broker: &'static str,
    pub destination: &'a str,
    pub operation: &'static str,
    pub address: &'a str,
}

impl Site<'_> {
    /// Adds this site's context to `e`.
    pub fn wrap(&self, e: Error) -> Error {
        let e = e
            .with_broker(self.broker)
            .with_operation(self.operation)
            .with_address(self.address);
        if self.destination.is_empty() {
            e
        } else {
            e.with_destination(self.destination)
        }
    }

    /// A new error of `kind` at this site.
    pub fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        self.wrap(Error::new(kind, message))
    }
}
