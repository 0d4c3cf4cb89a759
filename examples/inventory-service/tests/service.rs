//! The inventory service under the test kit: handlers called directly with a built
//! `Context`, and the whole service on `memory://` in a `TestHarness`.

use std::sync::Arc;

use brokerkit::testing::TestHarness;
use brokerkit::{Context, ErrorKind, Headers, Message, RetryPolicy};
use inventory_service::events::{OrderPlaced, StockAdjusted, StockAdjustedV2, StockReserved};
use inventory_service::inventory::{Inventory, InventoryError, Sku};
use inventory_service::{handlers, ADJUSTMENTS, GROUP, ORDERS, STOCK};

fn inventory() -> Inventory {
    Inventory::with_stock([("SKU-0001", 100), ("SKU-0002", 5)]).unwrap()
}

fn order(order_id: u64, sku: &str, quantity: u32) -> OrderPlaced {
    OrderPlaced {
        order_id,
        sku: sku.into(),
        quantity,
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

#[tokio::test]
async fn reserve_called_directly_publishes_with_causation() -> brokerkit::Result<()> {
    let harness = TestHarness::new();
    let stock = harness.broker().producer(STOCK).build().await?;
    let inv = inventory();
    let ctx = Context::builder(ORDERS)
        .group(GROUP)
        .message_id("order-msg-1")
        .build()?;
    let run = handlers::reserve(ctx.clone(), order(7, "SKU-0002", 2), inv.clone(), stock);
    ctx.scope(run).await?; // HandlerError converts into brokerkit::Error with `?`
    assert_eq!(inv.units(&sku("SKU-0002")), Some(3));
    let published = harness.published(STOCK);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].headers.causation_id(), Some("order-msg-1"));
    let reserved: Vec<StockReserved> = harness.published_events(STOCK)?;
    assert_eq!(reserved[0].remaining, 3);
    Ok(())
}

#[tokio::test]
async fn reserve_classifies_application_errors() -> brokerkit::Result<()> {
    let harness = TestHarness::new();
    let stock = harness.broker().producer(STOCK).build().await?;
    let ctx = Context::builder(ORDERS).build()?;
    // An unknown SKU can never be reserved: permanent, with the typed error kept.
    let e = handlers::reserve(
        ctx.clone(),
        order(1, "SKU-9999", 1),
        inventory(),
        stock.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(
        e.downcast_ref::<InventoryError>(),
        Some(&InventoryError::UnknownSku("SKU-9999".into()))
    );
    // Out of stock may change: a (retried) handler failure.
    let e = handlers::reserve(ctx, order(2, "SKU-0002", 50), inventory(), stock)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Handler);
    assert!(matches!(
        e.downcast_ref::<InventoryError>(),
        Some(InventoryError::OutOfStock { available: 5, .. })
    ));
    assert!(harness.published(STOCK).is_empty());
    Ok(())
}

#[tokio::test]
async fn orders_are_reserved_once_retried_and_dead_lettered() -> brokerkit::Result<()> {
    let harness = TestHarness::new();
    let inv = inventory();
    let store = Arc::new(brokerkit::idempotency::MemoryStore::new());
    let h = handlers(
        harness.broker(),
        inv.clone(),
        store,
        RetryPolicy::immediate(3),
    )
    .await?;
    let running = harness.start(h.orders).await?;

    let first = harness.send_event(ORDERS, &order(1, "SKU-0002", 2)).await?;
    harness.send_event(ORDERS, &order(1, "SKU-0002", 2)).await?; // sent twice by its producer
    harness.send_event(ORDERS, &order(2, "bogus", 1)).await?; // never a SKU
    harness
        .send_event(ORDERS, &order(3, "SKU-0002", 50))
        .await?; // out of stock
    let report = running
        .wait_until(|r| r.acked == 1 && r.duplicates == 1 && r.dead_lettered == 2)
        .await?;
    assert_eq!(report.retried, 2, "{report:?}"); // attempts 1 and 2 of order 3

    assert_eq!(inv.units(&sku("SKU-0002")), Some(3), "reserved once");
    let published = harness.published(STOCK);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].headers.causation_id(), Some(first.as_str()));

    let dead = harness.dead_letters(ORDERS, GROUP).await?;
    let mut kinds: Vec<_> = dead
        .iter()
        .map(|d| {
            let e = d.envelope.as_ref().unwrap();
            (e.reason.error_kind, e.attempts)
        })
        .collect();
    kinds.sort_by_key(|(_, attempts)| *attempts);
    assert_eq!(
        kinds,
        vec![
            (Some(ErrorKind::Rejected), 1),
            (Some(ErrorKind::Handler), 3)
        ]
    );
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn both_contract_versions_are_applied_and_a_bad_v2_is_dead_lettered() -> brokerkit::Result<()>
{
    let harness = TestHarness::new();
    let inv = inventory();
    let store = Arc::new(brokerkit::idempotency::MemoryStore::new());
    let h = handlers(
        harness.broker(),
        inv.clone(),
        store,
        RetryPolicy::immediate(3),
    )
    .await?;
    let running = harness.start(h.adjustments).await?;

    let v1 = StockAdjusted {
        sku: "SKU-0001".into(),
        delta: -10,
    };
    harness.send_event(ADJUSTMENTS, &v1).await?;
    let v2 = StockAdjustedV2 {
        sku: "SKU-0003".into(),
        delta: 7,
        reason: "stocktake".into(),
        warehouse: Some("east".into()),
    };
    harness.send_event(ADJUSTMENTS, &v2).await?;
    // A v2 without its required reason, as an old producer would send it.
    let mut headers = Headers::new();
    headers.set_event_type("stock.adjusted")?;
    headers.set_event_version(2)?;
    let bad = Message::new(r#"{"sku":"SKU-0001","delta":1}"#).with_headers(headers);
    harness.send(ADJUSTMENTS, bad).await?;

    let report = running
        .wait_until(|r| r.acked == 2 && r.dead_lettered == 1)
        .await?;
    assert_eq!(report.retried, 0);
    assert_eq!(inv.units(&sku("SKU-0001")), Some(90));
    assert_eq!(inv.units(&sku("SKU-0003")), Some(7));
    let dead = harness.dead_letters(ADJUSTMENTS, GROUP).await?;
    let envelope = dead[0].envelope.as_ref().unwrap();
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Validation));
    assert!(
        envelope.reason.reason.contains("reason"),
        "{}",
        envelope.reason.reason
    );
    running.stop().await?;
    Ok(())
}
