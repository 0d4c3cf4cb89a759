//! Browse: read a group queue without consuming it.
//!
//! On one private channel, `basic.get` (manual ack) up to `limit` messages in queue order,
//! then one `basic.nack(multiple, requeue)` and close the channel. Nothing is acked, so every
//! message goes back to its original position (RabbitMQ keeps the position of requeued
//! messages); if the process dies mid-browse the channel closes and the broker requeues them
//! the same way. Caveats (declared `Emulated`): while a browse runs (milliseconds) the browsed
//! messages are invisible to the queue's consumers, and RabbitMQ sets their `redelivered` flag,
//! so the next real delivery of a browsed message counts one more attempt (once: the flag does
//! not add up over browses). The queue browsed for destination `d` is `d:default`, the queue
//! redrive and consumers without a group read (for `d.dlq`, the dead letters).

use brokerkit_core::{BrowsedMessage, ErrorKind, Message, Result};
use lapin::options::{BasicGetOptions, BasicNackOptions};

use crate::config::names;
use crate::error;
use crate::headers::decode;
use crate::link::{in_time, short, Link, CLOSE_WAIT};

/// Up to `limit` messages of `d:default`, oldest first; moves nothing.
pub async fn browse(link: &Link, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
    link.check_open("browse")?;
    let queue = names::queue(destination, names::DEFAULT_GROUP);
    let channel = link.channel("browse").await?;
    let mut out = Vec::new();
    let mut last = None;
    let mut failure = None;
    while out.len() < limit {
        let getting = channel.basic_get(
            short(&queue, "queue", link)?,
            BasicGetOptions { no_ack: false },
        );
        let got = match in_time("browse", link.address(), getting).await {
            Ok(got) => got,
            Err(timed_out) => {
                failure = Some(timed_out);
                break;
            }
        };
        match got {
            Ok(Some(m)) => {
                let d = m.delivery;
                let decoded = decode(&d.properties);
                let mut message = Message::new(d.data.clone()).with_headers(decoded.headers);
                message.key = decoded.key;
                out.push(BrowsedMessage::new((out.len() + 1).to_string(), message));
                last = Some(d.acker);
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(error::map(e, "browse", link.address()));
                break;
            }
        }
    }
    if let Some(acker) = last {
        let requeue = acker.nack(BasicNackOptions {
            multiple: true,
            requeue: true,
        });
        let _ = in_time("browse", link.address(), requeue).await;
    }
    // Closing also requeues anything still unacked (e.g. if the nack above failed).
    let closing = channel.close(200, "brokerkit browse done".into());
    let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
    match failure {
        // No queue: nothing is held there.
        Some(e) if e.kind() == ErrorKind::NotFound && out.is_empty() => Ok(Vec::new()),
        Some(e) => Err(e.with_destination(destination.to_string())),
        None => Ok(out),
    }
}
