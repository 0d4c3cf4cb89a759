//! Pipelined single sends: a [`SendBatcher`] gathers messages sent one at a time, from one
//! task or many, into batches, so a service that publishes one event per request gets batch
//! throughput without writing batching itself.
//!
//! Natural batching, as in log brokers' producers: while a batch is with the broker, new messages
//! queue; the next batch takes whatever queued (up to the broker's `max_batch`), after an
//! optional `linger`. Under light load each message goes alone at once; under heavy load
//! batches fill up. Each message still gets its own result: the broker's confirmation, or its
//! own error out of the batch report ([`brokerkit_core::BatchError`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{BatchError, Error, ErrorKind, Message, Result};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::Producer;

/// Settings of a [`SendBatcher`].
#[derive(Debug, Clone)]
pub struct BatcherOptions {
    /// Most messages in one batch; clamped to the broker's `max_batch` by the send path,
    /// which splits larger batches. Default 256.
    pub max_batch: usize,
    /// How long a batch waits for more messages after its first one. Default 0: take what is
    /// queued, so latency does not grow under light load.
    pub linger: Duration,
    /// Messages fed but not yet confirmed; `feed` waits (backpressure) above it. Default 4096.
    pub max_in_flight: usize,
    /// Batches with the broker at once. Default 1, which keeps the order of messages as fed;
    /// above 1 batches may overtake each other (ordering keys included).
    pub concurrent_batches: usize,
}

impl Default for BatcherOptions {
    fn default() -> Self {
        BatcherOptions {
            max_batch: 256,
            linger: Duration::ZERO,
            max_in_flight: 4096,
            concurrent_batches: 1,
        }
    }
}

impl BatcherOptions {
    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config(format!("SendBatcher: {what}")));
        if self.max_batch == 0 || self.max_batch > 100_000 {
            return bad("max_batch must be 1 to 100000");
        }
        if self.max_in_flight == 0 || self.max_in_flight > Semaphore::MAX_PERMITS / 2 {
            return bad("max_in_flight must be at least 1 and at most 2^60");
        }
        if self.concurrent_batches == 0 || self.concurrent_batches > 1024 {
            return bad("concurrent_batches must be 1 to 1024");
        }
        if self.linger > Duration::from_secs(60) {
            return bad("linger must be at most 60 s");
        }
        Ok(())
    }
}

/// The confirmation of one fed message: resolves once the broker has taken it, or with its
/// own error.
#[must_use = "a receipt says whether the message was sent; await it or call flush"]
pub struct Receipt(oneshot::Receiver<Result<()>>);

impl std::future::Future for Receipt {
    type Output = Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Closed,
                    "the send batcher stopped before confirming this message",
                ))
            })
        })
    }
}

struct Item {
    message: Message,
    done: oneshot::Sender<Result<()>>,
    _permit: OwnedSemaphorePermit,
}

/// Gathers single sends into batches for one producer. Cheap to clone; the batches are sent
/// by a background task that ends when every clone is dropped (after sending what was fed).
///
/// ```no_run
/// # async fn run(broker: brokerkit::Broker) -> brokerkit::Result<()> {
/// use brokerkit::{BatcherOptions, Message};
/// let batcher = broker.producer("orders").build().await?.batcher(BatcherOptions::default())?;
/// // One task, many sends in flight: feed returns at once with a receipt.
/// let mut receipts = Vec::new();
/// for i in 0..1000 {
///     receipts.push(batcher.feed(Message::new(format!("order {i}"))).await?);
/// }
/// for r in receipts {
///     r.await?; // each message's own confirmation
/// }
/// // Or from many tasks, each awaiting its own confirmation:
/// batcher.send(Message::new("one more")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SendBatcher {
    queue: mpsc::UnboundedSender<Item>,
    window: Arc<Semaphore>,
    max_in_flight: usize,
}

impl SendBatcher {
    pub(crate) fn start(producer: Producer, options: BatcherOptions) -> Result<Self> {
        options.check()?;
        let (queue, rx) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(options.max_in_flight));
        tokio::spawn(run(producer, options.clone(), rx));
        Ok(SendBatcher {
            queue,
            window,
            max_in_flight: options.max_in_flight,
        })
    }

    /// Queues `message` and returns its [`Receipt`] without waiting for the broker. Waits only
    /// while `max_in_flight` messages are unconfirmed.
    pub async fn feed(&self, message: Message) -> Result<Receipt> {
        let permit = self
            .window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::new(ErrorKind::Closed, "the send batcher is closed"))?;
        let (done, receipt) = oneshot::channel();
        self.queue
            .send(Item {
                message,
                done,
                _permit: permit,
            })
            .map_err(|_| Error::new(ErrorKind::Closed, "the send batcher is closed"))?;
        Ok(Receipt(receipt))
    }

    /// Sends `message` in the next batch and returns once the broker has taken it.
    pub async fn send(&self, message: Message) -> Result<()> {
        self.feed(message).await?.await
    }

    /// Waits until every message fed so far (by any clone) is confirmed or failed. Each
    /// message's own result is in its receipt.
    pub async fn flush(&self) -> Result<()> {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        let _everything = self
            .window
            .acquire_many(all)
            .await
            .map_err(|_| Error::new(ErrorKind::Closed, "the send batcher is closed"))?;
        Ok(())
    }
}

