//! Event contracts shared by the examples. Their JSON Schemas are checked in under
//! `schemas/` (see `tests/schemas.rs`).

use brokerkit::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A customer placed an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaced {
    /// Order number.
    pub order_id: u32,
    /// Where confirmations go.
    pub customer_email: String,
    /// Amount due, in cents.
    pub total_cents: u64,
}

impl Event for OrderPlaced {
    const NAME: &'static str = "order.placed";
    const VERSION: u32 = 1;
}

/// Billing charged an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCaptured {
    /// Order number.
    pub order_id: u32,
    /// Amount charged, in cents.
    pub amount_cents: u64,
    /// Where the receipt goes.
    pub customer_email: String,
}

impl Event for PaymentCaptured {
    const NAME: &'static str = "payment.captured";
    const VERSION: u32 = 1;
}
