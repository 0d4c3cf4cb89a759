//! An order service publishes `order.placed` events; billing and email (each its own consumer
//! group) react. Runs on `memory://` with no setup, or on any broker via `BROKERKIT_URL`.
//!
//! ```text
//! cargo run -p brokerkit-examples --bin order-service
//! BROKERKIT_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run -p brokerkit-examples --bin order-service
//! ```

use std::time::Duration;

use brokerkit::{Broker, Consumer, Delivery, Headers, Message, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct OrderPlaced {
    order_id: u32,
    customer_email: String,
    total_cents: u64,
}

const ORDERS: &[(u32, &str, u64)] = &[
    (1001, "ada@example.com", 4250),
    (1002, "grace@example.com", 1999),
    (1003, "linus@example.com", 12000),
];

fn say(who: &str, what: impl std::fmt::Display) {
    println!("{who:>14} | {what}");
}

fn decode(d: &Delivery) -> Option<OrderPlaced> {
    serde_json::from_slice(&d.message().payload).ok()
}

fn ids(d: &Delivery) -> String {
    let h = &d.message().headers;
    format!(
        "message-id={} correlation-id={}",
        h.message_id().unwrap_or("-"),
        h.correlation_id().unwrap_or("-")
    )
}

/// Billing: the card for order 1002 is declined once (a transient failure), so billing asks
/// for redelivery after a short delay; the second attempt succeeds.
async fn billing(mut consumer: Consumer, expected: usize) -> Result<()> {
    let mut done = 0;
    while done < expected {
        let Some(d) = consumer.next().await? else {
            break;
        };
        let Some(order) = decode(&d) else {
            say("billing", "undecodable payload: dead-lettering it");
            d.dead_letter(brokerkit::DeadLetterReason::new("not an OrderPlaced"))
                .await?;
            continue;
        };
        if order.order_id == 1002 && d.attempt() == 1 {
            say(
                "billing",
                format!(
                    "card declined for order #{} (attempt 1): retrying in 200 ms",
                    order.order_id
                ),
            );
            d.nack(Some(Duration::from_millis(200))).await?;
            continue;
        }
        say(
            "billing",
            format!(
                "charged order #{} ${}.{:02} (attempt {}, {})",
                order.order_id,
                order.total_cents / 100,
                order.total_cents % 100,
                d.attempt(),
                ids(&d)
            ),
        );
        d.ack().await?;
        done += 1;
    }
    consumer.close().await
}

/// Email: sends a confirmation per order.
async fn email(mut consumer: Consumer, expected: usize) -> Result<()> {
    for _ in 0..expected {
        let Some(d) = consumer.next().await? else {
            break;
        };
        if let Some(order) = decode(&d) {
            say(
                "email",
                format!(
                    "sent confirmation of order #{} to {} ({})",
                    order.order_id,
                    order.customer_email,
                    ids(&d)
                ),
            );
        }
        d.ack().await?;
    }
    consumer.close().await
}

#[tokio::main]
async fn main() -> Result<()> {
    let broker = Broker::from_env().await?;
    say(
        "setup",
        format!("connected to the {} broker", broker.adapter()),
    );
    // Unique per run, so a real broker's leftovers from earlier runs do not interfere.
    let topic = format!("orders-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    // Subscribe first: each group receives every order placed from now on.
    let billing_consumer = broker.consumer(&topic).group("billing").build().await?;
    let email_consumer = broker.consumer(&topic).group("email").build().await?;
    let billing_task = tokio::spawn(billing(billing_consumer, ORDERS.len()));
    let email_task = tokio::spawn(email(email_consumer, ORDERS.len()));

    let orders = broker.producer(&topic).build().await?;
    for &(order_id, customer_email, total_cents) in ORDERS {
        let event = OrderPlaced {
            order_id,
            customer_email: customer_email.to_string(),
            total_cents,
        };
        let mut headers = Headers::new();
        let id = uuid::Uuid::now_v7().to_string();
        headers.set_message_id(&id)?;
        headers.set_correlation_id(&id)?;
        headers.set_event_type("order.placed")?;
        headers.set_event_version(1)?;
        headers.set_content_type("application/json")?;
        let payload = serde_json::to_vec(&event)
            .map_err(|e| brokerkit::Error::new(brokerkit::ErrorKind::Decode, e.to_string()))?;
        orders
            .send(Message::new(payload).with_headers(headers))
            .await?;
        say(
            "order-service",
            format!("placed order #{order_id} for {customer_email} (message-id={id})"),
        );
    }

    let joined = tokio::time::timeout(Duration::from_secs(30), async {
        let (b, e) = tokio::join!(billing_task, email_task);
        (b, e)
    })
    .await;
    match joined {
        Ok((Ok(b), Ok(e))) => {
            b?;
            e?;
        }
        Ok(_) => {
            return Err(brokerkit::Error::new(
                brokerkit::ErrorKind::Unexpected,
                "a consumer task panicked",
            ))
        }
        Err(_) => {
            return Err(brokerkit::Error::new(
                brokerkit::ErrorKind::Timeout,
                "consumers did not finish within 30 s",
            ))
        }
    }
    say(
        "done",
        "every order was billed and confirmed; shutting down",
    );
    broker.close().await
}
