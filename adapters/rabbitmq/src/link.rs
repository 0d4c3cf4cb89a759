//! The connection (re-established on demand after a loss), confirm-mode publishing and
//! topology declarations.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit_core::{ErrorKind, Result};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use crate::config::{names, RabbitConfig};
use crate::error;

/// Longest a close waits for the broker (cancel-ok, close-ok) before giving up on it.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Longest wait for one AMQP operation other than a publisher confirm: opening a channel, a
/// declaration, `basic.qos`/`basic.consume`, an ack, nack or publish frame handed to the
/// socket. A connection the broker stopped reading (a disk or memory alarm blocks publishing
/// connections) or a half-dead socket then gives a retryable `Timeout`, never a hang.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for `operation` at most [`OPERATION_TIMEOUT`]; past it, the `Timeout` error of `op`.
pub(crate) async fn in_time<T>(
    op: &'static str,
    address: &str,
    operation: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(OPERATION_TIMEOUT, operation)
        .await
        .map_err(|_| error::timed_out(op, address, OPERATION_TIMEOUT))
}

/// Runs one lapin operation for `op` [`in_time`], its error mapped by [`error::map`].
pub(crate) async fn bounded<T>(
    op: &'static str,
    address: &str,
    operation: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T> {
    in_time(op, address, operation)
        .await?
        .map_err(|e| error::map(e, op, address))
}

/// One AMQP connection, replaced when it is lost.
pub struct Link {
    pub config: RabbitConfig,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    closed: AtomicBool,
    /// Dead-letter topologies and hold queues already declared (by name).
    declared: Mutex<HashSet<String>>,
}

impl Link {
    /// Connects once; the error of a failed first connect is returned as is.
    pub async fn connect(config: RabbitConfig) -> Result<(Arc<Link>, u32)> {
        let conn = open(&config).await?;
        let frame_max = conn.configuration().frame_max();
        let link = Link {
            config,
            conn: tokio::sync::Mutex::new(Some(Arc::new(conn))),
            closed: AtomicBool::new(false),
            declared: Mutex::new(HashSet::new()),
        };
        Ok((Arc::new(link), frame_max))
    }

    /// The redacted broker address.
    pub fn address(&self) -> &str {
        &self.config.redacted
    }

    /// Fails with `Closed` after [`Link::close`].
    pub fn check_open(&self, op: &'static str) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(error::new(
                ErrorKind::Closed,
                "the RabbitMQ connection was closed by the application",
                op,
                self.address(),
            ));
        }
        Ok(())
    }

    /// Whether [`Link::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The live connection, reconnecting (one attempt) if it was lost.
    pub async fn connection(&self, op: &'static str) -> Result<Arc<Connection>> {
        self.check_open(op)?;
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.status().connected() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let conn = Arc::new(open(&self.config).await.map_err(|e| e.with_operation(op))?);
        tracing::info!(address = %self.address(), "rabbitmq: connected");
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// A new channel on the live connection.
    pub async fn channel(&self, op: &'static str) -> Result<Channel> {
        let conn = self.connection(op).await?;
        bounded(op, self.address(), conn.create_channel()).await
    }

    /// Closes the connection; later operations fail with `Closed`. Waits at most
    /// [`CLOSE_WAIT`] for the broker's close-ok (a dead socket never answers).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if let Some(c) = self.conn.lock().await.take() {
                let _ = c.close(200, "brokerkit closed".into()).await;
            }
        })
        .await;
    }

    /// Whether `name` was declared already (through [`Link::mark_declared`]).
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    fn mark_declared(&self, name: &str, yes: bool) {
        let mut d = self.declared.lock().unwrap_or_else(|p| p.into_inner());
        if yes {
            d.insert(name.to_string());
        } else {
            d.remove(name);
        }
    }

    /// Forgets a declaration (it vanished from the broker).
    pub fn forget(&self, name: &str) {
        self.mark_declared(name, false);
    }

    /// Declares `destination`'s dead-letter exchange and its default-group queue, so dead
    /// letters are kept even before anyone consumes `<destination>.dlq`. Cached.
    pub async fn ensure_dead_letter(&self, channel: &Channel, destination: &str) -> Result<()> {
        let dlq = brokerkit_core::dead_letter_destination(destination);
        if self.is_declared(&dlq) {
            return Ok(());
        }
        declare_group(self, channel, &dlq, names::DEFAULT_GROUP, false).await?;
        self.mark_declared(&dlq, true);
        Ok(())
    }

    /// Declares the hold queue for delayed redelivery to `queue` after `ms`: messages expire
    /// there after `ms` and are dead-lettered by RabbitMQ to `queue` only. Cached.
    ///
    /// The hold queue is a quorum queue that never expires and hands expired messages back
    /// at-least-once (see [`hold_queue_args`]).
    pub async fn ensure_hold_queue(
        &self,
        channel: &Channel,
        queue: &str,
        ms: u64,
    ) -> Result<String> {
        let hold = names::hold_queue(queue, ms);
        if self.is_declared(&hold) {
            return Ok(hold);
        }
        let name = short(&hold, "hold queue", self)?;
        bounded(
            "nack",
            self.address(),
            channel.queue_declare(name, durable_queue(), hold_queue_args(queue, ms)),
        )
        .await?;
        self.mark_declared(&hold, true);
        Ok(hold)
    }
}

