//! Redrive: move dead-lettered messages back to where they came from, with a filter and a
//! limit. The envelope headers are removed; payload and original headers go back unchanged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::dead_letter::strip_envelope;
use brokerkit_core::{DeadLetterEnvelope, Message, Result};

use crate::broker::Broker;
use crate::producer::Producer;

type Filter = Arc<dyn Fn(&Message, &DeadLetterEnvelope) -> bool + Send + Sync>;

/// What to redrive.
#[derive(Clone)]
pub struct RedriveOptions {
    filter: Option<Filter>,
    limit: usize,
    group: Option<String>,
    idle: Duration,
}

impl Default for RedriveOptions {
    /// Everything (up to 1000 messages), read with the default group, stopping after 1 s idle.
    fn default() -> Self {
        RedriveOptions {
            filter: None,
            limit: 1000,
            group: None,
            idle: Duration::from_secs(1),
        }
    }
}

impl RedriveOptions {
    /// Only messages for which `f` is true; the others stay in the dead-letter destination.
    pub fn filter(
        mut self,
        f: impl Fn(&Message, &DeadLetterEnvelope) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    /// At most `n` messages.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.max(1);
        self
    }

    /// Reads the dead-letter destination as this consumer group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Stops after this long without a message.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Messages moved back, per original destination.
    pub moved: HashMap<String, usize>,
    /// Messages left in place (filtered out or without an envelope).
    pub skipped: usize,
}

impl RedriveReport {
    /// Messages moved back in all.
    pub fn total_moved(&self) -> usize {
        self.moved.values().sum()
    }
}

/// Moves messages from `dead_letter_destination` back to their original destinations.
///
/// Each message is sent before its dead-letter copy is acked, so a failure part-way leaves
/// it in the dead-letter destination (at worst it is both redriven and still there).
pub async fn redrive(
    broker: &Broker,
    dead_letter_destination: &str,
    options: RedriveOptions,
) -> Result<RedriveReport> {
    let mut builder = broker
        .consumer(dead_letter_destination)
        .prefetch(options.limit + 256);
    if let Some(g) = &options.group {
        builder = builder.group(g.clone());
    }
    let mut consumer = builder.build().await?;
    let mut producers: HashMap<String, Producer> = HashMap::new();
    let mut report = RedriveReport::default();
    let mut kept = Vec::new();
    while report.total_moved() < options.limit {
        let Ok(next) = tokio::time::timeout(options.idle, consumer.next()).await else {
            break;
        };
        let Some(d) = next? else { break };
        let envelope = DeadLetterEnvelope::read_from(&d.message().headers);
        let chosen =
            envelope.filter(|env| options.filter.as_ref().is_none_or(|f| f(d.message(), env)));
        let Some(env) = chosen else {
            report.skipped += 1;
            kept.push(d);
            continue;
        };
        let origin = env.original_destination;
        if !producers.contains_key(&origin) {
            let p = broker
                .producer(&origin)
                .without_default_layers()
                .build()
                .await?;
            producers.insert(origin.clone(), p);
        }
        let mut message = d.message().clone();
        strip_envelope(&mut message.headers);
        if let Some(p) = producers.get(&origin) {
            p.send(message).await?;
        }
        d.ack().await?;
        *report.moved.entry(origin).or_default() += 1;
    }
    consumer.close().await?;
    for d in kept {
        d.nack(None).await?;
    }
    Ok(report)
}
