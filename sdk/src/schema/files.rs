//! Checked-in schema files: the contract other services (and other languages) read. A test
//! calls [`check_schema_file`] so that a Rust type whose schema drifts from its file fails CI.

use std::path::Path;

use crate::event::Event;
use crate::schema::cache::schema_value;

/// Set to `1` to (re)write schema files instead of checking them.
pub const UPDATE_ENV: &str = "BROKERKIT_UPDATE_SCHEMAS";

/// Compares `E`'s generated schema with `dir/<name>.v<version>.json`.
///
/// With `BROKERKIT_UPDATE_SCHEMAS=1` it writes the file instead. On drift or a missing file
/// the error says how to regenerate, using `regenerate` (the command to run) in the text.
pub fn check_schema_file<E: Event>(dir: &Path, regenerate: &str) -> Result<(), String> {
    if std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1") {
        let path = dir.join(E::schema_file_name());
        let mut pretty =
            serde_json::to_string_pretty(&schema_value::<E>()).map_err(|e| e.to_string())?;
        pretty.push('\n');
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        return std::fs::write(&path, pretty)
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    compare_schema_file::<E>(dir, regenerate)
}

/// Like [`check_schema_file`], but never writes.
pub fn compare_schema_file<E: Event>(dir: &Path, regenerate: &str) -> Result<(), String> {
    let path = dir.join(E::schema_file_name());
    let generated = schema_value::<E>();
    let how = format!("regenerate with `{UPDATE_ENV}=1 {regenerate}` and commit the file");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "schema file {} for {} v{} is missing ({e}); {how}",
            path.display(),
            E::NAME,
            E::VERSION
        )
    })?;
    let on_disk: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("schema file {} is not JSON ({e}); {how}", path.display()))?;
    if on_disk != generated {
        let report = super::compat::check(&on_disk, &generated);
        return Err(format!(
            "the schema of {} v{} drifted from {}; {how}. If the change is breaking, bump the \
             version instead. Compatibility of the change: {report}",
            E::NAME,
            E::VERSION,
            path.display()
        ));
    }
    Ok(())
}
