//! Compatibility between two versions of a JSON Schema.
//!
//! - **Backward**: a consumer on the new schema reads events written with the old one.
//! - **Forward**: a consumer on the old schema reads events written with the new one.
//!
//! Checked: required fields, types (an integer is a number), enum values, closed objects
//! (`additionalProperties: false`), recursively through properties and array items, following
//! local `$ref`s. Not checked: numeric and string bounds, patterns, `oneOf` branches.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// One breaking change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingChange {
    /// Where in the payload, as a JSON pointer (e.g. `/customer/email`).
    pub pointer: String,
    /// What changed, e.g. "required field `email` added".
    pub change: String,
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.change)
    }
}

/// The result of [`check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompatReport {
    /// What stops a new consumer from reading old events.
    pub backward: Vec<BreakingChange>,
    /// What stops an old consumer from reading new events.
    pub forward: Vec<BreakingChange>,
}

impl CompatReport {
    /// New consumers read old events.
    pub fn is_backward_compatible(&self) -> bool {
        self.backward.is_empty()
    }
    /// Old consumers read new events.
    pub fn is_forward_compatible(&self) -> bool {
        self.forward.is_empty()
    }
}

impl fmt::Display for CompatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[BreakingChange]| {
            if v.is_empty() {
                "compatible".to_string()
            } else {
                v.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        write!(
            f,
            "backward: {}, forward: {}",
            list(&self.backward),
            list(&self.forward)
        )
    }
}

/// Compares `old` with `new`.
pub fn check(old: &Value, new: &Value) -> CompatReport {
    let mut backward = Vec::new();
    Walk {
        reader_root: new,
        writer_root: old,
        reader_is_new: true,
        out: &mut backward,
    }
    .compare(new, old, "", 0);
    let mut forward = Vec::new();
    Walk {
        reader_root: old,
        writer_root: new,
        reader_is_new: false,
        out: &mut forward,
    }
    .compare(old, new, "", 0);
    CompatReport { backward, forward }
}

/// Finds data the writer's schema allows and the reader's schema rejects.
struct Walk<'a> {
    reader_root: &'a Value,
    writer_root: &'a Value,
    reader_is_new: bool,
    out: &'a mut Vec<BreakingChange>,
}

const MAX_DEPTH: usize = 32;

fn resolve<'v>(root: &'v Value, mut s: &'v Value) -> &'v Value {
    for _ in 0..MAX_DEPTH {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) else {
            break;
        };
        s = target;
    }
    s
}

/// The JSON types a schema allows (`None`: any), `anyOf` branches merged.
fn types(root: &Value, s: &Value) -> Option<BTreeSet<String>> {
    let s = resolve(root, s);
    if let Some(t) = s.get("type") {
        let set: BTreeSet<String> = match t {
            Value::String(one) => [one.clone()].into(),
            Value::Array(many) => many
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => return None,
        };
        return Some(set);
    }
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        let mut all = BTreeSet::new();
        for b in branches {
            all.extend(types(root, b)?);
        }
        return Some(all);
    }
    if let Some(c) = s.get("const") {
        return Some([json_type(c)].into());
    }
    None
}

fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_string()
}

fn accepts(reader: &BTreeSet<String>, t: &str) -> bool {
    reader.contains(t) || (t == "integer" && reader.contains("number"))
}

/// The non-null branch of an `anyOf` (how schemars writes `Option<Struct>`).
fn object_branch<'v>(root: &'v Value, s: &'v Value) -> &'v Value {
    let s = resolve(root, s);
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = branches
            .iter()
            .map(|b| resolve(root, b))
            .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [one] = non_null.as_slice() {
            return one;
        }
    }
    s
}

