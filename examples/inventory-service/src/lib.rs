//! An inventory service on brokerkit: reserves stock for placed orders (typed events,
//! idempotent by order id), publishes `stock.reserved`, and applies stock corrections sent as
//! either version of the `stock.adjusted` contract. The broker is chosen by `BROKERKIT_URL`
//! (default `memory://`), the idempotency store by `INVENTORY_IDEMPOTENCY_URL` (default
//! `memory://`; `redis://…` with the `redis` feature).

pub mod events;
pub mod handlers;
pub mod inventory;

use std::sync::Arc;

use brokerkit::{Broker, Context, Handler, Idempotency, IdempotencyStore, Message, RetryPolicy};

use events::OrderPlaced;
use inventory::Inventory;

/// Orders are consumed from here.
pub const ORDERS: &str = "orders";
/// `stock.reserved` is published here.
pub const STOCK: &str = "stock";
/// Stock corrections are consumed from here.
pub const ADJUSTMENTS: &str = "stock-adjustments";
/// The consumer group of this service.
pub const GROUP: &str = "inventory";

/// The service's two handlers, built but not running.
pub struct Handlers {
    /// `orders` → reserve stock.
    pub orders: Handler,
    /// `stock-adjustments` → adjust stock.
    pub adjustments: Handler,
}

/// Builds the handlers on `broker`. Orders are idempotent by order id in `store`: an order
/// delivered or sent twice reserves stock once.
pub async fn handlers(
    broker: &Broker,
    inventory: Inventory,
    store: Arc<dyn IdempotencyStore>,
    retry: RetryPolicy,
) -> brokerkit::Result<Handlers> {
    let stock = broker.producer(STOCK).build().await?;
    let by_order = Idempotency::new(store).key_fn(|m: &Message| {
        let order: OrderPlaced = serde_json::from_slice(&m.payload).ok()?;
        Some(format!("order-{}", order.order_id))
    });
    let reserving = inventory.clone();
    let orders = broker
        .consumer(ORDERS)
        .group(GROUP)
        .retry(retry.clone())
        .idempotency(by_order)
        .concurrency(8)
        .handle(move |ctx: Context, order: OrderPlaced| {
            handlers::reserve(ctx, order, reserving.clone(), stock.clone())
        });
    let adjustments = broker
        .consumer(ADJUSTMENTS)
        .group(GROUP)
        .retry(retry)
        .handle_raw(move |ctx: Context, message: Message| {
            handlers::adjust(ctx, message, inventory.clone())
        });
    Ok(Handlers {
        orders,
        adjustments,
    })
}