/// The arguments of a hold queue parking `queue`'s messages for `ms`.
///
/// - **No `x-expires`.** RabbitMQ counts only consumers, `basic.get` and re-declares as use,
///   not publishes, so an expiring hold queue that a long-running process only published to
///   was deleted with the messages parked in it (their originals already acked). A hold queue
///   that can hold messages must not expire; there is one per group and delay bucket in use.
/// - **Quorum queue, `x-dead-letter-strategy: at-least-once`** (RabbitMQ ≥ 3.10): the broker
///   keeps an expired message in the hold queue until the group queue has confirmed it, so the
///   TTL hand-back survives a broker restart or a full target. The default strategy (and every
///   classic queue) dead-letters at-most-once. RabbitMQ requires `x-overflow: reject-publish`
///   with it (no length limit is set, so it never rejects).
pub fn hold_queue_args(queue: &str, ms: u64) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_str("quorum"));
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms as i64));
    args.insert("x-dead-letter-exchange".into(), long_str(""));
    args.insert("x-dead-letter-routing-key".into(), long_str(queue));
    args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
    args.insert("x-overflow".into(), long_str("reject-publish"));
    args
}

async fn open(config: &RabbitConfig) -> Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name("brokerkit".into());
    let timeout = Duration::from_millis(
        config
            .uri
            .query
            .connection_timeout
            .unwrap_or(crate::config::DEFAULT_CONNECTION_TIMEOUT_MS)
            .saturating_mul(3),
    );
    let connecting = Connection::connect_uri(config.uri.clone(), props);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(r) => r.map_err(|e| error::map(e, "connect", &config.redacted)),
        Err(_) => Err(error::new(
            ErrorKind::Unavailable,
            format!("no AMQP handshake with RabbitMQ within {timeout:?}"),
            "connect",
            &config.redacted,
        )),
    }
}

pub fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// A queue or exchange name as an AMQP short string (≤ 255 bytes).
pub fn short(name: &str, what: &str, link: &Link) -> Result<ShortString> {
    ShortString::try_new(name).map_err(|_| {
        error::new(
            ErrorKind::Config,
            format!(
                "the {what} name {name:?} is {} bytes; AMQP allows 255 (use shorter destination or group names)",
                name.len()
            ),
            "declare",
            link.address(),
        )
    })
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares the durable fanout exchange of `destination`.
pub async fn declare_exchange(link: &Link, channel: &Channel, destination: &str) -> Result<()> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let name = short(&names::exchange(destination), "exchange", link)?;
    bounded(
        "declare",
        link.address(),
        channel.exchange_declare(name, ExchangeKind::Fanout, options, FieldTable::default()),
    )
    .await
}

