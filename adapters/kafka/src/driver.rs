//! The driver thread of one consumer: polls librdkafka (which also runs the rebalance
//! callbacks), files received messages into the shared [`crate::state::State`], releases held
//! retry copies when due, pauses partitions while the local buffer is full, commits settled
//! offsets, and on close drains deliveries in hand before leaving the group.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit_core::{ErrorKind, Message, Result};
use bytes::Bytes;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::error::{error, from_kafka};
use crate::headers;
use crate::link::base_client_config;
use crate::settle::{now_ms, ConsumerShared};
use crate::state::{Fetched, Tp};

/// Longest single poll: bounds how late a close, a settlement commit or a release is seen.
const POLL: Duration = Duration::from_millis(50);
/// Most payload bytes buffered locally before partitions are paused.
const MAX_READY_BYTES: usize = 32 * 1024 * 1024;
/// librdkafka's own read-ahead per consumer, in KiB (`queued.max.messages.kbytes`).
const CLIENT_QUEUE_KIB: usize = 32 * 1024;
/// Least retry copies held back before retry partitions are paused.
const MIN_HELD: usize = 100;
/// Most messages taken from librdkafka per lock of the shared state.
const POLL_BATCH: usize = 256;
/// Interval between repeated warnings about poll errors.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// The librdkafka context: rebalance and commit callbacks.
pub struct Ctx {
    shared: Arc<ConsumerShared>,
}

impl ClientContext for Ctx {}

impl Ctx {
    fn tps(&self, tpl: &TopicPartitionList) -> Vec<Tp> {
        let s = &self.shared;
        tpl.elements()
            .iter()
            .filter_map(|e| {
                let retry = if e.topic() == s.retry_topic {
                    true
                } else if e.topic() == &*s.destination {
                    false
                } else {
                    return None;
                };
                Some(Tp {
                    retry,
                    partition: e.partition(),
                })
            })
            .collect()
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.rebalances.fetch_add(1, Ordering::AcqRel);
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let tps = self.tps(tpl);
        let s = &self.shared;
        let deadline = Instant::now() + s.backend.config.drain_timeout;
        let mut st = s.lock();
        // Queued messages go back to Kafka; deliveries in hand get a bounded time to settle
        // so their offsets are committed before another member takes the partitions.
        st.abandon_queued(Some(&tps));
        while !st.closed && st.out_count(Some(&tps)) > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = s
                .settled
                .wait_timeout(st, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(st);
        commit(consumer, s, Some(&tps), CommitMode::Sync);
        s.lock().revoke(&tps);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let tps = self.tps(tpl);
                self.shared.lock().assign(&tps);
                self.shared.assigned.notify_waiters();
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.shared.group_id, error = %e, "kafka: rebalance error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(group = %self.shared.group_id, error = %e, "kafka: offset commit failed; retrying");
            let tps = self.tps(offsets);
            self.shared.lock().commit_failed(&tps);
        }
    }
}

fn consumer_config(s: &ConsumerShared) -> ClientConfig {
    let c = &s.backend.config;
    let session = c.session_timeout.as_millis();
    let mut cc = base_client_config(c);
    cc.set("group.id", &s.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 10).max(100).to_string())
        .set("partition.assignment.strategy", "range")
        .set("fetch.wait.max.ms", c.fetch_wait.as_millis().to_string())
        .set("queued.max.messages.kbytes", CLIENT_QUEUE_KIB.to_string());
    cc
}

/// Creates the group member, subscribes and starts its thread.
pub fn spawn(shared: Arc<ConsumerShared>) -> Result<()> {
    let addr = shared.backend.config.redacted.clone();
    let consumer: BaseConsumer<Ctx> = consumer_config(&shared)
        .create_with_context(Ctx {
            shared: shared.clone(),
        })
        .map_err(|e| from_kafka(e, "creating the consumer", &addr, "consumer"))?;
    consumer
        .subscribe(&[&shared.destination, &shared.retry_topic])
        .map_err(|e| {
            from_kafka(e, "subscribing", &addr, "consumer").with_destination(&*shared.destination)
        })?;
    std::thread::Builder::new()
        .name("brokerkit-kafka-consumer".into())
        .spawn(move || run(consumer, shared))
        .map_err(|e| {
            error(
                ErrorKind::Unexpected,
                format!("cannot start the consumer thread: {e}"),
                &addr,
                "consumer",
            )
        })?;
    Ok(())
}

fn topic_of(s: &ConsumerShared, tp: Tp) -> &str {
    if tp.retry {
        &s.retry_topic
    } else {
        &s.destination
    }
}

fn tpl_of(s: &ConsumerShared, tps: &[Tp]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(tps.len());
    for tp in tps {
        tpl.add_partition(topic_of(s, *tp), tp.partition);
    }
    tpl
}

