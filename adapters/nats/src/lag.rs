//! Consumer lag of a JetStream group: the durable consumer's `num_pending` (stored, not yet
//! delivered) plus `num_ack_pending` (delivered, not yet acked), from consumer info.
//!
//! Read-only: it looks streams and consumers up and never creates them. A group whose durable
//! consumer does not exist yet reports what it would receive on subscribing: the stream's
//! messages for the destination while the stream has no consumer (the first group gets the
//! backlog), nothing otherwise. Core NATS stores nothing and has no lag.

use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamByNameErrorKind};
use async_nats::jetstream::ErrorCode;
use brokerkit_core::{Error, ErrorKind, Lag, LagAccuracy, Result};
use futures_util::TryStreamExt;

use crate::backend::Shared;
use crate::config::Mode;
use crate::error::{from_client, Classify};
use crate::names;

impl Classify for ConsumerInfoErrorKind {
    fn classify(&self) -> ErrorKind {
        use ConsumerInfoErrorKind as K;
        match self {
            K::NotFound | K::StreamNotFound => ErrorKind::NotFound,
            K::JetStream(e)
                if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND
                    || e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                ErrorKind::NotFound
            }
            K::InvalidName => ErrorKind::Config,
            K::TimedOut => ErrorKind::Timeout,
            K::Offline | K::Request | K::NoResponders => ErrorKind::Unavailable,
            K::JetStream(_) => ErrorKind::Unexpected,
        }
    }
}

/// The lag of `group` (default group when `None`) on `destination`.
pub(crate) async fn lag(shared: &Shared, destination: &str, group: Option<&str>) -> Result<Lag> {
    if shared.config.mode == Mode::Core {
        return Err(Error::unsupported(
            "core NATS stores nothing, so it has no consumer lag; use nats+js:// (JetStream)",
        ));
    }
    shared.check_open()?;
    let group = group.unwrap_or(names::DEFAULT_GROUP);
    let subject = names::subject(destination)?;
    let js = shared.js()?;
    let address = shared.address();
    let with_dest = |e: Error| e.with_destination(destination).with_operation("lag");
    let stream_name = match js.stream_by_subject(subject.clone()).await {
        Ok(name) => name,
        Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound => {
            return Ok(Lag::zero(LagAccuracy::Exact))
        }
        Err(e) => return Err(with_dest(from_client(e, "look up the stream", address))),
    };
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| with_dest(from_client(e, "get stream", address)))?;
    let info = stream.cached_info();
    let own_stream = info.config.subjects == [subject.clone()];
    let durable = names::durable(destination, group, own_stream);
    match stream.consumer_info(&durable).await {
        Ok(c) => Ok(Lag::from_parts(
            Some(c.num_pending),
            Some(c.num_ack_pending as u64),
            None,
            LagAccuracy::Exact,
        )),
        Err(e) if e.kind().classify() == ErrorKind::NotFound => {
            if info.state.consumer_count > 0 {
                return Ok(Lag::zero(LagAccuracy::Exact));
            }
            let stored = if own_stream {
                info.state.messages
            } else {
                let counts = stream
                    .info_with_subjects(&subject)
                    .await
                    .map_err(|e| with_dest(from_client(e, "stream subjects", address)))?;
                let counts: Vec<(String, usize)> = counts
                    .try_collect()
                    .await
                    .map_err(|e| with_dest(from_client(e, "stream subjects", address)))?;
                counts.iter().map(|(_, n)| *n as u64).sum()
            };
            Ok(Lag::from_parts(
                Some(stored),
                Some(0),
                None,
                LagAccuracy::Exact,
            ))
        }
        Err(e) => Err(with_dest(from_client(e, "consumer info", address))),
    }
}
