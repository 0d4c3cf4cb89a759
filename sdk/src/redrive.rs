//! Redrive: move dead-lettered messages back to where they came from, with a filter and a
//! limit. The envelope headers are removed; payload and original headers go back unchanged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::dead_letter::strip_envelope;
use brokerkit_core::{DeadLetterEnvelope, Message, Result};

/// How long dead letters a redrive leaves in place stay invisible (where the broker can
/// delay a redelivery): longer than a closed consumer's outstanding pull request may live on
/// the broker (5 s on a pull consumer), so they are not redelivered into it.
const KEPT_DELAY: Duration = Duration::from_secs(6);
/// How long a redrive waits for its first dead letter when a browse showed some: past
/// [`KEPT_DELAY`], so the dead letters an earlier redrive just left in place are reached.
const FIRST_WAIT: Duration = Duration::from_secs(10);

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
    rate: Option<f64>,
}

impl Default for RedriveOptions {
    /// Everything (up to 1000 messages), read with the default group, stopping after 1 s idle.
    fn default() -> Self {
        RedriveOptions {
            filter: None,
            limit: 1000,
            group: None,
            idle: Duration::from_secs(1),
            rate: None,
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

    /// At most `n` messages (any `usize`, `usize::MAX` meaning no limit).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.max(1);
        self
    }

    /// Reads the dead-letter destination as this consumer group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sends at most `per_second` messages a second (spreads the load on the original
    /// destination's consumers). Ignored unless positive.
    pub fn rate(mut self, per_second: f64) -> Self {
        self.rate = (per_second.is_finite() && per_second > 0.0).then_some(per_second);
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
    /// Set when the redrive's group received nothing at all while [`Broker::browse`] showed
    /// this many dead letters held: on brokers where a group created after the messages
    /// starts at the tail (see the adapter READMEs: e.g. a stream that already has
    /// consumers), or where that group holds them elsewhere. Non-zero means "moved 0, but there is something there":
    /// pass [`RedriveOptions::group`] naming the group that holds them. Always 0 where the
    /// broker cannot browse.
    pub unreached: usize,
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
    // What the destination holds before we start, to detect a group that starts at the tail
    // instead of reporting "moved 0" (see `RedriveReport::unreached`).
    let stored = if broker.capabilities().browse.is_available() {
        broker
            .browse(
                dead_letter_destination,
                options.limit.min(crate::MAX_BROWSE),
            )
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    } else {
        0
    };
    // A rate so small the interval overflows means "one message a year".
    let interval = options.rate.map(|r| {
        Duration::try_from_secs_f64(1.0 / r)
            .unwrap_or(crate::retry::MAX_DELAY)
            .min(crate::retry::MAX_DELAY)
    });
    let mut builder = broker.consumer(dead_letter_destination).prefetch(
        options
            .limit
            .saturating_add(256)
            .min(crate::consumer_builder::MAX_PREFETCH),
    );
    if let Some(g) = &options.group {
        builder = builder.group(g.clone());
    }
    let mut consumer = builder.build().await?;
    let mut producers: HashMap<String, Producer> = HashMap::new();
    let mut report = RedriveReport::default();
    let mut kept = Vec::new();
    // Where the browse saw dead letters, wait longer for the first one (a group joining, or
    // dead letters an earlier redrive left in place with a short delay) before giving up.
    let first_wait = if stored > 0 {
        options.idle.max(FIRST_WAIT)
    } else {
        options.idle
    };
    while report.total_moved() < options.limit {
        let wait = if report.total_moved() + report.skipped == 0 {
            first_wait
        } else {
            options.idle
        };
        let Ok(next) = tokio::time::timeout(wait, consumer.next()).await else {
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
            if let Some(interval) = interval {
                if report.total_moved() > 0 {
                    tokio::time::sleep(interval).await;
                }
            }
            p.send(message).await?;
        }
        d.ack().await?;
        *report.moved.entry(origin).or_default() += 1;
    }
    // Settle the kept ones before closing, so the adapter commits past them on close (on a
    // log broker, the originals and their retry copies would both be read next time). They go
    // back in place after a delay where the broker has one: a nack without delay may be
    // redelivered at once to this consumer while it closes (a pull consumer's outstanding
    // request), and such a copy waits out the lease (30 s) before anyone sees it again. The
    // next redrive waits `FIRST_WAIT` for them. (Before: 1 s on JetStream only; under load the
    // CLI's close took longer and a following full redrive found nothing, about half of the
    // runs of `cli/tests/brokers.rs::dlq_list_show_redrive`.)
    let back = broker
        .capabilities()
        .delayed_redelivery
        .is_available()
        .then_some(KEPT_DELAY);
    for d in kept {
        d.nack(back).await?;
    }
    consumer.close().await?;
    let seen = report.total_moved() + report.skipped;
    if seen == 0 && stored > 0 {
        report.unreached = stored;
        tracing::warn!(
            destination = dead_letter_destination,
            stored,
            seen,
            "redrive: the group did not receive every stored dead letter; it may have started at \
             the tail or consumed them before; name the group that holds them"
        );
    }
    Ok(report)
}
