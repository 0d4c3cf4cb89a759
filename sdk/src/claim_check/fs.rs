//! A directory as the object store, for local development and single-host services.

use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Bytes, Error, ErrorKind, Result};

use super::store::{check_key, ObjectStore};

/// Objects as files under a root directory (`file:///path`). Writes go to a temporary file
/// that is renamed into place, so a reader never sees half an object.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    root_text: String,
    max_object_bytes: u64,
}

impl FsStore {
    /// A store under `root` (created on the first write). Objects up to 5 GiB.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        FsStore {
            root_text: root.display().to_string(),
            root,
            max_object_bytes: 5 << 30,
        }
    }

    /// Largest object accepted (default 5 GiB, as S3's single write).
    pub fn with_max_object_bytes(mut self, max: u64) -> Self {
        self.max_object_bytes = max;
        self
    }

    /// From `file:///path` (no query keys).
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        url.params(&[])?;
        let path = url.expose().path();
        if path.is_empty() || path == "/" {
            return Err(Error::config(
                "file:// store needs a directory, e.g. file:///var/lib/brokerkit-payloads",
            ));
        }
        let path = brokerkit_core::config::percent_decode(path)
            .ok_or_else(|| Error::config("file:// store path is not valid UTF-8"))?;
        Ok(FsStore::new(path))
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        IoKind::PermissionDenied => ErrorKind::PermissionDenied,
        IoKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Unavailable,
    };
    Error::new(
        kind,
        format!("claim-check file store: {what} {}: {e}", path.display()),
    )
    .with_source(e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!("file store task failed: {e}"),
        )
    })?
}

#[async_trait]
impl ObjectStore for FsStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn bucket(&self) -> &str {
        &self.root_text
    }

    fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    async fn put(&self, key: &str, bytes: Bytes, _content_type: Option<&str>) -> Result<()> {
        let path = self.path(key)?;
        blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
            }
            let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&tmp, &bytes).map_err(|e| io_error("cannot write", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_error("cannot rename into", &path, e)
            })
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == IoKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read", &path, e)),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot delete", &path, e)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_reads_deletes_and_refuses_escaping_keys() {
        let dir = std::env::temp_dir().join(format!("bk-fs-{}", uuid::Uuid::new_v4().simple()));
        let store = FsStore::new(&dir);
        store
            .put("a/b/c.bin", Bytes::from_static(b"payload"), None)
            .await
            .unwrap();
        assert_eq!(
            store.get("a/b/c.bin").await.unwrap().as_deref(),
            Some(&b"payload"[..])
        );
        store.delete("a/b/c.bin").await.unwrap();
        assert_eq!(store.get("a/b/c.bin").await.unwrap(), None);
        store.delete("a/b/c.bin").await.unwrap();
        for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", ""] {
            assert_eq!(
                store.get(bad).await.unwrap_err().kind(),
                ErrorKind::Decode,
                "{bad:?}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