async fn run(producer: Producer, options: BatcherOptions, mut rx: mpsc::UnboundedReceiver<Item>) {
    let slots = Arc::new(Semaphore::new(options.concurrent_batches));
    let mut pending: VecDeque<Item> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(item) => pending.push_back(item),
                None => break,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if !options.linger.is_zero() && pending.len() < options.max_batch {
            let deadline = tokio::time::Instant::now() + options.linger;
            while pending.len() < options.max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(item)) => pending.push_back(item),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        while pending.len() < options.max_batch {
            match rx.try_recv() {
                Ok(item) => pending.push_back(item),
                Err(_) => break,
            }
        }
        let take = pending.len().min(options.max_batch);
        let batch: Vec<Item> = pending.drain(..take).collect();
        let producer = producer.clone();
        if options.concurrent_batches == 1 {
            send(&producer, batch).await;
            drop(slot);
        } else {
            tokio::spawn(async move {
                send(&producer, batch).await;
                drop(slot);
            });
        }
    }
    // Every sender is gone: wait for batches still with the broker.
    let _ = slots.acquire_many(options.concurrent_batches as u32).await;
}

/// Sends one batch and answers each item. A batch refused before any I/O (a message too
/// large, a bad header, a schema violation) is retried one message at a time, so only the
/// offending messages fail.
async fn send(producer: &Producer, items: Vec<Item>) {
    let (messages, answers): (Vec<Message>, Vec<_>) = items
        .into_iter()
        .map(|i| (i.message, (i.done, i._permit)))
        .unzip();
    if messages.len() == 1 {
        let result = producer
            .send(messages.into_iter().next().expect("one message"))
            .await;
        answer(answers.into_iter().next().expect("one answer").0, result);
        return;
    }
    let copies = refused_before_io_copies(&messages);
    match producer.send_batch(messages).await {
        Ok(()) => {
            for (done, _) in answers {
                answer(done, Ok(()));
            }
        }
        Err(e) => match BatchError::take(e) {
            Ok(report) => {
                let mut failed: Vec<Option<Error>> = (0..answers.len()).map(|_| None).collect();
                for (i, err) in report.failed {
                    if let Some(slot) = failed.get_mut(i) {
                        *slot = Some(err);
                    }
                }
                for i in report.not_attempted {
                    if let Some(slot @ None) = failed.get_mut(i) {
                        *slot = Some(
                            Error::new(
                                ErrorKind::Unavailable,
                                "not attempted: an earlier entry of its batch failed",
                            )
                            .retryable(true),
                        );
                    }
                }
                for ((done, _), err) in answers.into_iter().zip(failed) {
                    answer(done, err.map_or(Ok(()), Err));
                }
            }
            Err(e) if refused_before_io(&e) => {
                for ((done, permit), m) in answers.into_iter().zip(copies.unwrap_or_default()) {
                    let result = producer.send(m).await;
                    answer(done, result);
                    drop(permit);
                }
            }
            Err(e) => {
                let mut first = Some(e);
                for (done, _) in answers {
                    let err = match first.take() {
                        Some(e) => e,
                        None => {
                            Error::new(ErrorKind::Unavailable, "its batch failed").retryable(true)
                        }
                    };
                    answer(done, Err(err));
                }
            }
        },
    }
}

fn answer(done: oneshot::Sender<Result<()>>, result: Result<()>) {
    // The caller may have dropped its receipt; the message was still sent.
    let _ = done.send(result);
}

/// Kinds the send path raises before any I/O, for the whole batch.
fn refused_before_io(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PayloadTooLarge
            | ErrorKind::InvalidHeader
            | ErrorKind::Unsupported
            | ErrorKind::Validation
            | ErrorKind::Config
    )
}

/// Copies kept to resend one at a time if the whole batch is refused before I/O (cheap:
/// payloads are `Bytes` and headers copy-on-write).
fn refused_before_io_copies(messages: &[Message]) -> Option<Vec<Message>> {
    Some(messages.to_vec())
}
