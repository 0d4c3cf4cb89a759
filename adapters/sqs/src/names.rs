//! Destination and group names → SQS queue and SNS topic names.
//!
//! SQS and SNS names allow only letters, digits, `-` and `_` (plus a final `.fifo` on FIFO
//! queues and topics), so every `.` of a destination or group name becomes `-`:
//! `orders.dlq` → queue `orders-dlq` (FIFO: `orders-dlq.fifo`). On a FIFO connection
//! (`fifo=true`) `.fifo` is appended (a destination may already end in `.fifo`).

use brokerkit_core::{Error, Result};

/// Longest SQS queue name, `.fifo` included.
pub(crate) const MAX_QUEUE_NAME: usize = 80;
/// Longest SNS topic name, `.fifo` included.
pub(crate) const MAX_TOPIC_NAME: usize = 256;
/// The group of consumers that name none.
pub(crate) use brokerkit_core::DEFAULT_GROUP;

const FIFO_SUFFIX: &str = ".fifo";

/// `name` without `.fifo`, with `.` → `-`, checked for characters SQS/SNS refuse.
fn base(name: &str, what: &str, fifo: bool) -> Result<String> {
    let stem = match name.strip_suffix(FIFO_SUFFIX) {
        Some(stem) if fifo => stem,
        Some(_) => {
            return Err(Error::config(format!(
                "{what} {name:?} names a FIFO queue or topic; connect with fifo=true to use \
                 FIFO destinations (this connection is for standard ones)"
            )))
        }
        None => name,
    };
    if stem.is_empty() {
        return Err(Error::config(format!(
            "{what} name {name:?} must be 1 to 200 bytes"
        )));
    }
    if let Some(c) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Error::config(format!(
            "{what} name {name:?} has {c:?}; use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(stem.replace('.', "-"))
}

fn finish(mut name: String, fifo: bool, max: usize, what: &str, from: &str) -> Result<String> {
    if fifo {
        name.push_str(FIFO_SUFFIX);
    }
    if name.len() > max {
        return Err(Error::config(format!(
            "{what} name {name:?} (from {from:?}) is {} characters; SQS/SNS allow at most {max}",
            name.len()
        )));
    }
    Ok(name)
}

/// The queue of an `sqs://` destination.
pub(crate) fn queue_name(destination: &str, fifo: bool) -> Result<String> {
    let b = base(destination, "destination", fifo)?;
    finish(b, fifo, MAX_QUEUE_NAME, "queue", destination)
}

/// The topic of an `sns://` destination.
pub(crate) fn topic_name(destination: &str, fifo: bool) -> Result<String> {
    let b = base(destination, "destination", fifo)?;
    finish(b, fifo, MAX_TOPIC_NAME, "topic", destination)
}

/// The queue of consumer group `group` of an `sns://` destination: `<topic>-<group>`.
pub(crate) fn group_queue_name(destination: &str, group: &str, fifo: bool) -> Result<String> {
    let t = base(destination, "destination", fifo)?;
    let g = base(group, "group", false)?;
    finish(
        format!("{t}-{g}"),
        fifo,
        MAX_QUEUE_NAME,
        "queue",
        &format!("{destination} group {group}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_become_dashes_and_fifo_is_appended() {
        assert_eq!(queue_name("orders", false).unwrap(), "orders");
        assert_eq!(queue_name("orders.dlq", false).unwrap(), "orders-dlq");
        assert_eq!(queue_name("orders", true).unwrap(), "orders.fifo");
        assert_eq!(queue_name("orders.fifo", true).unwrap(), "orders.fifo");
        assert_eq!(queue_name("orders.dlq", true).unwrap(), "orders-dlq.fifo");
        assert_eq!(topic_name("a.b", true).unwrap(), "a-b.fifo");
        assert_eq!(
            group_queue_name("orders.dlq", "ops", false).unwrap(),
            "orders-dlq-ops"
        );
        assert_eq!(
            group_queue_name("orders", "billing", true).unwrap(),
            "orders-billing.fifo"
        );
    }

    #[test]
    fn bad_names_are_config_errors() {
        let e = queue_name("orders.fifo", false).unwrap_err();
        assert!(e.message().contains("fifo=true"), "{e}");
        assert!(queue_name("a b", false).is_err());
        assert!(queue_name("", false).is_err());
        let e = queue_name(&"q".repeat(81), false).unwrap_err();
        assert!(e.message().contains("at most 80"), "{e}");
        assert!(queue_name(&"q".repeat(76), true).is_err());
        assert!(topic_name(&"q".repeat(200), false).is_ok());
    }
}
