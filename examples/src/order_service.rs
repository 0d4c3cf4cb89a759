//! An order service publishes `order.placed` events; billing and email (each its own consumer
//! group) react. Billing captures the payment and publishes `payment.captured`, which email
//! turns into a receipt, so one correlation id flows order → billing → email.
//!
//! Runs on `memory://` with no setup, or on any broker via `BROKERKIT_URL`:
//! ```text
//! cargo run -p brokerkit-examples --bin order-service
//! BROKERKIT_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run -p brokerkit-examples --bin order-service
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brokerkit::{
    dead_letter_destination, Broker, Context, DeadLetterEnvelope, Error, ErrorKind, Headers,
    Idempotency, Message, Result, RetryPolicy,
};
use brokerkit_examples::{OrderPlaced, PaymentCaptured};
use tokio::sync::Notify;

const ORDERS: &[(u32, &str, u64)] = &[
    (1001, "ada@example.com", 4250),
    (1002, "grace@example.com", 1999),
    (1003, "linus@example.com", 12000),
];

fn say(who: &str, what: impl std::fmt::Display) {
    println!("{who:>14} | {what}");
}

fn short(id: Option<&str>) -> String {
    id.map(|i| {
        i.chars()
            .rev()
            .take(8)
            .collect::<String>()
            .chars()
            .rev()
            .collect()
    })
    .unwrap_or_else(|| "-".into())
}

fn ids(ctx: &Context) -> String {
    format!(
        "msg …{} corr …{} cause …{}",
        short(ctx.message_id()),
        short(ctx.correlation_id()),
        short(ctx.causation_id())
    )
}

/// Counts finished steps and wakes `main` when all are done.
#[derive(Clone)]
struct Progress(Arc<(AtomicUsize, Notify)>);

impl Progress {
    fn step(&self) {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
        self.0 .1.notify_one();
    }
    async fn wait_for(&self, n: usize) {
        while self.0 .0.load(Ordering::SeqCst) < n {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.0 .1.notified()).await;
        }
    }
}

fn stopped(stop: &Arc<Notify>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let stop = stop.clone();
    async move { stop.notified().await }
}

