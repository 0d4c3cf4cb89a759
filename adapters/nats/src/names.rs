//! Destination and group names → NATS subjects, stream and consumer names.
//!
//! - subject = the destination as written (`orders`, `orders.dlq`): dots make subject tokens;
//! - stream = the destination with `.` written as `~` (stream names cannot hold `.`), so the
//!   mapping is one-to-one (`~` cannot appear in a destination name);
//! - durable consumer = the group with `.` written as `~`; on a stream shared by several
//!   destinations (e.g. one stream for `orders.>`), `<destination>@<group>` (both written so).

use brokerkit_core::{Error, Result};

/// The consumer group used when none is given.
pub use brokerkit_core::DEFAULT_GROUP;

/// The NATS subject of `destination`; names with empty subject tokens are refused.
pub fn subject(destination: &str) -> Result<String> {
    if destination.is_empty() || destination.split('.').any(str::is_empty) {
        return Err(Error::config(format!(
            "destination name {destination:?} is not a valid NATS subject: it must not start \
             or end with '.' or contain \"..\" (use letters, digits, '-', '_' and single '.')"
        )));
    }
    Ok(destination.to_string())
}

/// The JetStream stream name of `destination` (or of a group as a consumer name).
pub fn js_name(name: &str) -> String {
    name.replace('.', "~")
}

/// The durable consumer name of `group` on `destination`'s stream.
pub fn durable(destination: &str, group: &str, own_stream: bool) -> String {
    if own_stream {
        js_name(group)
    } else {
        format!("{}@{}", js_name(destination), js_name(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_one_to_one() {
        assert_eq!(subject("orders.dlq").unwrap(), "orders.dlq");
        assert_eq!(js_name("orders.dlq"), "orders~dlq");
        assert_ne!(js_name("a.b"), js_name("a_b"));
        assert_eq!(durable("o.eu", "billing", true), "billing");
        assert_eq!(durable("o.eu", "g.1", false), "o~eu@g~1");
        for bad in ["", ".a", "a.", "a..b"] {
            assert!(subject(bad).is_err(), "{bad:?}");
        }
    }
}
