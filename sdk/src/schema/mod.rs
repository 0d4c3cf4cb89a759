//! Event contracts as JSON Schema: compiled validators (cached), violations as JSON pointers,
//! checked-in schema files, and compatibility between versions.

pub(crate) mod cache;
pub mod compat;
pub mod files;
pub mod published;

use std::path::Path;

use brokerkit_core::{Error, ErrorKind, Result, ValidationIssue};
use serde_json::Value;

/// Most violations reported per payload.
const MAX_ISSUES: usize = 20;

/// A compiled JSON Schema. Build it once and share it (it is `Send + Sync`).
pub struct SchemaValidator {
    name: String,
    schema: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SchemaValidator {
    /// Compiles `schema`; `name` appears in errors.
    pub fn new(name: impl Into<String>, schema: Value) -> Result<Self> {
        let name = name.into();
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            Error::config(format!("schema {name:?} is not a valid JSON Schema: {e}"))
        })?;
        Ok(SchemaValidator {
            name,
            schema,
            validator,
        })
    }

    /// Loads and compiles a schema file (a contract shared with services in other languages).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read schema file {}: {e}", path.display()))
        })?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| {
            Error::config(format!("schema file {} is not JSON: {e}", path.display()))
        })?;
        SchemaValidator::new(path.display().to_string(), schema)
    }

    /// The schema's name (event type or file path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema document.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every violation of `value` (at most 20), each a JSON pointer and a reason.
    pub fn violations(&self, value: &Value) -> Vec<ValidationIssue> {
        if self.validator.is_valid(value) {
            return Vec::new();
        }
        self.validator
            .iter_errors(value)
            .take(MAX_ISSUES)
            .map(|e| ValidationIssue {
                pointer: e.instance_path().to_string(),
                reason: e.to_string(),
            })
            .collect()
    }

    /// `Ok` if `value` is valid; otherwise a [`ErrorKind::Validation`] error listing each
    /// violation.
    pub fn check(&self, value: &Value) -> Result<()> {
        let issues = self.violations(value);
        if issues.is_empty() {
            return Ok(());
        }
        Err(validation_error(&self.name, &issues))
    }
}

/// The error for schema violations: `Validation`, not retryable, one line per violation.
pub fn validation_error(name: &str, issues: &[ValidationIssue]) -> Error {
    let list: Vec<String> = issues
        .iter()
        .map(|i| {
            let at = if i.pointer.is_empty() {
                "/"
            } else {
                &i.pointer
            };
            format!("{at}: {}", i.reason)
        })
        .collect();
    Error::new(
        ErrorKind::Validation,
        format!(
            "payload violates schema {name:?} ({} violation(s)): {}",
            issues.len(),
            list.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_name_pointer_and_reason() {
        let v = SchemaValidator::new(
            "t",
            json!({"type":"object","required":["id","total"],
                   "properties":{"id":{"type":"string"},"total":{"type":"integer","minimum":0}}}),
        )
        .unwrap();
        assert!(v.check(&json!({"id":"a","total":1})).is_ok());
        let issues = v.violations(&json!({"id": 5, "total": -1}));
        let pointers: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert!(
            pointers.contains(&"/id") && pointers.contains(&"/total"),
            "{issues:?}"
        );
        let e = v.check(&json!({"total": 1})).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert!(e.message().contains("\"id\" is a required property"), "{e}");
    }

    #[test]
    fn a_bad_schema_is_a_config_error() {
        let e = SchemaValidator::new("bad", json!({"type": 12})).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
