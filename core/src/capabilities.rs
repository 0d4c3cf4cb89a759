//! What an adapter can do, and the always-on check that refuses what it cannot.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::lag::LagAccuracy;
use crate::message::Message;

/// How a feature is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Not available: asking for it gives [`ErrorKind::Unsupported`].
    No,
    /// Provided by the broker itself.
    Native,
    /// Provided by brokerkit on top of the broker (declared so users know the cost).
    Emulated,
}

impl Support {
    /// Whether the feature is available at all.
    pub fn is_available(self) -> bool {
        !matches!(self, Support::No)
    }
}

/// The capabilities of one adapter (as configured by its URL).
///
/// `#[non_exhaustive]`: adapters start from [`Capabilities::default`] (the most conservative
/// values: nothing optional available) and set what they provide, so a new field never breaks
/// an adapter.
///
/// ```
/// use brokerkit_core::{Capabilities, Support};
/// let mut caps = Capabilities::default();
/// caps.max_payload_bytes = 1 << 20;
/// caps.redelivery = true;
/// caps.dead_letter = Support::Emulated;
/// assert!(caps.check_dead_letter().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Largest batch sent in one request; bigger batches are split by the producer.
    pub max_batch: usize,
    /// Whether unsettled or nacked messages are delivered again (at-least-once).
    pub redelivery: bool,
    /// `nack` with a delay.
    pub delayed_redelivery: Support,
    /// Longest nack delay, where the broker has a limit.
    pub max_delay: Option<Duration>,
    /// Per-key ordering.
    pub ordering_key: Support,
    /// Dead-letter destinations.
    pub dead_letter: Support,
    /// Broker-side deduplication fed from the idempotency key.
    pub native_dedup: bool,
    /// Most headers per message, where limited.
    pub max_headers: Option<usize>,
    /// Most bytes of header names and values per message, where limited.
    pub max_header_bytes: Option<usize>,
    /// Several consumer groups each receive every message.
    pub fan_out: bool,
    /// Several consumers in one group share the messages.
    pub competing_consumers: bool,
    /// Extending the lease of a delivery that is being handled ([`crate::Delivery::extend`]),
    /// with the broker's own call for it (each adapter's README names it). `No` where the
    /// broker never takes back a delivery while its consumer is connected (nothing to extend,
    /// see [`Capabilities::lease`]).
    pub lease_extension: Support,
    /// How long the broker lets a delivery stay unsettled before it hands it to another
    /// consumer (a visibility timeout or ack wait, set by a key of the adapter's URL).
    /// `None`: no such clock while the consumer stays connected. The SDK's lease keeper
    /// extends a running handler's delivery well before this elapses.
    pub lease: Option<Duration>,
    /// Reading a destination without consuming it ([`crate::Backend::browse`]): `Native` where
    /// the broker has a read that settles nothing (a direct get, reading from an offset),
    /// `Emulated` where the adapter holds and then releases deliveries (see the adapter's
    /// README for the caveat).
    pub browse: Support,
    /// Consumer lag ([`crate::Backend::lag`]) and how exact its figure is; `None` where the
    /// broker cannot say (it keeps nothing to count).
    pub lag: Option<LagAccuracy>,
    /// A delivery's attempt count survives the consumer's process crashing or being killed
    /// (the broker keeps a delivery count per message), so the retry limit holds for a message
    /// that crashes its process: it is dead-lettered once its attempt is past the limit,
    /// without running the handler. `false` where a crash resets or undercounts it (a record
    /// read again comes back with the attempt of its last copy, a broker counts any number of
    /// redeliveries as one, or the broker dies with the process); each adapter's README says
    /// which.
    pub crash_safe_attempts: bool,
}

impl Default for Capabilities {
    /// Nothing optional: 1 MiB payloads, one message per batch, no redelivery, no delay, no
    /// ordering key, no dead-letter, no groups, no lease, no lag. Adapters set what they
    /// provide.
    fn default() -> Self {
        Capabilities {
            max_payload_bytes: 1024 * 1024,
            max_batch: 1,
            redelivery: false,
            delayed_redelivery: Support::No,
            max_delay: None,
            ordering_key: Support::No,
            dead_letter: Support::No,
            native_dedup: false,
            max_headers: None,
            max_header_bytes: None,
            fan_out: false,
            competing_consumers: false,
            lease_extension: Support::No,
            lease: None,
            browse: Support::No,
            lag: None,
            crash_safe_attempts: false,
        }
    }
}

