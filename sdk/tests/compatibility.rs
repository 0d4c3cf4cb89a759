//! Compatibility enforced on send: a producer told its destination's mode and the published
//! schemas refuses a breaking event before any I/O, naming each break.

use std::path::PathBuf;
use std::time::Duration;

use brokerkit::layers::send::compatibility::{Compatibility, IncompatibleSchema};
use brokerkit::schema::published::PublishedSchemas;
use brokerkit::{Broker, ErrorKind, Event};
use serde::{Deserialize, Serialize};

/// The checked-in `order.placed` v1, as in `schemas/order.placed.v1.json`.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Event)]
#[event(name = "order.placed", version = 1)]
#[serde(deny_unknown_fields)]
#[schemars(title = "OrderPlaced", description = "A customer placed an order.")]
struct PlacedV1 {
    /// Order number.
    order_id: u32,
    /// Where confirmations go.
    customer_email: String,
    /// Amount due, in cents.
    total_cents: u64,
}

/// v2 adds a required field and drops `customer_email`: not backward compatible (old events
/// lack `currency`) and, with v1 closed, not forward compatible either.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Event)]
#[event(name = "order.placed", version = 2)]
struct PlacedV2Breaking {
    order_id: u32,
    total_cents: u64,
    currency: String,
}

/// v2 that only adds an optional field: backward compatible.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Event)]
#[event(name = "order.placed", version = 2)]
struct PlacedV2Compatible {
    order_id: u32,
    customer_email: String,
    total_cents: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coupon: Option<String>,
}

fn repo_schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

#[test]
fn the_checked_in_schemas_load_by_type_and_version() {
    let published = PublishedSchemas::from_dir(repo_schemas()).unwrap();
    assert!(published.event_types().contains(&"order.placed"));
    let versions: Vec<u32> = published.versions("order.placed").map(|(v, _)| v).collect();
    assert_eq!(versions, vec![1]);
    let e = PublishedSchemas::from_dir("/nonexistent/brokerkit").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn a_breaking_event_is_refused_before_io_with_each_break_named() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("orders").build().await.unwrap();
    let published = PublishedSchemas::from_dir(repo_schemas()).unwrap();
    let producer = broker
        .producer("orders")
        .compatibility(Compatibility::Backward, published.clone())
        .build()
        .await
        .unwrap();
    let e = producer
        .send_event(&PlacedV2Breaking {
            order_id: 1,
            total_cents: 5,
            currency: "EUR".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let text = e.to_string();
    assert!(
        text.contains("order.placed v2 breaks the destination's backward compatibility")
            && text.contains("against v1 (")
            && text.contains("order.placed.v1.json")
            && text.contains("currency"),
        "{text}"
    );
    let source = e
        .source_ref()
        .and_then(|s| s.downcast_ref::<IncompatibleSchema>())
        .expect("typed source");
    assert!(!source.breaks.is_empty());
    // Again (the verdict is cached): still refused.
    assert!(producer
        .send_event(&PlacedV2Breaking {
            order_id: 2,
            total_cents: 5,
            currency: "EUR".into(),
        })
        .await
        .is_err());
    // Nothing reached the broker.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), consumer.next())
            .await
            .is_err()
    );

    // Full: the breaking v2 also breaks forward (v1 is closed and requires customer_email).
    let full = broker
        .producer("orders")
        .compatibility(Compatibility::Full, published.clone())
        .build()
        .await
        .unwrap();
    let e = full
        .send_event(&PlacedV2Breaking {
            order_id: 3,
            total_cents: 5,
            currency: "EUR".into(),
        })
        .await
        .unwrap_err();
    let source = e
        .source_ref()
        .and_then(|s| s.downcast_ref::<IncompatibleSchema>())
        .unwrap();
    assert!(source.breaks.len() >= 2, "{e}");

    // A compatible v2 and the published v1 itself go out.
    producer
        .send_event(&PlacedV2Compatible {
            order_id: 4,
            customer_email: "a@example.com".into(),
            total_cents: 5,
            coupon: None,
        })
        .await
        .unwrap();
    full.send_event(&PlacedV1 {
        order_id: 5,
        customer_email: "a@example.com".into(),
        total_cents: 5,
    })
    .await
    .unwrap();
    for want in [2, 1] {
        let d = tokio::time::timeout(Duration::from_secs(2), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.message().headers.event_version().unwrap(), Some(want));
        d.ack().await.unwrap();
    }
}

#[tokio::test]
async fn an_older_event_is_checked_against_a_newer_published_version() {
    let broker = Broker::connect("memory://").await.unwrap();
    // v2 published with a new required field; a producer still on v1 breaks backward
    // compatibility for v2 consumers (its events lack `currency`).
    let published = PublishedSchemas::new().with(
        "order.placed",
        2,
        serde_json::json!({
            "type": "object",
            "required": ["order_id", "currency"],
            "properties": {"order_id": {"type": "integer"}, "currency": {"type": "string"}}
        }),
    );
    let producer = broker
        .producer("orders")
        .compatibility(Compatibility::Backward, published)
        .build()
        .await
        .unwrap();
    let e = producer
        .send_event(&PlacedV1 {
            order_id: 1,
            customer_email: "a@example.com".into(),
            total_cents: 1,
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("against v2 (order.placed v2)"),
        "{e}"
    );
}
