//! Sending: `SendMessage`/`SendMessageBatch` to a queue (`sqs://`), `Publish`/`PublishBatch`
//! to a topic (`sns://`), with FIFO group and deduplication ids.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{BatchError, Error, ErrorKind, Message, ProducerBackend, Result};

use crate::error::{from_sdk, kind_for_code, Site};
use crate::headers::{pack, Packed, ATTRIBUTE, STRING};
use crate::link::{Inner, Target};

/// Most bytes one batch request carries (SQS and SNS batch limit); bigger messages are sent
/// one by one.
const BATCH_BYTES: usize = 256 * 1024;
/// Longest FIFO `MessageGroupId` / `MessageDeduplicationId`.
const MAX_FIFO_ID: usize = 128;

/// A message ready for the wire.
pub(crate) struct Prepared {
    pub packed: Packed,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The message id header, to name the message in errors.
    pub message_id: Option<String>,
}

/// `text` as a FIFO group or deduplication id: ASCII punctuation and alphanumerics are kept,
/// every other byte (and `%`) becomes `%XX`. `None` when longer than 128 characters.
pub(crate) fn fifo_id(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        if out.len() > MAX_FIFO_ID {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Packs `message` for `target`: checks its size and, on FIFO, derives the group id from the
/// ordering key and the deduplication id from the idempotency key.
pub(crate) fn prepare(
    message: &Message,
    target: &Target,
    limit: usize,
    site: &Site<'_>,
) -> Result<Prepared> {
    let packed = pack(message);
    packed.check_size(limit, site)?;
    let message_id = message.headers.message_id().map(str::to_string);
    if !target.fifo() {
        return Ok(Prepared {
            packed,
            group_id: None,
            dedup_id: None,
            message_id,
        });
    }
    let Some(key) = message.key.as_deref() else {
        return Err(site.error(
            ErrorKind::Unsupported,
            format!(
                "{:?} is a FIFO queue/topic: every message needs an ordering key \
                 (Message::with_key), which becomes its MessageGroupId; nothing was sent",
                target.label()
            ),
        ));
    };
    let group_id = fifo_id(key).ok_or_else(|| {
        site.error(
            ErrorKind::Unsupported,
            format!(
                "ordering key {:?} cannot be a MessageGroupId of {:?}: it must be 1 to 128 \
                 characters once non-ASCII bytes, spaces and '%' are written as %XX",
                brokerkit_core::dead_letter::sanitize_header_value(key),
                target.label()
            ),
        )
    })?;
    let dedup_id = match message.headers.idempotency_key() {
        Some(k) => Some(fifo_id(k).ok_or_else(|| {
            site.error(
                ErrorKind::InvalidHeader,
                format!(
                    "header \"idempotency-key\" {k:?} cannot be a MessageDeduplicationId of \
                     {:?}: it must be 1 to 128 characters once non-ASCII bytes, spaces and '%' \
                     are written as %XX",
                    target.label()
                ),
            )
        })?),
        // No idempotency key: a fresh id, so SQS/SNS deduplicate nothing.
        None => Some(uuid::Uuid::new_v4().simple().to_string()),
    };
    Ok(Prepared {
        packed,
        group_id: Some(group_id),
        dedup_id,
        message_id,
    })
}

fn build_error(e: impl std::error::Error + Send + Sync + 'static, site: &Site<'_>) -> Error {
    site.error(
        ErrorKind::Unexpected,
        format!("could not build the request: {e}"),
    )
}

fn sqs_attributes(
    p: &Packed,
    site: &Site<'_>,
) -> Result<Option<HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>>> {
    let Some(v) = &p.attribute else {
        return Ok(None);
    };
    let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type(STRING)
        .string_value(v)
        .build()
        .map_err(|e| build_error(e, site))?;
    Ok(Some(HashMap::from([(ATTRIBUTE.to_string(), value)])))
}

fn sns_attributes(
    p: &Packed,
    site: &Site<'_>,
) -> Result<Option<HashMap<String, aws_sdk_sns::types::MessageAttributeValue>>> {
    let Some(v) = &p.attribute else {
        return Ok(None);
    };
    let value = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type(STRING)
        .string_value(v)
        .build()
        .map_err(|e| build_error(e, site))?;
    Ok(Some(HashMap::from([(ATTRIBUTE.to_string(), value)])))
}

/// One entry of a batch that was not sent.
struct EntryFailure {
    index: usize,
    why: String,
    kind: ErrorKind,
}

/// Sends one prepared message.
pub(crate) async fn send_one(
    inner: &Inner,
    target: &Target,
    p: Prepared,
    site: &Site<'_>,
) -> Result<()> {
    match target {
        Target::Queue(q) => inner
            .sqs
            .send_message()
            .queue_url(&q.url)
            .message_body(p.packed.body.clone())
            .set_message_attributes(sqs_attributes(&p.packed, site)?)
            .set_message_group_id(p.group_id)
            .set_message_deduplication_id(p.dedup_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk(e, *site)),
        Target::Topic(arn) => inner
            .sns
            .publish()
            .topic_arn(&**arn)
            .message(p.packed.body.clone())
            .set_message_attributes(sns_attributes(&p.packed, site)?)
            .set_message_group_id(p.group_id)
            .set_message_deduplication_id(p.dedup_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk(e, *site)),
    }
}

/// Sends one batch request of at most 10 entries (`(index, message)`); gives the entries the
/// service refused.
async fn send_chunk(
    inner: &Inner,
    target: &Target,
    chunk: &[(usize, &Prepared)],
    site: &Site<'_>,
) -> Result<Vec<EntryFailure>> {
    let failed: Vec<(String, bool, String, Option<String>)> = match target {
        Target::Queue(q) => {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, p) in chunk {
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(p.packed.body.clone())
                        .set_message_attributes(sqs_attributes(&p.packed, site)?)
                        .set_message_group_id(p.group_id.clone())
                        .set_message_deduplication_id(p.dedup_id.clone())
                        .build()
                        .map_err(|e| build_error(e, site))?,
                );
            }
            let out = inner
                .sqs
                .send_message_batch()
                .queue_url(&q.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| from_sdk(e, *site))?;
            out.failed
                .into_iter()
                .map(|f| (f.id, f.sender_fault, f.code, f.message))
                .collect()
        }
        Target::Topic(arn) => {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, p) in chunk {
                entries.push(
                    aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message(p.packed.body.clone())
                        .set_message_attributes(sns_attributes(&p.packed, site)?)
                        .set_message_group_id(p.group_id.clone())
                        .set_message_deduplication_id(p.dedup_id.clone())
                        .build()
                        .map_err(|e| build_error(e, site))?,
                );
            }
            let out = inner
                .sns
                .publish_batch()
                .topic_arn(&**arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| from_sdk(e, *site))?;
            out.failed
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.id, f.sender_fault, f.code, f.message))
                .collect()
        }
    };
    let mut failures = Vec::new();
    for (id, sender_fault, code, message) in failed {
        let Some(index) = id
            .parse::<usize>()
            .ok()
            .filter(|i| chunk.iter().any(|(c, _)| c == i))
        else {
            // An id we did not send: the answer is garbled, so no entry of the chunk is
            // known to be sent.
            return Ok(chunk
                .iter()
                .map(|(i, _)| EntryFailure {
                    index: *i,
                    why: format!("the service reported an unknown entry id {id:?}"),
                    kind: ErrorKind::Unexpected,
                })
                .collect());
        };
        // A refused entry is not a configuration problem: unknown or parameter codes are
        // unexpected (the sender's fault) or unavailable (the service's, retryable).
        let kind = match kind_for_code(&code) {
            Some(ErrorKind::Config) | None if sender_fault => ErrorKind::Unexpected,
            Some(ErrorKind::Config) | None => ErrorKind::Unavailable,
            Some(k) => k,
        };
        failures.push(EntryFailure {
            index,
            why: format!("{code}: {}", message.unwrap_or_default()),
            kind,
        });
    }
    Ok(failures)
}

