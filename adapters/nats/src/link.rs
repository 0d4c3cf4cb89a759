//! The client and the shared state: one NATS connection, the JetStream context in JetStream
//! mode, the streams resolved so far, failure records and the closed flag. Imports nothing
//! from the crate but `config`, `error` and `names`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_nats::jetstream::{self, stream};
use brokerkit_core::{Capabilities, ClosedFlag, ErrorKind, Result};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::error::{error, from_client};
use crate::names;

/// Bytes of `max_payload` kept for headers in JetStream mode, so that a message of the
/// declared maximum payload can still carry its headers and be dead-lettered with the
/// envelope.
pub const HEADER_RESERVE: usize = 4096;

/// Most failure records (first failure time, highest failed attempt) kept per backend, for
/// dead-letter envelopes and attempt counts of unsettled deliveries. At the cap the oldest
/// tenth (by first failure) is forgotten, with a warning (at most one per 10 s): a forgotten
/// delivery's envelope then gives its last failure as its first, and its attempt count falls
/// back to the server's delivery count. Records go when their delivery is settled.
pub(crate) const MAX_FAILURE_RECORDS: usize = 100_000;

/// Rate limit of the "failure records forgotten" warning.
static EVICTION_WARNINGS: brokerkit_core::foreign_headers::WarnLimit =
    brokerkit_core::foreign_headers::WarnLimit::new();

/// Makes room in failure records at the cap: forgets the oldest tenth by first failure.
/// Returns how many were forgotten.
pub(crate) fn evict_oldest<K: Clone + Eq + std::hash::Hash>(
    f: &mut HashMap<K, Failure>,
    cap: usize,
) -> usize {
    if f.len() < cap {
        return 0;
    }
    let n = (cap / 10).max(1);
    let mut by_age: Vec<(SystemTime, K)> = f.iter().map(|(k, r)| (r.first, k.clone())).collect();
    by_age.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
    for (_, k) in by_age.into_iter().take(n) {
        f.remove(&k);
    }
    n
}

/// Key of a failure record: `stream/consumer` and the stream sequence.
pub(crate) type FailureKey = (Arc<str>, u64);

/// What this process saw of an unsettled message's failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    /// First nack or drop.
    pub first: SystemTime,
    /// Highest attempt that failed. nats-server rolls its delivered count back when a
    /// delivery goes to a pull request whose inbox lost interest, so redeliveries are counted
    /// at least one above this.
    pub attempts: u32,
}

/// State shared by the backend, its producers, consumers and deliveries.
pub(crate) struct Shared {
    pub config: NatsConfig,
    pub client: async_nats::Client,
    pub js: Option<jetstream::Context>,
    pub caps: Arc<Capabilities>,
    /// The server's `max_payload` (headers plus payload), from its INFO.
    pub max_payload: usize,
    /// Destination → stream name.
    streams: Mutex<HashMap<String, String>>,
    /// Failures of deliveries not settled yet, for attempts and envelopes.
    failures: Mutex<HashMap<FailureKey, Failure>>,
    /// Number of failure records, read without the lock on the hot path.
    failure_count: AtomicUsize,
    /// Counts (re)connections; consumers re-issue pull requests when it changes.
    pub connections: watch::Receiver<u64>,
    closed: ClosedFlag,
    /// Runtime to spawn naks from `Drop`.
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn address(&self) -> &str {
        &self.config.redacted
    }

