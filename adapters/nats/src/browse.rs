//! Browse (JetStream): read a destination's stream by sequence with the stream's message-get
//! API. No consumer is created, nothing is delivered or acked, so browsing twice returns the
//! same messages and changes nothing (declared `Native`).
//!
//! The stream keeps messages after a group acks them (limits retention), so a browse shows
//! what the default group (the one consumers without a group and redrive use) has not acked
//! yet: from just after that durable consumer's ack floor, or from the stream's first message
//! when the group does not exist. Caveat: a message acked out of order above the ack floor
//! (redrive moved it while an earlier one was left in place) is still shown until the floor
//! passes it.

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use brokerkit_core::{BrowsedMessage, ErrorKind, Message, Result};

use crate::error::{error, from_client};
use crate::headers::from_nats;
use crate::link::Shared;
use crate::names;

/// Group whose position a browse starts from.
const DEFAULT_GROUP: &str = "default";

/// Up to `limit` messages of `destination` the default group has not acked, oldest first.
pub async fn browse(
    shared: &Shared,
    destination: &str,
    limit: usize,
) -> Result<Vec<BrowsedMessage>> {
    shared.check_open()?;
    let js = shared.js()?;
    let address = shared.address().to_string();
    let subject = names::subject(destination)?;
    let stream_name = match js.stream_by_subject(subject.clone()).await {
        Ok(name) => name,
        // No stream: nothing stored.
        Err(e)
            if e.kind() == async_nats::jetstream::context::GetStreamByNameErrorKind::NotFound =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(from_client(e, "look up the stream", &address)),
    };
    let mut stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| from_client(e, "get stream", &address))?;
    let info = stream
        .info()
        .await
        .map_err(|e| {
            error(
                ErrorKind::Unavailable,
                format!("stream info of {stream_name:?}: {e}"),
                &address,
            )
        })?
        .clone();
    let own_stream = info.config.subjects == [subject.clone()];
    let durable = names::durable(destination, DEFAULT_GROUP, own_stream);
    let mut next = match stream.consumer_info(&durable).await {
        Ok(c) => c.ack_floor.stream_sequence + 1,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => 0,
        Err(e) => {
            return Err(error(
                ErrorKind::Unavailable,
                format!("consumer info of {durable:?}: {e}"),
                &address,
            ))
        }
    };
    next = next.max(info.state.first_sequence);
    let mut out = Vec::new();
    while out.len() < limit && next <= info.state.last_sequence {
        let got = stream
            .raw_message_builder()
            .sequence(next)
            .next_by_subject(subject.clone())
            .send()
            .await;
        match got {
            Ok(m) => {
                if m.sequence > info.state.last_sequence {
                    break;
                }
                let (headers, key) = from_nats(Some(&m.headers));
                let mut message = Message::new(m.payload.clone()).with_headers(headers);
                message.key = key;
                out.push(BrowsedMessage::new(m.sequence.to_string(), message));
                next = m.sequence + 1;
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
            Err(e) => {
                return Err(error(
                    ErrorKind::Unavailable,
                    format!("get message {next} of stream {stream_name:?}: {e}"),
                    &address,
                )
                .retryable(true))
            }
        }
    }
    Ok(out)
}
