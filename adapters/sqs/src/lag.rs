//! Consumer lag from SQS queue attributes: `ApproximateNumberOfMessages` (waiting),
//! `ApproximateNumberOfMessagesNotVisible` (received and not deleted yet, nacked with a delay
//! included) and `ApproximateNumberOfMessagesDelayed` (sent with a delay). On `sqs://` the
//! destination's queue (every group shares it); on `sns://` the group's queue
//! `<topic>-<group>`.
//!
//! SQS documents these attributes as approximate and eventually consistent (they may trail
//! the truth by about a minute), hence [`LagAccuracy::Approximate`]. Read-only: a queue that
//! does not exist (a group never subscribed, an empty dead-letter destination) has lag 0.

use aws_sdk_sqs::types::QueueAttributeName;
use brokerkit_core::{ErrorKind, Lag, LagAccuracy, Result};

use crate::backend::Inner;
use crate::config::Service;
use crate::error::from_sdk;
use crate::names::{group_queue_name, queue_name, DEFAULT_GROUP};

/// The lag of `group` (default group when `None`) on `destination`.
pub(crate) async fn lag(inner: &Inner, destination: &str, group: Option<&str>) -> Result<Lag> {
    inner.check_open(destination, "lag")?;
    let fifo = inner.config.fifo;
    let name = match inner.config.service {
        Service::Sqs => queue_name(destination, fifo)?,
        Service::Sns => group_queue_name(destination, group.unwrap_or(DEFAULT_GROUP), fifo)?,
    };
    let site = inner.site(destination, "lag");
    let url = match inner
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .set_queue_owner_aws_account_id(inner.config.queue_owner.clone())
        .send()
        .await
    {
        Ok(out) => out.queue_url.ok_or_else(|| {
            site.error(ErrorKind::Unexpected, "GetQueueUrl returned no queue URL")
        })?,
        Err(e) => {
            let e = from_sdk(e, site);
            if e.kind() == ErrorKind::NotFound {
                return Ok(Lag::zero(LagAccuracy::Approximate));
            }
            return Err(e);
        }
    };
    let out = inner
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| from_sdk(e, site))?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |a: QueueAttributeName| -> Result<u64> {
        let v = attrs.get(&a).ok_or_else(|| {
            site.error(
                ErrorKind::Unexpected,
                format!(
                    "GetQueueAttributes gave no {} for queue {name:?}",
                    a.as_str()
                ),
            )
        })?;
        v.trim().parse::<u64>().map_err(|_| {
            site.error(
                ErrorKind::Unexpected,
                format!(
                    "GetQueueAttributes gave {} = {v:?} for queue {name:?}, not a count",
                    a.as_str()
                ),
            )
        })
    };
    Ok(Lag::from_parts(
        Some(get(QueueAttributeName::ApproximateNumberOfMessages)?),
        Some(get(
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )?),
        Some(get(QueueAttributeName::ApproximateNumberOfMessagesDelayed)?),
        LagAccuracy::Approximate,
    ))
}