    /// Makes the shared state of a connected client.
    pub fn new(
        config: NatsConfig,
        client: async_nats::Client,
        js: Option<jetstream::Context>,
        caps: Arc<Capabilities>,
        max_payload: usize,
        connections: watch::Receiver<u64>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            config,
            client,
            js,
            caps,
            max_payload,
            streams: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            failure_count: AtomicUsize::new(0),
            connections,
            closed: ClosedFlag::new(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub fn check_open(&self) -> Result<()> {
        self.closed.check("use")
    }

    pub fn js(&self) -> Result<&jetstream::Context> {
        self.js.as_ref().ok_or_else(|| {
            error(
                ErrorKind::Unexpected,
                "JetStream operation in core NATS mode",
                self.address(),
            )
        })
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, Failure>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert_failure(&self, f: &mut HashMap<FailureKey, Failure>, key: FailureKey, rec: Failure) {
        let forgotten = evict_oldest(f, MAX_FAILURE_RECORDS);
        if forgotten > 0 {
            if let Some(suppressed) = EVICTION_WARNINGS.due() {
                tracing::warn!(
                    forgotten,
                    suppressed,
                    "nats: {MAX_FAILURE_RECORDS} failure records of unsettled deliveries; the \
                     oldest were forgotten (their envelopes lose the first-failure time)"
                );
            }
        }
        f.insert(key, rec);
        self.failure_count.store(f.len(), Ordering::Release);
    }

    /// Records that `attempt` of a delivery failed (nack or drop).
    pub fn record_failure(&self, key: FailureKey, attempt: u32) {
        let mut f = self.failures();
        if let Some(rec) = f.get_mut(&key) {
            rec.attempts = rec.attempts.max(attempt);
            return;
        }
        let rec = Failure {
            first: SystemTime::now(),
            attempts: attempt,
        };
        self.insert_failure(&mut f, key, rec);
    }

    /// The highest failed attempt recorded for a delivery.
    pub fn failed_attempts(&self, key: &FailureKey) -> Option<u32> {
        if self.failure_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.failures().get(key).map(|r| r.attempts)
    }

    /// Forgets a settled delivery's record, returning it.
    pub fn take_failure(&self, key: &FailureKey) -> Option<Failure> {
        if self.failure_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut f = self.failures();
        let rec = f.remove(key);
        self.failure_count.store(f.len(), Ordering::Release);
        rec
    }

    /// Puts back a record taken by a settlement that then failed.
    pub fn restore_failure(&self, key: FailureKey, failure: Failure) {
        let mut f = self.failures();
        if !f.contains_key(&key) {
            self.insert_failure(&mut f, key, failure);
        }
    }

    /// The stream that stores `destination`: a stream whose subjects capture it, or, with
    /// `auto_create`, a new file-stored stream for it.
    pub async fn stream_for(&self, destination: &str) -> Result<String> {
        if let Some(s) = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(destination)
        {
            return Ok(s.clone());
        }
        let js = self.js()?;
        let subject = names::subject(destination)?;
        let found = match js.stream_by_subject(subject.clone()).await {
            Ok(name) => name,
            Err(e)
                if e.kind()
                    == async_nats::jetstream::context::GetStreamByNameErrorKind::NotFound =>
            {
                if !self.config.auto_create {
                    return Err(error(
                        ErrorKind::NotFound,
                        format!(
                            "no JetStream stream stores subject {subject:?} and auto_create=false; \
                             create a stream for it or set auto_create=true"
                        ),
                        self.address(),
                    )
                    .with_destination(destination));
                }
                self.create_stream(destination, &subject).await?
            }
            Err(e) => {
                return Err(
                    from_client(e, "look up the stream of a subject", self.address())
                        .with_destination(destination),
                )
            }
        };
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(destination.to_string(), found.clone());
        Ok(found)
    }

    async fn create_stream(&self, destination: &str, subject: &str) -> Result<String> {
        let js = self.js()?;
        let config = stream::Config {
            name: names::js_name(destination),
            subjects: vec![subject.to_string()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            duplicate_window: self.config.duplicate_window,
            num_replicas: 1,
            ..Default::default()
        };
        match js.create_stream(config).await {
            Ok(s) => Ok(s.cached_info().config.name.clone()),
            Err(e) => {
                // Another client may have created it meanwhile.
                if let Ok(name) = js.stream_by_subject(subject.to_string()).await {
                    return Ok(name);
                }
                Err(from_client(e, "create stream", self.address()).with_destination(destination))
            }
        }
    }

    pub fn close(&self) {
        self.closed.close();
    }
}

/// Where a consumer reads from.
pub(crate) struct Target {
    pub destination: Arc<str>,
    pub group: Arc<str>,
    pub stream: Arc<str>,
    pub durable: Arc<str>,
    /// `stream/durable`, the key of failure records.
    pub id: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failure_records_at_the_cap_forget_the_oldest() {
        let mut f: HashMap<u64, Failure> = HashMap::new();
        let t0 = SystemTime::UNIX_EPOCH;
        for i in 0..100u64 {
            f.insert(
                i,
                Failure {
                    first: t0 + Duration::from_secs(i),
                    attempts: 1,
                },
            );
        }
        assert_eq!(evict_oldest(&mut f, 101), 0);
        assert_eq!(evict_oldest(&mut f, 100), 10);
        assert_eq!(f.len(), 90);
        assert!((0..10).all(|i| !f.contains_key(&i)));
        assert!((10..100).all(|i| f.contains_key(&i)));
    }
}
