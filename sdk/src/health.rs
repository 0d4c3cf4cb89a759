//! Health without I/O, cheap enough for a readiness probe: what the broker handle and the
//! handlers running on it have seen.
//!
//! ```
//! # async fn demo() -> brokerkit::Result<()> {
//! let broker = brokerkit::Broker::connect("memory://").await?;
//! broker.producer("orders").build().await?.send(brokerkit::Message::new("{}")).await?;
//! let health = broker.health();
//! assert!(health.last_round_trip.is_some() && !health.closed);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::handler::HandlerHealth;

/// Something whose health a broker handle reports (a running handler).
pub(crate) trait Reporting: Send + Sync {
    fn health(&self) -> HandlerHealth;
}

/// What one broker handle (and its clones) shares for [`crate::Broker::health`].
#[derive(Default)]
pub(crate) struct Stats {
    last_ok_ms: AtomicU64,
    consumers: AtomicUsize,
    closed: AtomicBool,
    handlers: Mutex<Vec<Weak<dyn Reporting>>>,
}

impl Stats {
    /// A broker round trip succeeded (a send was confirmed, a delivery arrived).
    ///
    /// Called per send and per delivery, from every task: the time comes from the coarse
    /// clock and is stored only when it changed, so senders and consumers on other threads
    /// do not take the cache line from each other on every message.
    pub fn round_trip(&self) {
        let ms = crate::clock::coarse_unix_ms();
        if self.last_ok_ms.load(Ordering::Relaxed) != ms {
            self.last_ok_ms.store(ms, Ordering::Relaxed);
        }
    }

    pub fn consumer_opened(&self) {
        self.consumers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn consumer_closed(&self) {
        self.consumers.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn register(&self, handler: Weak<dyn Reporting>) {
        let mut h = self.handlers.lock().unwrap_or_else(|p| p.into_inner());
        h.retain(|w| w.strong_count() > 0);
        h.push(handler);
    }

    pub fn snapshot(&self, adapter: &'static str) -> Health {
        let ms = self.last_ok_ms.load(Ordering::Relaxed);
        let handlers: Vec<HandlerHealth> = self
            .handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .map(|h| h.health())
            .collect();
        Health {
            adapter,
            closed: self.closed.load(Ordering::Relaxed),
            last_round_trip: (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms)),
            consumers_running: self.consumers.load(Ordering::Relaxed),
            handlers_running: handlers.len(),
            handlers_in_flight: handlers.iter().map(|h| h.in_flight).sum(),
            handlers_stuck: handlers.iter().map(|h| h.stuck).sum(),
        }
    }
}

/// A broker handle's health (see [`crate::Broker::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The adapter ([`brokerkit_core::Backend::name`]), e.g. `memory`.
    pub adapter: &'static str,
    /// `Broker::close` was called.
    pub closed: bool,
    /// When a send was last confirmed or a delivery last arrived; `None`: not yet.
    pub last_round_trip: Option<SystemTime>,
    /// Consumers open now (raw ones and those of running handlers).
    pub consumers_running: usize,
    /// Handlers running now.
    pub handlers_running: usize,
    /// Deliveries being handled now, over all handlers.
    pub handlers_in_flight: usize,
    /// Deliveries whose handler has run longer than its lease (the broker's, or 30 s where
    /// the broker has none): a hung handler shows here.
    pub handlers_stuck: usize,
}

impl Health {
    /// Ready: not closed, nothing stuck, and a round trip within `max_age` (when there has
    /// been traffic at all).
    pub fn is_ready(&self, max_age: Duration) -> bool {
        let fresh = self.last_round_trip.is_none_or(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age <= max_age)
        });
        !self.closed && self.handlers_stuck == 0 && fresh
    }
}