/// Declares the exchange, the durable queue of `group` and its binding; returns the queue
/// name. Non-DLQ group queues dead-letter broker-side drops to `<destination>.dlq`.
pub async fn declare_group(
    link: &Link,
    channel: &Channel,
    destination: &str,
    group: &str,
    with_dlx: bool,
) -> Result<String> {
    declare_exchange(link, channel, destination).await?;
    let queue = names::queue(destination, group);
    let mut args = FieldTable::default();
    if with_dlx {
        let dlq = brokerkit_core::dead_letter_destination(destination);
        args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&names::exchange(&dlq)),
        );
    }
    if link.config.single_active_consumer {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    if link.config.quorum_queues {
        args.insert("x-queue-type".into(), long_str("quorum"));
    }
    let q = short(&queue, "queue", link)?;
    let exchange = short(&names::exchange(destination), "exchange", link)?;
    bounded(
        "declare",
        link.address(),
        channel.queue_declare(q.clone(), durable_queue(), args),
    )
    .await?;
    bounded(
        "declare",
        link.address(),
        channel.queue_bind(
            q,
            exchange,
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    Ok(queue)
}

/// Why a confirmed publish did not land.
pub enum Refused {
    /// The broker returned it: nothing is bound (mandatory flag).
    Unroutable(String),
    /// Any other failure.
    Failed(brokerkit_core::Error),
}

/// A publish waiting for its confirm; holds the channel open until then.
pub struct Pending {
    confirm: lapin::PublisherConfirm,
    _channel: Channel,
}

/// Longest wait for a publisher confirm.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// A confirm-mode channel, re-created when it breaks.
pub struct Publisher {
    link: Arc<Link>,
    /// Held across channel creation, so concurrent callers share one channel.
    channel: tokio::sync::Mutex<Option<Channel>>,
    /// Declared on every new channel (the producer's exchange).
    exchange: Option<String>,
}

impl Publisher {
    /// A publisher; `exchange` is (re)declared whenever a channel is opened.
    pub fn new(link: Arc<Link>, exchange: Option<String>) -> Self {
        Publisher {
            link,
            channel: tokio::sync::Mutex::new(None),
            exchange,
        }
    }

    /// The confirm-mode channel, opening one if needed.
    pub async fn channel(&self, op: &'static str) -> Result<Channel> {
        let mut slot = self.channel.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(c.clone());
        }
        *slot = None;
        let ch = self.link.channel(op).await?;
        bounded(
            op,
            self.link.address(),
            ch.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        if let Some(dest) = &self.exchange {
            declare_exchange(&self.link, &ch, dest).await?;
        }
        *slot = Some(ch.clone());
        Ok(ch)
    }

    /// Publishes (mandatory) and waits for the broker's confirm.
    pub async fn publish(
        &self,
        op: &'static str,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
    ) -> std::result::Result<(), Refused> {
        let confirm = self
            .start(op, exchange, routing_key, payload, props)
            .await
            .map_err(Refused::Failed)?;
        self.finish(op, exchange, confirm).await
    }

    /// Sends the publish frame; the returned future resolves with the confirm.
    pub async fn start(
        &self,
        op: &'static str,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
    ) -> Result<Pending> {
        let ch = self.channel(op).await?;
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let ex = short(exchange, "exchange", &self.link)?;
        let rk = short(routing_key, "routing key", &self.link)?;
        let confirm = bounded(
            op,
            self.link.address(),
            ch.basic_publish(ex, rk, options, payload, props),
        )
        .await?;
        Ok(Pending {
            confirm,
            _channel: ch,
        })
    }

    /// Waits for a confirm from [`Publisher::start`], at most [`CONFIRM_TIMEOUT`]: a confirm
    /// that never comes (a blocked connection, a channel lost mid-publish) is a retryable
    /// `Timeout`, never a hang.
    pub async fn finish(
        &self,
        op: &'static str,
        exchange: &str,
        pending: Pending,
    ) -> std::result::Result<(), Refused> {
        let address = self.link.address();
        let Ok(confirmed) = tokio::time::timeout(CONFIRM_TIMEOUT, pending.confirm).await else {
            // Drop the channel: a fresh one is opened for the next publish.
            *self.channel.lock().await = None;
            return Err(Refused::Failed(error::new(
                ErrorKind::Timeout,
                "no publisher confirm from RabbitMQ in time; the message may or may not be stored",
                op,
                address,
            )));
        };
        match confirmed {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(returned))) => Err(Refused::Unroutable(format!(
                "RabbitMQ returned the message ({} {}): no queue is bound to exchange {exchange:?}",
                returned.reply_code, returned.reply_text
            ))),
            Ok(Confirmation::Nack(_)) => Err(Refused::Failed(error::new(
                ErrorKind::Unavailable,
                "RabbitMQ nacked the publish (it could not store the message); retry",
                op,
                address,
            ))),
            Ok(Confirmation::NotRequested) => Err(Refused::Failed(error::new(
                ErrorKind::Unexpected,
                "the channel is not in confirm mode",
                op,
                address,
            ))),
            Err(e) => Err(Refused::Failed(error::map(e, op, address))),
        }
    }
}

impl Refused {
    /// As an error of `kind` for unroutable messages.
    pub fn into_error(self, op: &'static str, address: &str) -> brokerkit_core::Error {
        match self {
            Refused::Unroutable(msg) => error::new(ErrorKind::NotFound, msg, op, address),
            Refused::Failed(e) => e,
        }
    }
}
