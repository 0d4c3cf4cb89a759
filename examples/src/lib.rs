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

/// The example order service's contract as an AsyncAPI 3.0 document: the service publishes
/// `order.placed` on `orders`; billing and email consume it; billing publishes
/// `payment.captured` on `payments`, which email consumes. Servers: `(name, brokerkit URL)`
/// of the brokers the service runs on (their adapters compiled in; credentials are left out),
/// each with the bindings its adapter declares.
pub fn asyncapi_document(
    servers: &[(String, String)],
) -> brokerkit::Result<brokerkit::asyncapi::Document> {
    let mut doc = brokerkit::asyncapi::Document::builder("order-service", "1.0.0")
        .description("Orders, billing and email confirmations (examples/src/order_service.rs).");
    for (name, url) in servers {
        doc = doc.server_url(name.as_str(), url);
    }
    doc.produces::<OrderPlaced>("orders")
        .consumes::<OrderPlaced>("orders", "billing")
        .consumes::<OrderPlaced>("orders", "email")
        .produces::<PaymentCaptured>("payments")
        .consumes::<PaymentCaptured>("payments", "email")
        .build()
}
