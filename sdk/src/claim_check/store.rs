//! The object store a claim-check writes payloads to: a small trait, and stores chosen by URL.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Bytes, Error, Result};

/// Where claim-checked payloads live. Three operations; implement it for any other store
/// (GCS, Azure, …) and pass it to [`super::ClaimCheck::new`].
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// The store kind written into references: `s3`, `file`, `memory`.
    fn kind(&self) -> &'static str;
    /// The bucket (S3), root directory (file) or name (memory).
    fn bucket(&self) -> &str;
    /// Largest object this store takes in one write, in bytes. With claim-check on, this is
    /// a producer's effective `max_payload_bytes`.
    fn max_object_bytes(&self) -> u64;
    /// Writes `bytes` under `key` (replacing what is there).
    async fn put(&self, key: &str, bytes: Bytes, content_type: Option<&str>) -> Result<()>;
    /// Reads `key`; `Ok(None)` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Deletes `key`; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// Connects to the object store at `url`:
///
/// | URL | store |
/// |---|---|
/// | `file:///var/lib/payloads` | a directory (local development; [`super::FsStore`]) |
/// | `memory://name` | in-process, shared by every store of that name ([`super::MemoryStore`]) |
/// | `s3://bucket?endpoint=http://127.0.0.1:4566&region=us-east-1` | S3 or any S3-compatible service (feature `claim-check-s3`; keys in `S3Store`) |
pub async fn connect_object_store(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let parsed = BrokerUrl::parse(url)?;
    match parsed.scheme() {
        "file" => Ok(Arc::new(super::FsStore::from_url(&parsed)?)),
        "memory" => Ok(Arc::new(super::MemoryStore::from_url(&parsed)?)),
        #[cfg(feature = "claim-check-s3")]
        "s3" => Ok(Arc::new(super::S3Store::connect(&parsed).await?)),
        #[cfg(not(feature = "claim-check-s3"))]
        "s3" => Err(Error::config(
            "the s3 object store needs the `claim-check-s3` feature of the brokerkit crate",
        )),
        other => Err(Error::config(format!(
            "no claim-check object store for scheme {other:?} in {}; use file://, memory:// or s3://",
            parsed.redacted()
        ))),
    }
}

/// Checks that `key` is a relative path of plain segments (no `..`, no empty segment), so a
/// reference from a message cannot point a file store outside its directory.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(super::error::ClaimCheckError::new(
            super::error::Problem::BadReference,
            format!("object key {key:?} is not a relative path of letters, digits, '-', '_', '.'"),
        )
        .into_error())
    }
}