fn string_set(s: &Value, key: &str) -> BTreeSet<String> {
    s.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Walk<'_> {
    fn push(&mut self, pointer: &str, change: String) {
        self.out.push(BreakingChange {
            pointer: pointer.to_string(),
            change,
        });
    }

    fn compare(&mut self, reader: &Value, writer: &Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let (rr, wr) = (self.reader_root, self.writer_root);
        self.compare_types(reader, writer, at);
        self.compare_enums(resolve(rr, reader), resolve(wr, writer), at);
        let (r, w) = (object_branch(rr, reader), object_branch(wr, writer));
        self.compare_objects(r, w, at, depth);
        if let (Some(ri), Some(wi)) = (r.get("items"), w.get("items")) {
            self.compare(ri, wi, &format!("{at}/*"), depth + 1);
        }
    }

    fn compare_types(&mut self, reader: &Value, writer: &Value, at: &str) {
        let Some(rt) = types(self.reader_root, reader) else {
            return;
        };
        let wt = types(self.writer_root, writer);
        let breaks = match &wt {
            None => true,
            Some(wt) => wt.iter().any(|t| !accepts(&rt, t)),
        };
        if breaks {
            let show = |t: &Option<BTreeSet<String>>| match t {
                None => "any".to_string(),
                Some(s) => s.iter().cloned().collect::<Vec<_>>().join("|"),
            };
            let (old, new) = if self.reader_is_new {
                (show(&wt), show(&Some(rt)))
            } else {
                (show(&Some(rt)), show(&wt))
            };
            self.push(at, format!("type changed from {old} to {new}"));
        }
    }

    fn compare_enums(&mut self, reader: &Value, writer: &Value, at: &str) {
        let Some(r) = reader.get("enum").and_then(Value::as_array) else {
            return;
        };
        let Some(w) = writer.get("enum").and_then(Value::as_array) else {
            if writer.get("type").is_some() {
                let verb = if self.reader_is_new {
                    "added"
                } else {
                    "removed"
                };
                self.push(at, format!("enum restriction {verb}"));
            }
            return;
        };
        for v in w.iter().filter(|v| !r.contains(v)) {
            let verb = if self.reader_is_new {
                "removed"
            } else {
                "added"
            };
            self.push(at, format!("enum value {v} {verb}"));
        }
    }

    fn compare_objects(&mut self, r: &Value, w: &Value, at: &str, depth: usize) {
        let empty = serde_json::Map::new();
        let rp = r
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let wp = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let (rreq, wreq) = (string_set(r, "required"), string_set(w, "required"));
        for field in rreq.difference(&wreq) {
            let change = if self.reader_is_new {
                format!("required field `{field}` added")
            } else if wp.contains_key(field) {
                format!("field `{field}` made optional")
            } else {
                format!("required field `{field}` removed")
            };
            self.push(&format!("{at}/{field}"), change);
        }
        let closed = r.get("additionalProperties") == Some(&Value::Bool(false));
        for (field, ws) in wp {
            let path = format!("{at}/{field}");
            match rp.get(field) {
                Some(rs) => self.compare(rs, ws, &path, depth + 1),
                None if closed => {
                    let change = if self.reader_is_new {
                        format!("field `{field}` removed while unknown fields are rejected")
                    } else {
                        format!("field `{field}` added while the old schema rejects unknown fields")
                    };
                    self.push(&path, change);
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(props: Value, required: &[&str]) -> Value {
        json!({"type": "object", "properties": props, "required": required})
    }

    #[test]
    fn identical_and_optional_additions_are_compatible() {
        let old = obj(json!({"id": {"type": "string"}}), &["id"]);
        assert_eq!(check(&old, &old), CompatReport::default());
        let new = obj(
            json!({"id": {"type": "string"}, "note": {"type": ["string", "null"]}}),
            &["id"],
        );
        let r = check(&old, &new);
        assert!(
            r.is_backward_compatible() && r.is_forward_compatible(),
            "{r}"
        );
    }

    #[test]
    fn required_field_added_breaks_backward() {
        let old = obj(json!({"id": {"type": "string"}}), &["id"]);
        let new = obj(
            json!({"id": {"type": "string"}, "email": {"type": "string"}}),
            &["id", "email"],
        );
        let r = check(&old, &new);
        assert_eq!(
            r.backward[0].to_string(),
            "/email: required field `email` added"
        );
        assert!(r.is_forward_compatible(), "{r}");
    }

    #[test]
    fn required_field_removed_breaks_forward() {
        let old = obj(
            json!({"id": {"type": "string"}, "email": {"type": "string"}}),
            &["id", "email"],
        );
        let new = obj(json!({"id": {"type": "string"}}), &["id"]);
        let r = check(&old, &new);
        assert!(r.is_backward_compatible(), "{r}");
        assert_eq!(
            r.forward[0].to_string(),
            "/email: required field `email` removed"
        );
    }

    #[test]
    fn type_change_breaks_both_ways_and_widening_only_one() {
        let old = obj(json!({"total": {"type": "integer"}}), &["total"]);
        let new = obj(json!({"total": {"type": "string"}}), &["total"]);
        let r = check(&old, &new);
        assert_eq!(r.backward[0].change, "type changed from integer to string");
        assert_eq!(r.forward[0].change, "type changed from integer to string");
        let wider = obj(json!({"total": {"type": "number"}}), &["total"]);
        let r = check(&old, &wider);
        assert!(r.is_backward_compatible(), "{r}");
        assert_eq!(
            r.forward[0].to_string(),
            "/total: type changed from integer to number"
        );
    }

    #[test]
    fn enum_values_removed_and_added() {
        let old = obj(json!({"s": {"type": "string", "enum": ["a", "b"]}}), &["s"]);
        let new = obj(json!({"s": {"type": "string", "enum": ["a", "c"]}}), &["s"]);
        let r = check(&old, &new);
        assert_eq!(r.backward[0].to_string(), "/s: enum value \"b\" removed");
        assert_eq!(r.forward[0].to_string(), "/s: enum value \"c\" added");
    }

    #[test]
    fn nested_refs_and_closed_objects() {
        let old = json!({
            "type": "object", "required": ["customer"],
            "properties": {"customer": {"$ref": "#/$defs/Customer"}},
            "$defs": {"Customer": {"type": "object", "additionalProperties": false,
                "properties": {"name": {"type": "string"}}, "required": ["name"]}}
        });
        let mut new = old.clone();
        new["$defs"]["Customer"]["properties"]["vip"] = json!({"type": "boolean"});
        let r = check(&old, &new);
        assert!(r.is_backward_compatible(), "{r}");
        assert_eq!(
            r.forward[0].to_string(),
            "/customer/vip: field `vip` added while the old schema rejects unknown fields"
        );
    }
}