/// Sends prepared messages in as few requests as the batch limits allow. Entries the service
/// refused, and entries not sent because a request failed, are named in the error.
pub(crate) async fn send_many(
    inner: &Inner,
    target: &Target,
    prepared: &[Prepared],
    site: &Site<'_>,
) -> Result<()> {
    let mut chunks: Vec<Vec<(usize, &Prepared)>> = Vec::new();
    let mut current: Vec<(usize, &Prepared)> = Vec::new();
    let mut bytes = 0;
    for (i, p) in prepared.iter().enumerate() {
        let size = p.packed.size();
        if !current.is_empty()
            && (current.len() == crate::config::MAX_BATCH || bytes + size > BATCH_BYTES)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push((i, p));
        bytes += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    let mut report = BatchError::new(prepared.len());
    let mut failed_request = false;
    for chunk in &chunks {
        if failed_request {
            report.skip(chunk.iter().map(|(i, _)| *i));
            continue;
        }
        let result = if chunk.len() == 1 && chunk[0].1.packed.size() > BATCH_BYTES {
            // Too big for a batch request: alone.
            let (_, p) = chunk[0];
            let single = Prepared {
                packed: p.packed.clone(),
                group_id: p.group_id.clone(),
                dedup_id: p.dedup_id.clone(),
                message_id: p.message_id.clone(),
            };
            send_one(inner, target, single, site)
                .await
                .map(|()| Vec::new())
        } else {
            send_chunk(inner, target, chunk, site).await
        };
        match result {
            Ok(failures) => {
                for f in failures {
                    let id = prepared[f.index]
                        .message_id
                        .as_deref()
                        .map(|m| format!(" (message-id {m:?})"))
                        .unwrap_or_default();
                    report.fail(f.index, site.error(f.kind, format!("{}{id}", f.why)));
                }
            }
            Err(e) => {
                // The request failed: its first entry carries the error, the rest of the
                // chunk failed with it, the later chunks are not attempted.
                let (kind, retryable) = (e.kind(), e.is_retryable());
                let mut first = Some(e);
                for (i, _) in chunk {
                    let err = first.take().unwrap_or_else(|| {
                        site.error(kind, "the batch request failed")
                            .retryable(retryable)
                    });
                    report.fail(*i, err);
                }
                failed_request = true;
            }
        }
    }
    report.into_result().map_err(|e| site.wrap(e))
}

/// A producer for one destination (queue or topic).
pub(crate) struct Producer {
    inner: Arc<Inner>,
    destination: String,
    target: Target,
}

impl Producer {
    pub fn new(inner: Arc<Inner>, destination: &str, target: Target) -> Self {
        Producer {
            inner,
            destination: destination.to_string(),
            target,
        }
    }
}

#[async_trait]
impl ProducerBackend for Producer {
    async fn send(&self, message: Message) -> Result<()> {
        let site = self.inner.site(&self.destination, "send");
        self.inner.check_open(&self.destination, "send")?;
        let p = prepare(
            &message,
            &self.target,
            self.inner.config.max_message_bytes,
            &site,
        )?;
        send_one(&self.inner, &self.target, p, &site).await
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        let site = self.inner.site(&self.destination, "send_batch");
        self.inner.check_open(&self.destination, "send_batch")?;
        let limit = self.inner.config.max_message_bytes;
        let mut prepared = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let p = prepare(m, &self.target, limit, &site).map_err(|e| {
                site.error(
                    e.kind(),
                    format!(
                        "message #{i} of the batch: {}; nothing was sent",
                        e.message()
                    ),
                )
            })?;
            prepared.push(p);
        }
        send_many(&self.inner, &self.target, &prepared, &site).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ids_escape_what_sqs_refuses() {
        assert_eq!(fifo_id("customer-7").as_deref(), Some("customer-7"));
        assert_eq!(fifo_id("a b%").as_deref(), Some("a%20b%25"));
        assert_eq!(fifo_id("é").as_deref(), Some("%C3%A9"));
        assert_eq!(fifo_id(""), None);
        assert!(fifo_id(&"x".repeat(128)).is_some());
        assert_eq!(fifo_id(&"x".repeat(129)), None);
        assert_eq!(fifo_id(&"é".repeat(22)), None);
    }
}
