//! An in-process object store, for tests and `memory://` brokers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Bytes, Result};

use super::store::ObjectStore;

type Objects = Arc<Mutex<HashMap<String, Bytes>>>;

/// Objects in memory. Stores made by [`MemoryStore::named`] (or `memory://name`) with the
/// same name share their objects within the process, like `memory://` brokers do.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    name: String,
    objects: Objects,
    max_object_bytes: u64,
}

fn named_stores() -> &'static Mutex<HashMap<String, Objects>> {
    static STORES: OnceLock<Mutex<HashMap<String, Objects>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl MemoryStore {
    /// A private store.
    pub fn new() -> Self {
        MemoryStore {
            name: "private".into(),
            objects: Objects::default(),
            max_object_bytes: 1 << 30,
        }
    }

    /// The process-wide store called `name`.
    pub fn named(name: &str) -> Self {
        let objects = named_stores()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        MemoryStore {
            name: name.to_string(),
            objects,
            max_object_bytes: 1 << 30,
        }
    }

    /// From `memory://name` (no query keys; `memory://` is the store called `default`).
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        url.params(&[])?;
        let name = url.expose().host_str().unwrap_or("default");
        Ok(MemoryStore::named(name))
    }

    /// Objects held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn bucket(&self) -> &str {
        &self.name
    }

    fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    async fn put(&self, key: &str, bytes: Bytes, _content_type: Option<&str>) -> Result<()> {
        self.lock().insert(key.to_string(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }
}
