//! The connected backend: one NATS connection, the JetStream context in JetStream mode, and
//! the streams resolved so far.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, Event};
use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, ErrorKind, ProducerBackend, Result,
    Support,
};
use tokio::sync::watch;

use crate::config::{Mode, NatsConfig};
use crate::error::{error, from_client};
use crate::names;

/// Bytes of `max_payload` kept for headers in JetStream mode, so that a message of the
/// declared maximum payload can still carry its headers and be dead-lettered with the
/// envelope.
pub const HEADER_RESERVE: usize = 4096;

/// Most failure times remembered for dead-letter envelopes (per backend).
const MAX_FAILURE_RECORDS: usize = 100_000;

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
    closed: AtomicBool,
    /// Runtime to spawn naks from `Drop`.
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn address(&self) -> &str {
        &self.config.redacted
    }

    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(error(
                ErrorKind::Closed,
                "the NATS backend was closed",
                self.address(),
            ));
        }
        Ok(())
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
        if f.len() < MAX_FAILURE_RECORDS {
            f.insert(key, rec);
            self.failure_count.store(f.len(), Ordering::Release);
        }
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
        self.closed.store(true, Ordering::Release);
    }
}

/// A connected NATS backend (core or JetStream, by URL scheme).
pub struct NatsBackend {
    pub(crate) shared: Arc<Shared>,
}

fn capabilities(mode: Mode, max_payload: usize, ack_wait: Duration) -> Capabilities {
    match mode {
        Mode::Core => {
            let mut c = Capabilities::default();
            c.max_payload_bytes = max_payload;
            c.max_batch = 1000;
            c.fan_out = true;
            c.competing_consumers = true;
            c
        }
        Mode::JetStream => {
            let mut c = Capabilities::default();
            c.max_payload_bytes = max_payload.saturating_sub(HEADER_RESERVE);
            c.max_batch = 256;
            c.redelivery = true;
            c.delayed_redelivery = Support::Native;
            c.ordering_key = Support::Native;
            c.dead_letter = Support::Emulated;
            c.native_dedup = true;
            c.fan_out = true;
            c.competing_consumers = true;
            c.lease_extension = Support::Native;
            c.lease = Some(ack_wait);
            c.browse = Support::Native;
            c.lag = Some(brokerkit_core::LagAccuracy::Exact);
            c
        }
    }
}

impl NatsBackend {
    /// Connects with `config`. An unreachable server is a retryable `Unavailable` error
    /// naming the (redacted) address.
    pub async fn connect(config: NatsConfig) -> Result<Self> {
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let mut options = ConnectOptions::new()
            .name(&config.client_name)
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.request_timeout))
            .max_reconnects(None)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    match event {
                        Event::Connected => {
                            tx.send_modify(|n| *n += 1);
                        }
                        Event::Disconnected => tracing::warn!("NATS connection lost; reconnecting"),
                        other => tracing::debug!(event = %other, "NATS client event"),
                    }
                }
            });
        if let Some((user, password)) = &config.user_password {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        let client = async_nats::connect_with_options(config.server.as_str(), options)
            .await
            .map_err(|e| {
                from_client(
                    e,
                    &format!("cannot connect to {}", config.redacted),
                    &config.redacted,
                )
                .with_operation("connect")
            })?;
        let max_payload = client.server_info().max_payload;
        let js = match config.mode {
            Mode::Core => None,
            Mode::JetStream => {
                let js = jetstream::ContextBuilder::new()
                    .timeout(config.request_timeout)
                    .build(client.clone());
                check_jetstream(&client, &config).await?;
                Some(js)
            }
        };
        let caps = Arc::new(capabilities(config.mode, max_payload, config.ack_wait));
        Ok(NatsBackend {
            shared: Arc::new(Shared {
                config,
                client,
                js,
                caps,
                max_payload,
                streams: Mutex::new(HashMap::new()),
                failures: Mutex::new(HashMap::new()),
                failure_count: AtomicUsize::new(0),
                connections: rx,
                closed: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }
}

/// Asks the JetStream API for account info: no responder or an error means JetStream is off.
async fn check_jetstream(client: &async_nats::Client, config: &NatsConfig) -> Result<()> {
    let off = |why: String| {
        error(
            ErrorKind::Unsupported,
            format!(
                "JetStream is not available at {} ({why}); enable it on the server \
                 (nats-server -js) or use nats:// for core NATS",
                config.redacted
            ),
            &config.redacted,
        )
        .with_operation("connect")
    };
    match client.request("$JS.API.INFO", bytes::Bytes::new()).await {
        Ok(reply) => {
            let text = String::from_utf8_lossy(&reply.payload);
            if text.contains("\"error\"") {
                let shown: String = text.chars().take(300).collect();
                return Err(off(shown));
            }
            Ok(())
        }
        Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
            Err(off("no JetStream API responder".into()))
        }
        Err(e) => {
            Err(from_client(e, "JetStream account info", &config.redacted)
                .with_operation("connect"))
        }
    }
}

#[async_trait]
impl Backend for NatsBackend {
    /// `nats` (core NATS) or `nats-jetstream`.
    fn name(&self) -> &'static str {
        match self.shared.config.mode {
            Mode::Core => crate::error::BROKER,
            Mode::JetStream => "nats-jetstream",
        }
    }

    fn capabilities(&self) -> &Capabilities {
        &self.shared.caps
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.shared.check_open()?;
        let subject = names::subject(destination)?;
        if self.shared.config.mode == Mode::JetStream {
            self.shared.stream_for(destination).await?;
        }
        Ok(Box::new(crate::producer::NatsProducer::new(
            self.shared.clone(),
            destination,
            subject,
        )))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.shared.check_open()?;
        let group = options.group.as_deref().unwrap_or(names::DEFAULT_GROUP);
        match self.shared.config.mode {
            Mode::Core => Ok(Box::new(
                crate::core_consumer::CoreConsumer::subscribe(
                    self.shared.clone(),
                    destination,
                    group,
                    options.prefetch,
                )
                .await?,
            )),
            Mode::JetStream => Ok(Box::new(
                crate::consumer::JsConsumer::subscribe(
                    self.shared.clone(),
                    destination,
                    group,
                    options.prefetch,
                )
                .await?,
            )),
        }
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        if self.shared.config.mode == Mode::Core {
            return Err(brokerkit_core::Error::unsupported(
                "core NATS stores nothing to browse; use nats+js://",
            ));
        }
        crate::browse::browse(&self.shared, destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.shared, destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.shared.close();
        // Sends what is buffered (acks included), then closes the connection.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.client.drain()).await;
        Ok(())
    }
}
