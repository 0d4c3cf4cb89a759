//! The handlers, as plain async functions so tests can call them directly. Application errors
//! go up with `?`: a handler failure by default (retried, then dead-lettered); what can never
//! succeed is marked `.permanent()` (dead-lettered now).

use brokerkit::{
    Context, ErrorKind, Event, HandlerError, HandlerResult, Message, Producer, ResultExt,
};

use crate::events::{OrderPlaced, StockAdjusted, StockAdjustedV2, StockReserved};
use crate::inventory::{Inventory, InventoryError, Sku};

/// Reserves stock for an order and publishes [`StockReserved`].
///
/// - a malformed or unknown SKU: dead-lettered now;
/// - out of stock: retried by the policy (a stock adjustment may arrive), then dead-lettered;
/// - the broker failing to take `StockReserved`: retried.
pub async fn reserve(
    ctx: Context,
    order: OrderPlaced,
    inventory: Inventory,
    stock: Producer,
) -> HandlerResult {
    let sku = Sku::parse(&order.sku).permanent()?;
    let remaining = match inventory.reserve(&sku, order.quantity) {
        Err(e @ InventoryError::UnknownSku(_)) => return Err(HandlerError::permanent(e)),
        other => other?,
    };
    stock
        .send_event(&StockReserved {
            order_id: order.order_id,
            sku: order.sku,
            quantity: order.quantity,
            remaining,
        })
        .await?;
    tracing::info!(
        order_id = order.order_id,
        remaining,
        attempt = ctx.attempt(),
        "stock reserved"
    );
    Ok(())
}

/// Applies a stock correction of either contract version: v1 is upgraded to v2, v2 is read as
/// it is. Each is validated against its own schema (a violation is a `Validation` error and
/// dead-letters now, with the violations in the envelope).
pub async fn adjust(ctx: Context, message: Message, inventory: Inventory) -> HandlerResult {
    let adjustment = decode_adjustment(&ctx, &message)?;
    let sku = Sku::parse(&adjustment.sku).permanent()?;
    let units = inventory.adjust(sku, adjustment.delta);
    tracing::info!(
        sku = adjustment.sku,
        delta = adjustment.delta,
        reason = adjustment.reason,
        units,
        "stock adjusted"
    );
    Ok(())
}

/// The adjustment in `message`, as v2, whichever version it was sent as.
pub fn decode_adjustment(ctx: &Context, message: &Message) -> HandlerResult<StockAdjustedV2> {
    if ctx.event_type() != Some(StockAdjustedV2::NAME) {
        let e = brokerkit::Error::new(
            ErrorKind::Decode,
            format!(
                "expected event type {}, got {:?}",
                StockAdjustedV2::NAME,
                ctx.event_type()
            ),
        );
        return Err(e.into());
    }
    // Malformed JSON never gets better: dead-letter now.
    let value: serde_json::Value = serde_json::from_slice(&message.payload).permanent()?;
    match ctx.headers().event_version()? {
        Some(1) => {
            StockAdjusted::schema().check(&value)?; // `Validation`: dead-lettered now
            let v1: StockAdjusted = serde_json::from_value(value).permanent()?;
            Ok(v1.into())
        }
        Some(2) | None => {
            StockAdjustedV2::schema().check(&value)?;
            Ok(serde_json::from_value(value).permanent()?)
        }
        Some(v) => Err(brokerkit::Error::new(
            ErrorKind::Decode,
            format!(
                "{} version {v} is newer than this service knows (1, 2)",
                StockAdjustedV2::NAME
            ),
        )
        .into()),
    }
}
