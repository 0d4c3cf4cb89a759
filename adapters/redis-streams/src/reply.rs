//! Redis replies to the shapes the adapter reads: entries (`[[id, [field, value, …]], …]`),
//! arrays and text.

use brokerkit_core::Result;
use redis::Value;

use crate::error::unexpected;

/// The fields of one entry, as Redis gives them.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One stream entry.
pub(crate) struct Entry {
    /// Its id, `<ms>-<seq>`.
    pub id: String,
    /// Its fields.
    pub fields: Fields,
}

pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn array(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        _ => Err(unexpected(what)),
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// `[[id, [field, value, …]], …]`; entries whose fields are gone (deleted) are skipped.
pub(crate) fn entries_of(v: Value) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in array(v, "stream entries")? {
        let mut parts = array(e, "a stream entry")?.into_iter();
        let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
            continue;
        };
        let id = text(&id).ok_or_else(|| unexpected("an entry id"))?;
        let Value::Array(flat) = fields else {
            continue;
        };
        let mut fields = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(n), Some(v)) = (it.next(), it.next()) {
            if let (Some(n), Some(v)) = (bytes(n), bytes(v)) {
                fields.push((n, v));
            }
        }
        out.push(Entry { id, fields });
    }
    Ok(out)
}
