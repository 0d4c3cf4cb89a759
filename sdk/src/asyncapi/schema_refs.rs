//! Makes an event's JSON Schema fit inside an AsyncAPI document: `$defs` (or draft-07
//! `definitions`) move to `components/schemas` under `<message key>.<def>`, local `$ref`s are
//! rewritten to point there, and `$schema` is dropped.

use serde_json::{Map, Value};

/// The payload schema for the message `prefix`, its definitions added to `components`.
pub(super) fn lift(schema: &Value, prefix: &str, components: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    let mut defs = Map::new();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        for k in ["$defs", "definitions"] {
            if let Some(Value::Object(d)) = obj.remove(k) {
                defs.extend(d);
            }
        }
    }
    rewrite(&mut schema, prefix);
    for (name, mut def) in defs {
        rewrite(&mut def, prefix);
        components.insert(component_name(prefix, &name), def);
    }
    schema
}

fn component_name(prefix: &str, def: &str) -> String {
    super::key(&format!("{prefix}.{def}"))
}

fn rewrite(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(r) = child {
                        let def = r
                            .strip_prefix("#/$defs/")
                            .or_else(|| r.strip_prefix("#/definitions/"));
                        if let Some(def) = def {
                            *r = format!("#/components/schemas/{}", component_name(prefix, def));
                        }
                    }
                } else {
                    rewrite(child, prefix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, prefix)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defs_move_to_components_and_refs_follow() {
        let mut components = Map::new();
        let out = lift(
            &json!({"$schema": "x", "type": "object",
                    "properties": {"a": {"$ref": "#/$defs/Line"}},
                    "$defs": {"Line": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}},
                              "N": {"type": "integer"}}}),
            "order.placed.v1",
            &mut components,
        );
        assert_eq!(
            out,
            json!({"type": "object", "properties": {"a": {"$ref": "#/components/schemas/order.placed.v1.Line"}}})
        );
        assert_eq!(
            components["order.placed.v1.Line"]["properties"]["n"]["$ref"],
            "#/components/schemas/order.placed.v1.N"
        );
    }
}
