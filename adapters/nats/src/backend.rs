//! The broker handle: connects (core NATS or JetStream), declares capabilities, and makes
//! producers and consumers.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{ConnectOptions, Event};
use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, ErrorKind, ProducerBackend, Result,
    Support,
};
use tokio::sync::watch;

use crate::config::{Mode, NatsConfig};
use crate::error::{error, from_client};
use crate::link::{Shared, HEADER_RESERVE};
use crate::names;

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
            c.crash_safe_attempts = true; // num_delivered of the durable consumer
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
            shared: Shared::new(config, client, js, caps, max_payload, rx),
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
        self.shared.config.mode.adapter_name()
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(match self.shared.config.mode {
            Mode::Core => crate::config::CORE_SCHEME,
            Mode::JetStream => crate::config::JETSTREAM_SCHEME,
        })
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
        // Acks and naks are publishes the client buffers: flush them before draining, or a
        // process that exits right after `close` loses them (the messages then wait out
        // `ack_wait`).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.client.flush()).await;
        // Sends what is buffered, then closes the connection.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.client.drain()).await;
        Ok(())
    }
}
