//! Browse (emulated): SQS has no peek. A browse receives the queue's messages with a
//! visibility timeout of [`HOLD`], long-polling (1 s) until a receive comes back empty or
//! `limit` is reached, then releases every one at once (`ChangeMessageVisibility` 0), deleting
//! nothing. Messages come out sorted by their `SentTimestamp`; ids are SQS message ids.
//!
//! Caveats, declared by `Capabilities::browse = Emulated` and in the README:
//! - each browse adds one to every browsed message's `ApproximateReceiveCount`, which is the
//!   attempt count consumers see. So a browse is refused on a queue with SQS's own redrive
//!   policy (`max_receive_count`), where receives could move messages to the broker's DLQ;
//!   brokerkit's dead-letter queues have none;
//! - while a browse runs (seconds), its messages are invisible to consumers; if the process
//!   dies mid-browse, they come back after [`HOLD`];
//! - SQS returns messages from a sample of its servers; long polling asks all of them, but a
//!   browse of a queue being written to may still miss the newest messages.
//!
//! For `sqs://` the destination's queue is browsed; for `sns://`, the queue of the default
//! group (for `d.dlq`, where dead letters are kept).

use std::time::Duration;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName};
use brokerkit_core::{BrowsedMessage, ErrorKind, Result};

use crate::config::Service;
use crate::error::from_sdk;
use crate::headers::{unpack, Attr};
use crate::link::Inner;
use crate::names::{group_queue_name, queue_name, DEFAULT_GROUP};

/// How long browsed messages stay invisible at most (if the release never happens).
pub const HOLD: Duration = Duration::from_secs(30);

/// Up to `limit` messages of `destination`'s queue; deletes nothing.
pub async fn browse(inner: &Inner, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
    inner.check_open(destination, "browse")?;
    let site = inner.site(destination, "browse");
    if inner.config.max_receive_count.is_some() && !destination.ends_with(".dlq") {
        return Err(site.error(
            ErrorKind::Unsupported,
            "this queue has an SQS redrive policy (max_receive_count): a browse receives \
             messages, which counts toward it and could move them to the dead-letter queue",
        ));
    }
    let fifo = inner.config.fifo;
    let name = match inner.config.service {
        Service::Sqs => queue_name(destination, fifo)?,
        Service::Sns => group_queue_name(destination, DEFAULT_GROUP, fifo)?,
    };
    let url = match inner
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .set_queue_owner_aws_account_id(inner.config.queue_owner.clone())
        .send()
        .await
    {
        Ok(out) => out.queue_url.unwrap_or_default(),
        Err(e) => {
            let e = from_sdk(e, site);
            // No queue: nothing stored.
            return if e.kind() == ErrorKind::NotFound {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
    };
    let mut held: Vec<(u64, BrowsedMessage, String)> = Vec::new();
    let mut failure = None;
    while held.len() < limit {
        let got = inner
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages((limit - held.len()).clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .visibility_timeout(HOLD.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match got {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                failure = Some(from_sdk(e, site));
                break;
            }
        };
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let sys = |n: &MessageSystemAttributeName| {
                m.attributes
                    .as_ref()
                    .and_then(|a| a.get(n))
                    .map(String::as_str)
            };
            let sent = sys(&MessageSystemAttributeName::SentTimestamp)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let group_id = sys(&MessageSystemAttributeName::MessageGroupId).map(str::to_string);
            let attrs = m.message_attributes.iter().flatten().map(|(name, v)| Attr {
                name,
                data_type: v.data_type(),
                string_value: v.string_value(),
            });
            let message = unpack(m.body().unwrap_or_default(), attrs, group_id.as_deref());
            let id = m.message_id.clone().unwrap_or_default();
            let receipt = m.receipt_handle.clone().unwrap_or_default();
            held.push((sent, BrowsedMessage::new(id, message), receipt));
        }
    }
    // Release everything, 10 per request.
    for chunk in held.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, (_, _, receipt))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = inner
            .sqs
            .change_message_visibility_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            // The messages come back anyway when HOLD runs out.
            tracing::warn!(error = %from_sdk(e, site), "sqs browse: release failed");
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    held.sort_by_key(|(sent, _, _)| *sent);
    Ok(held.into_iter().map(|(_, b, _)| b).collect())
}
