//! The schemas already published for a destination: checked-in files named
//! `<event type>.v<version>.json` (as [`crate::Event::schema_file_name`] writes them), read
//! once, by event type and version. The compatibility check on send compares against them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use brokerkit_core::{Error, Result};
use serde_json::Value;

/// One published schema.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedSchema {
    /// The JSON Schema.
    pub schema: Value,
    /// Where it came from (a file path, or `<name> v<version>` when added in code).
    pub origin: String,
}

/// Published schemas by event type and version. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct PublishedSchemas {
    by_type: HashMap<String, BTreeMap<u32, PublishedSchema>>,
}

impl PublishedSchemas {
    /// None.
    pub fn new() -> Self {
        PublishedSchemas::default()
    }

    /// Reads every `<type>.v<version>.json` in `dir` (other files are ignored). An unreadable
    /// directory or a file that is not JSON is a `Config` error naming it.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::config(format!(
                "cannot read schema directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut out = PublishedSchemas::new();
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Some((name, version)) = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(parse_file_name)
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(format!("cannot read schema file {}: {e}", path.display()))
            })?;
            let schema: Value = serde_json::from_str(&text).map_err(|e| {
                Error::config(format!("schema file {} is not JSON: {e}", path.display()))
            })?;
            out.insert(name, version, schema, path.display().to_string());
        }
        Ok(out)
    }

    /// Adds (or replaces) the schema of `event_type` version `version`.
    pub fn with(mut self, event_type: impl Into<String>, version: u32, schema: Value) -> Self {
        let event_type = event_type.into();
        let origin = format!("{event_type} v{version}");
        self.insert(event_type, version, schema, origin);
        self
    }

    fn insert(&mut self, name: String, version: u32, schema: Value, origin: String) {
        self.by_type
            .entry(name)
            .or_default()
            .insert(version, PublishedSchema { schema, origin });
    }

    /// The published versions of `event_type`, oldest first.
    pub fn versions(&self, event_type: &str) -> impl Iterator<Item = (u32, &PublishedSchema)> {
        self.by_type
            .get(event_type)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, s)| (*v, s)))
    }

    /// Every event type, sorted.
    pub fn event_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// `order.placed.v12.json` → (`order.placed`, 12).
fn parse_file_name(file: &str) -> Option<(String, u32)> {
    let stem = file.strip_suffix(".json")?;
    let (name, version) = stem.rsplit_once(".v")?;
    let version: u32 = version.parse().ok()?;
    (!name.is_empty()).then(|| (name.to_string(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse() {
        assert_eq!(
            parse_file_name("order.placed.v12.json"),
            Some(("order.placed".into(), 12))
        );
        assert_eq!(parse_file_name("order.placed.json"), None);
        assert_eq!(parse_file_name("order.placed.vx.json"), None);
        assert_eq!(parse_file_name(".v1.json"), None);
        assert_eq!(parse_file_name("README.md"), None);
    }
}