#[tokio::main]
async fn main() -> Result<()> {
    let broker = Broker::from_env().await?;
    say(
        "setup",
        format!("connected to the {} broker", broker.adapter()),
    );
    // Unique per run, so a real broker's leftovers from earlier runs do not interfere.
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (orders_topic, payments_topic) = (format!("orders-{run}"), format!("payments-{run}"));
    let progress = Progress(Arc::default());
    let stop = Arc::new(Notify::new());
    let policy = if broker.capabilities().delayed_redelivery.is_available() {
        RetryPolicy::exponential(Duration::from_millis(200), 3)
    } else {
        RetryPolicy::immediate(3)
    };

    // Billing: charges each order once (idempotency key = order id), retries a declined
    // card with backoff, and publishes payment.captured from inside the handler.
    let payments = broker.producer(&payments_topic).build().await?;
    let billing = {
        let progress = progress.clone();
        broker
            .consumer(&orders_topic)
            .group("billing")
            .retry(policy.clone())
            .idempotency(Idempotency::new(
                brokerkit::connect_store("memory://").await?,
            ))
            .handle(move |ctx: Context, order: OrderPlaced| {
                let (payments, progress) = (payments.clone(), progress.clone());
                async move {
                    if order.order_id == 1002 && ctx.attempt() == 1 {
                        say(
                            "billing",
                            format!(
                                "card declined for #{} (attempt 1): will retry",
                                order.order_id
                            ),
                        );
                        return Err(Error::new(ErrorKind::Handler, "card declined").into());
                    }
                    say(
                        "billing",
                        format!(
                            "charged #{} ${}.{:02} on attempt {} ({})",
                            order.order_id,
                            order.total_cents / 100,
                            order.total_cents % 100,
                            ctx.attempt(),
                            ids(&ctx)
                        ),
                    );
                    payments
                        .send_event(&PaymentCaptured {
                            order_id: order.order_id,
                            amount_cents: order.total_cents,
                            customer_email: order.customer_email,
                        })
                        .await?;
                    progress.step();
                    Ok(())
                }
            })
    };

    // Email: confirms each order, and sends a receipt per captured payment.
    let confirmations = {
        let progress = progress.clone();
        broker
            .consumer(&orders_topic)
            .group("email")
            .handle(move |ctx, order: OrderPlaced| {
                let progress = progress.clone();
                async move {
                    say(
                        "email",
                        format!(
                            "confirmation of #{} to {} ({})",
                            order.order_id,
                            order.customer_email,
                            ids(&ctx)
                        ),
                    );
                    progress.step();
                    Ok(())
                }
            })
    };
    let receipts = {
        let progress = progress.clone();
        broker
            .consumer(&payments_topic)
            .group("email")
            .handle(move |ctx, paid: PaymentCaptured| {
                let progress = progress.clone();
                async move {
                    say(
                        "email",
                        format!(
                            "receipt for #{} to {} ({})",
                            paid.order_id,
                            paid.customer_email,
                            ids(&ctx)
                        ),
                    );
                    progress.step();
                    Ok(())
                }
            })
    };
    let mut dead_letters = broker
        .consumer(&dead_letter_destination(&orders_topic))
        .group("ops")
        .build()
        .await?;

    // `start` returns once each subscription is in place.
    let mut tasks = Vec::new();
    for handler in [
        billing.start(stopped(&stop)).await?,
        confirmations.start(stopped(&stop)).await?,
        receipts.start(stopped(&stop)).await?,
    ] {
        tasks.push(handler);
    }

    let orders = broker
        .producer(&orders_topic)
        .idempotency_key(|m: &Message| {
            serde_json::from_slice::<OrderPlaced>(&m.payload)
                .ok()
                .map(|o| format!("order-{}", o.order_id))
        })
        .build()
        .await?;
    for &(order_id, email, total_cents) in ORDERS {
        orders
            .send_event(&OrderPlaced {
                order_id,
                customer_email: email.into(),
                total_cents,
            })
            .await?;
        say("order-service", format!("placed #{order_id} for {email}"));
    }
    // A legacy producer sends an order that breaks the contract: it never reaches a handler.
    let mut legacy = Headers::new();
    legacy.set_event_type("order.placed")?;
    legacy.set_event_version(1)?;
    orders
        .send(Message::new(r#"{"order_id": 1004, "total_cents": "lots"}"#).with_headers(legacy))
        .await?;
    say(
        "order-service",
        "placed #1004 through a legacy client (invalid payload)",
    );

    // 3 charges + 3 confirmations + 3 receipts.
    let finished = tokio::time::timeout(Duration::from_secs(30), progress.wait_for(9)).await;
    for _ in 0..2 {
        // One dead letter per group that rejected #1004.
        let Ok(Ok(Some(d))) =
            tokio::time::timeout(Duration::from_secs(10), dead_letters.next()).await
        else {
            break;
        };
        if let Some(env) = DeadLetterEnvelope::read_from(&d.message().headers) {
            let issues: Vec<String> = env
                .reason
                .validation_errors
                .iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        if i.pointer.is_empty() {
                            "/"
                        } else {
                            &i.pointer
                        },
                        i.reason
                    )
                })
                .collect();
            say(
                "dead-letter",
                format!(
                    "from group {} after {} attempt(s): {}",
                    env.original_group.as_deref().unwrap_or("-"),
                    env.attempts,
                    issues.join("; ")
                ),
            );
        }
        d.ack().await?;
    }
    stop.notify_waiters();
    for t in tasks {
        let report = t.join().await?;
        say("report", format!("{report:?}"));
    }
    if finished.is_err() {
        return Err(Error::new(
            ErrorKind::Timeout,
            "the flow did not finish within 30 s",
        ));
    }
    say(
        "done",
        "every order was billed, confirmed and receipted; the invalid one was dead-lettered",
    );
    broker.close().await
}