/// Commits the settled prefix of `tps` (all owned partitions when `None`).
fn commit(consumer: &BaseConsumer<Ctx>, s: &ConsumerShared, tps: Option<&[Tp]>, mode: CommitMode) {
    let points = s.lock().take_commits(tps);
    if points.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(points.len());
    for (tp, offset) in &points {
        // Only fails for an invalid offset, which take_commits never gives.
        let _ = tpl.add_partition_offset(topic_of(s, *tp), tp.partition, Offset::Offset(*offset));
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!(group = %s.group_id, error = %e, "kafka: offset commit failed; retrying");
        let tps: Vec<Tp> = points.iter().map(|(tp, _)| *tp).collect();
        s.lock().commit_failed(&tps);
    }
}

fn to_fetched(s: &ConsumerShared, m: &BorrowedMessage<'_>) -> Option<Fetched> {
    let retry = if m.topic() == s.retry_topic {
        true
    } else if m.topic() == &*s.destination {
        false
    } else {
        return None;
    };
    let (hdrs, info) = headers::from_kafka(headers::raw_headers(m), retry);
    let mut message =
        Message::new(Bytes::copy_from_slice(m.payload().unwrap_or_default())).with_headers(hdrs);
    message.key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
    Some(Fetched {
        tp: Tp {
            retry,
            partition: m.partition(),
        },
        offset: m.offset(),
        generation: 0,
        message,
        info,
    })
}

struct Flow {
    main_full: bool,
    retry_full: bool,
}

/// Tells waiters the driver is done, however the thread ends (after the consumer left).
struct Finished(Arc<ConsumerShared>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.send_replace(true);
    }
}

fn run(consumer: BaseConsumer<Ctx>, s: Arc<ConsumerShared>) {
    let _finished = Finished(s.clone());
    let cfg = &s.backend.config;
    // Pausing discards what librdkafka fetched ahead, so the buffer (`buffer_messages`) is
    // large enough that only a consumer slower than the broker pauses.
    let ready_max = (s.prefetch * 2).max(cfg.buffer_messages);
    let held_max = s.prefetch.max(MIN_HELD);
    let mut flow = Flow {
        main_full: false,
        retry_full: false,
    };
    let mut closing_since: Option<Instant> = None;
    let mut last_commit = Instant::now();
    let mut last_warn: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        let (stop, next_due, released) = {
            let mut st = s.lock();
            if st.closed && closing_since.is_none() {
                closing_since = Some(now);
            }
            let drained = closing_since
                .is_some_and(|t| st.out_count(None) == 0 || now - t >= cfg.drain_timeout);
            let (released, next_due) = st.release_due(now_ms());
            let (n, bytes) = st.ready_len();
            flow.main_full = if flow.main_full {
                n >= ready_max / 2 || bytes >= MAX_READY_BYTES / 2
            } else {
                n >= ready_max || bytes >= MAX_READY_BYTES
            };
            let held = st.held_len();
            flow.retry_full = if flow.retry_full {
                held >= held_max / 2
            } else {
                held >= held_max
            };
            for tp in st.assigned() {
                let want = st.closed || flow.main_full || (tp.retry && flow.retry_full);
                if want && st.paused.insert(tp) {
                    pause.push(tp);
                } else if !want && st.paused.remove(&tp) {
                    resume.push(tp);
                }
            }
            (drained, next_due, released)
        };
        if released > 0 {
            s.ready.notify_one();
        }
        if !pause.is_empty() {
            let _ = consumer.pause(&tpl_of(&s, &pause));
        }
        if !resume.is_empty() {
            let _ = consumer.resume(&tpl_of(&s, &resume));
        }
        if stop {
            break;
        }
        let timeout = next_due.map_or(POLL, |due| {
            Duration::from_millis(
                due.saturating_sub(now_ms())
                    .clamp(1, POLL.as_millis() as u64),
            )
        });
        // One poll with the timeout, then whatever else is ready without waiting, filed under
        // one lock. A rebalance served in between makes the batch stale: it is dropped, and
        // librdkafka fetches it again from the committed offsets.
        let epoch = s.rebalances.load(Ordering::Acquire);
        let mut batch = Vec::new();
        let mut wait = timeout;
        while batch.len() < POLL_BATCH {
            match consumer.poll(wait) {
                Some(Ok(m)) => batch.extend(to_fetched(&s, &m)),
                Some(Err(e)) => {
                    if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                        tracing::warn!(group = %s.group_id, error = %e, "kafka: consumer error (retrying)");
                        last_warn = Some(Instant::now());
                    }
                    break;
                }
                None => break,
            }
            wait = Duration::ZERO;
        }
        if !batch.is_empty() && s.rebalances.load(Ordering::Acquire) == epoch {
            let now = now_ms();
            let mut st = s.lock();
            let mut queued = false;
            for f in batch {
                queued |= st.receive(f, now);
            }
            drop(st);
            if queued {
                s.ready.notify_one();
            }
        }
        if last_commit.elapsed() >= cfg.commit_interval && s.lock().dirty {
            commit(&consumer, &s, None, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    commit(&consumer, &s, None, CommitMode::Sync);
    // Dropping the consumer leaves the group (the revoke callback commits once more).
    drop(consumer);
}
