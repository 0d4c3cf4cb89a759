//! The checked-in schemas under `schemas/` match the Rust types, and compatibility checks
//! work on them. Regenerate with:
//! `BROKERKIT_UPDATE_SCHEMAS=1 cargo test -p brokerkit-examples --test schemas matches_its_file`

use std::path::PathBuf;

use brokerkit::schema::compat;
use brokerkit::schema::files::{check_schema_file, compare_schema_file};
use brokerkit::{Event, SchemaValidator};
use brokerkit_examples::{OrderPlaced, PaymentCaptured};

const REGENERATE: &str = "cargo test -p brokerkit-examples --test schemas matches_its_file";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

#[test]
fn order_placed_schema_matches_its_file() {
    check_schema_file::<OrderPlaced>(&dir(), REGENERATE).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn payment_captured_schema_matches_its_file() {
    check_schema_file::<PaymentCaptured>(&dir(), REGENERATE).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn drift_is_reported_with_the_fix() {
    let tmp = std::env::temp_dir().join(format!("bk-schemas-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut drifted = brokerkit::schema::SchemaValidator::new("x", serde_json::json!({}))
        .unwrap()
        .schema()
        .clone();
    drifted["title"] = "stale".into();
    std::fs::write(
        tmp.join(OrderPlaced::schema_file_name()),
        drifted.to_string(),
    )
    .unwrap();
    let e = compare_schema_file::<OrderPlaced>(&tmp, REGENERATE).unwrap_err();
    assert!(
        e.contains("drifted") && e.contains("BROKERKIT_UPDATE_SCHEMAS=1"),
        "{e}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_consumer_can_validate_against_the_file_alone() {
    let v = SchemaValidator::from_file(dir().join("order.placed.v1.json")).unwrap();
    assert!(v
        .check(&serde_json::json!({"order_id": 1, "customer_email": "a@b", "total_cents": 5}))
        .is_ok());
    let issues = v.violations(&serde_json::json!({"order_id": -1, "customer_email": "a@b"}));
    let pointers: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
    assert!(pointers.contains(&"/order_id"), "{issues:?}");
    assert!(
        issues.iter().any(|i| i.reason.contains("total_cents")),
        "{issues:?}"
    );
}

#[test]
fn compatibility_of_a_new_order_version() {
    let v1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("order.placed.v1.json")).unwrap())
            .unwrap();
    // v2 makes `currency` required and drops `customer_email`.
    let mut v2 = v1.clone();
    v2["properties"]["currency"] = serde_json::json!({"type": "string", "enum": ["EUR", "USD"]});
    v2["properties"]
        .as_object_mut()
        .unwrap()
        .remove("customer_email");
    v2["required"] = serde_json::json!(["order_id", "total_cents", "currency"]);
    let report = compat::check(&v1, &v2);
    let backward: Vec<String> = report.backward.iter().map(|c| c.to_string()).collect();
    let forward: Vec<String> = report.forward.iter().map(|c| c.to_string()).collect();
    assert!(
        backward.contains(&"/currency: required field `currency` added".to_string()),
        "{backward:?}"
    );
    assert!(
        backward.contains(
            &"/customer_email: field `customer_email` removed while unknown fields are rejected"
                .to_string()
        ),
        "{backward:?}"
    );
    assert!(
        forward.contains(&"/customer_email: required field `customer_email` removed".to_string()),
        "{forward:?}"
    );
    assert!(
        forward
            .iter()
            .any(|c| c.starts_with("/currency: field `currency` added")),
        "{forward:?}"
    );
}
