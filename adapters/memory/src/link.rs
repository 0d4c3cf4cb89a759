//! The shared state of one memory broker: its settings, destinations and closed flag. Imports
//! nothing else from this crate but the engine (the memory adapter's "client").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use brokerkit_core::{Capabilities, ClosedFlag, Result};
use tokio::sync::Notify;

use crate::config::MemoryConfig;
use crate::engine::destination::Destination;

/// Adapter name, as `Backend::name` gives it.
pub const NAME: &str = "memory";

/// State shared by a broker handle, its producers, consumers and deliveries.
pub(crate) struct Link {
    pub config: MemoryConfig,
    pub capabilities: Arc<Capabilities>,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    pub closed: ClosedFlag,
    pub shutdown: Notify,
}

impl Link {
    pub fn new(config: MemoryConfig) -> Arc<Self> {
        Arc::new(Link {
            capabilities: Arc::new(config.capabilities()),
            config,
            destinations: Mutex::new(HashMap::new()),
            closed: ClosedFlag::new(),
            shutdown: Notify::new(),
        })
    }

    /// The link of the broker named `name` in this process, made with `config` if new.
    pub fn shared(name: &str, config: MemoryConfig) -> Arc<Self> {
        static SHARED: OnceLock<Mutex<HashMap<String, Weak<Link>>>> = OnceLock::new();
        let mut shared = SHARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        shared.retain(|_, w| w.strong_count() > 0);
        if let Some(link) = shared.get(name).and_then(Weak::upgrade) {
            return link;
        }
        let link = Link::new(config);
        shared.insert(name.to_string(), Arc::downgrade(&link));
        link
    }

    /// The destination `name`, created on first use.
    pub fn destination(&self, name: &str) -> Arc<Destination> {
        let mut map = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Destination::new(
                    name,
                    self.config.capacity,
                    self.config.visibility_timeout,
                ))
            })
            .clone()
    }

    /// The destination `name` if it was used, without creating it.
    pub fn existing(&self, name: &str) -> Option<Arc<Destination>> {
        self.destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn check_open(&self, operation: &'static str) -> Result<()> {
        self.closed.check(operation)
    }

    /// Closes: wakes every waiting consumer and sender.
    pub fn close(&self) {
        self.closed.close();
        self.shutdown.notify_waiters();
        let dests: Vec<_> = self
            .destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for d in dests {
            d.wake_all();
        }
    }
}
