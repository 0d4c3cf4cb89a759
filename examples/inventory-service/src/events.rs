//! The event contracts. Names and versions are stable; the JSON Schemas are generated from the
//! types. No `deny_unknown_fields`: a consumer of v1 must keep accepting payloads that gained
//! optional fields (see `docs/guides/event-versions.md`).

use brokerkit::Event;
use serde::{Deserialize, Serialize};

/// An order was placed (consumed from `orders`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: u64,
    /// Stock keeping unit, e.g. `SKU-0042`.
    pub sku: String,
    /// Units ordered.
    pub quantity: u32,
}

impl Event for OrderPlaced {
    const NAME: &'static str = "order.placed";
    const VERSION: u32 = 1;
}

/// Stock was reserved for an order (published to `stock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StockReserved {
    /// The order it was reserved for.
    pub order_id: u64,
    /// The SKU.
    pub sku: String,
    /// Units reserved.
    pub quantity: u32,
    /// Units left after the reservation.
    pub remaining: u32,
}

impl Event for StockReserved {
    const NAME: &'static str = "stock.reserved";
    const VERSION: u32 = 1;
}

/// A manual stock correction, version 1 (consumed from `stock-adjustments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StockAdjusted {
    /// The SKU.
    pub sku: String,
    /// Units added (negative: removed).
    pub delta: i64,
}

impl Event for StockAdjusted {
    const NAME: &'static str = "stock.adjusted";
    const VERSION: u32 = 1;
}

/// Version 2 of the correction: a required reason (a breaking change, hence a new version)
/// and an optional warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StockAdjustedV2 {
    /// The SKU.
    pub sku: String,
    /// Units added (negative: removed).
    pub delta: i64,
    /// Why, e.g. `stocktake`, `damaged`.
    pub reason: String,
    /// Where, when known.
    #[serde(default)]
    pub warehouse: Option<String>,
}

impl Event for StockAdjustedV2 {
    const NAME: &'static str = "stock.adjusted";
    const VERSION: u32 = 2;
}

impl From<StockAdjusted> for StockAdjustedV2 {
    /// A v1 correction as v2: the reason was not recorded.
    fn from(v1: StockAdjusted) -> Self {
        StockAdjustedV2 {
            sku: v1.sku,
            delta: v1.delta,
            reason: "unspecified (v1)".into(),
            warehouse: None,
        }
    }
}
