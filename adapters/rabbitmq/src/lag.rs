//! Consumer lag of a RabbitMQ group: `message_count` of a passive declare of the group's
//! queue `<destination>:<group>`.
//!
//! AMQP reports ready messages only: deliveries handed to a consumer and not acked yet, and
//! messages waiting in a hold queue after a nack with a delay, are not counted, hence
//! [`LagAccuracy::WaitingOnly`] (the true lag is at least this figure). Read-only: the passive
//! declare creates nothing; a queue that does not exist (a group never subscribed) has lag 0.

use brokerkit_core::{ErrorKind, Lag, LagAccuracy, Result};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::config::names;
use crate::error;
use crate::link::{in_time, short, Link, CLOSE_WAIT};

/// The lag of `group` (default group when `None`) on `destination`.
pub(crate) async fn lag(link: &Link, destination: &str, group: Option<&str>) -> Result<Lag> {
    let with_dest = |e: brokerkit_core::Error| e.with_destination(destination.to_string());
    link.check_open("lag").map_err(with_dest)?;
    let queue = names::queue(destination, group.unwrap_or(names::DEFAULT_GROUP));
    let name = short(&queue, "queue", link).map_err(with_dest)?;
    // A failed passive declare closes its channel, so each call uses a channel of its own.
    let channel = link.channel("lag").await.map_err(with_dest)?;
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declaring = channel.queue_declare(name, options, FieldTable::default());
    let declared = in_time("lag", link.address(), declaring)
        .await
        .map_err(with_dest)?;
    match declared {
        Ok(q) => {
            let closing = channel.close(200, "brokerkit lag".into());
            let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
            Ok(Lag::from_parts(
                Some(u64::from(q.message_count())),
                None,
                None,
                LagAccuracy::WaitingOnly,
            ))
        }
        Err(e) => {
            let e = error::map(e, "lag", link.address());
            if e.kind() == ErrorKind::NotFound {
                Ok(Lag::zero(LagAccuracy::WaitingOnly))
            } else {
                Err(with_dest(e))
            }
        }
    }
}
