//! The example service's generated AsyncAPI 3.0 document: every `$ref` resolves inside it,
//! and it validates against the official AsyncAPI 3.0.0 JSON Schema.
//!
//! The official schema is `schemas/3.0.0-without-$id.json` of
//! <https://github.com/asyncapi/spec-json-schemas> (Apache-2.0). `scripts/asyncapi-schema`
//! downloads it (pinned commit, checked digest) to `target/asyncapi/asyncapi-3.0.0.json`;
//! `BROKERKIT_ASYNCAPI_SCHEMA` points elsewhere. Without it that one check is skipped with a
//! printed reason; with `BROKERKIT_REQUIRE_ASYNCAPI_SCHEMA=1` (CI) its absence fails.

use std::path::PathBuf;

use serde_json::Value;

/// The brokers `scripts/brokers` starts whose adapters document an AsyncAPI server.
fn servers() -> Vec<(String, String)> {
    let registry = brokerkit::Registry::default();
    brokerkit_integration_tests::listed_brokers()
        .into_iter()
        .filter(|(name, _)| !name.contains('+'))
        .filter(|(_, url)| {
            let scheme = url.split("://").next().unwrap_or_default();
            registry
                .profile(scheme)
                .is_some_and(|p| p.asyncapi_protocol.is_some())
        })
        .collect()
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                match (k.as_str(), c) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(c, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

#[test]
fn the_example_document_is_self_contained_and_describes_the_service() {
    let servers = servers();
    let doc = brokerkit_examples::asyncapi_document(&servers).unwrap();
    let json = doc.as_json();
    assert_eq!(json["asyncapi"], "3.0.0");
    let mut all = Vec::new();
    refs(json, &mut all);
    assert!(all.len() >= 10, "{all:?}");
    for r in &all {
        assert!(resolve(json, r).is_some(), "dangling $ref {r}");
    }
    let ops = json["operations"].as_object().unwrap();
    let mut ids: Vec<&str> = ops.keys().map(String::as_str).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![
            "receive-orders-billing",
            "receive-orders-email",
            "receive-payments-email",
            "send-orders",
            "send-payments"
        ]
    );
    // Each adapter's bindings are checked by its own tests (tests/conformance.rs).
    let payload = &json["components"]["messages"]["order.placed.v1"]["payload"];
    assert_eq!(payload["required"][0], "order_id");
    for (name, _) in &servers {
        assert!(json["servers"][name]["host"].is_string(), "{name}: {json}");
    }
    assert!(!doc.to_pretty_json().contains("guest"), "no credentials");
}

#[test]
fn the_example_document_validates_against_the_asyncapi_3_schema() {
    let path = std::env::var_os("BROKERKIT_ASYNCAPI_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/asyncapi/asyncapi-3.0.0.json")
        });
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var("BROKERKIT_REQUIRE_ASYNCAPI_SCHEMA").as_deref() != Ok("1"),
            "the AsyncAPI 3.0 schema is required but {} is missing; run scripts/asyncapi-schema",
            path.display()
        );
        eprintln!(
            "SKIP official-schema validation: {} is missing (run scripts/asyncapi-schema)",
            path.display()
        );
        return;
    };
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["properties"]["asyncapi"]["const"], "3.0.0");
    let validator = brokerkit::SchemaValidator::new("AsyncAPI 3.0.0", schema).unwrap();
    let doc = brokerkit_examples::asyncapi_document(&servers()).unwrap();
    let issues = validator.violations(doc.as_json());
    assert!(issues.is_empty(), "{issues:#?}");
    // The validator is live: a broken document is rejected.
    let mut broken = doc.as_json().clone();
    broken["operations"]["send-orders"]["action"] = "publish".into();
    assert!(!validator.violations(&broken).is_empty());
}