impl Capabilities {
    /// Refuses a message the adapter cannot send, before any I/O.
    pub fn check_send(&self, message: &Message) -> Result<()> {
        let size = message.payload.len();
        if size > self.max_payload_bytes {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "payload is {size} bytes; the maximum is {} bytes",
                    self.max_payload_bytes
                ),
            ));
        }
        if message.key.is_some() && !self.ordering_key.is_available() {
            return Err(Error::unsupported(
                "this broker has no ordering key; send without a key",
            ));
        }
        if let Some(max) = self.max_headers {
            if message.headers.len() > max {
                return Err(Error::new(
                    ErrorKind::InvalidHeader,
                    format!(
                        "message has {} headers; this broker accepts at most {max}",
                        message.headers.len()
                    ),
                ));
            }
        }
        if let Some(max) = self.max_header_bytes {
            let bytes = message.headers.encoded_len();
            if bytes > max {
                return Err(Error::new(
                    ErrorKind::InvalidHeader,
                    format!("headers take {bytes} bytes; this broker accepts at most {max}"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a `nack` the adapter cannot honour.
    pub fn check_nack(&self, delay: Option<Duration>) -> Result<()> {
        if !self.redelivery {
            return Err(Error::unsupported(
                "this broker does not redeliver (at-most-once); nack is not available",
            ));
        }
        let Some(delay) = delay.filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        if !self.delayed_redelivery.is_available() {
            return Err(Error::unsupported(
                "this broker has no delayed redelivery; nack without a delay",
            ));
        }
        if let Some(max) = self.max_delay {
            if delay > max {
                return Err(Error::unsupported(format!(
                    "nack delay of {delay:?} is longer than this broker's maximum of {max:?}"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a dead-letter request the adapter cannot honour.
    pub fn check_dead_letter(&self) -> Result<()> {
        if self.dead_letter.is_available() {
            Ok(())
        } else {
            Err(Error::unsupported(
                "this broker has no dead-letter destination",
            ))
        }
    }

    /// Refuses a lease extension the adapter cannot honour.
    pub fn check_extend(&self) -> Result<()> {
        if self.lease_extension.is_available() {
            Ok(())
        } else {
            Err(Error::unsupported(
                "this broker has no lease to extend (it never redelivers a message whose \
                 consumer is still connected)",
            ))
        }
    }

    /// Refuses a lag request the adapter cannot answer.
    pub fn check_lag(&self) -> Result<()> {
        if self.lag.is_some() {
            Ok(())
        } else {
            Err(Error::unsupported(
                "this broker keeps no count of unacked messages; consumer lag is not available",
            ))
        }
    }

    /// Refuses a consumer group the adapter cannot honour.
    pub fn check_group(&self, group: Option<&str>) -> Result<()> {
        match group {
            Some(_) if !self.fan_out && !self.competing_consumers => Err(Error::unsupported(
                "this broker has no consumer groups; consume without a group",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;

    fn minimal() -> Capabilities {
        Capabilities {
            max_payload_bytes: 10,
            max_headers: Some(1),
            max_header_bytes: Some(8),
            ..Capabilities::default()
        }
    }

    #[test]
    fn oversized_payload_names_both_sizes() {
        let e = minimal()
            .check_send(&Message::new(vec![0u8; 11]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
        assert!(e.message().contains("11 bytes") && e.message().contains("10 bytes"));
        assert!(minimal().check_send(&Message::new(Vec::new())).is_ok());
    }

    #[test]
    fn unsupported_requests_are_refused() {
        let c = minimal();
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(c.check_send(&Message::new("x").with_key("k"))),
            ErrorKind::Unsupported
        );
        assert_eq!(kind(c.check_nack(None)), ErrorKind::Unsupported);
        assert_eq!(kind(c.check_dead_letter()), ErrorKind::Unsupported);
        assert_eq!(kind(c.check_extend()), ErrorKind::Unsupported);
        assert_eq!(kind(c.check_lag()), ErrorKind::Unsupported);
        assert_eq!(kind(c.check_group(Some("g"))), ErrorKind::Unsupported);
        let h = Headers::new()
            .with("a", "1")
            .unwrap()
            .with("b", "2")
            .unwrap();
        assert_eq!(
            kind(c.check_send(&Message::new("x").with_headers(h))),
            ErrorKind::InvalidHeader
        );
        let h = Headers::new().with("abc", "123456").unwrap();
        assert_eq!(
            kind(c.check_send(&Message::new("x").with_headers(h))),
            ErrorKind::InvalidHeader
        );
    }

    #[test]
    fn delay_limits() {
        let mut c = minimal();
        c.redelivery = true;
        assert!(c.check_nack(Some(Duration::ZERO)).is_ok());
        assert_eq!(
            c.check_nack(Some(Duration::from_secs(1)))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        c.delayed_redelivery = Support::Emulated;
        c.max_delay = Some(Duration::from_secs(5));
        assert!(c.check_nack(Some(Duration::from_secs(5))).is_ok());
        assert!(c.check_nack(Some(Duration::from_secs(6))).is_err());
    }
}
