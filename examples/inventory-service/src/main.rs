//! `cargo run -p inventory-service` (memory://), or e.g.
//! `BROKERKIT_URL=<broker URL> cargo run -p inventory-service --features all-brokers`.
//! Waits up to 30 s for the broker (`BROKERKIT_CONNECT_DEADLINE_MS`), stops on Ctrl-C/SIGTERM.

use brokerkit::{connect_store, shutdown_signal, Broker, RetryPolicy};
use inventory_service::inventory::Inventory;

/// Environment variable naming the idempotency store.
const STORE_ENV: &str = "INVENTORY_IDEMPOTENCY_URL";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let broker = Broker::from_env().await?;
    let store_url = std::env::var(STORE_ENV).unwrap_or_else(|_| "memory://".into());
    let store = connect_store(&store_url).await?;
    let inventory = Inventory::with_stock([("SKU-0001", 100), ("SKU-0002", 5)])?;
    let handlers =
        inventory_service::handlers(&broker, inventory, store, RetryPolicy::default()).await?;
    tracing::info!(
        adapter = broker.adapter(),
        "inventory service running; Ctrl-C to stop"
    );
    let orders = handlers.orders.start(shutdown_signal()).await?;
    let adjustments = handlers.adjustments.start(shutdown_signal()).await?;
    let (orders, adjustments) = (orders.join().await?, adjustments.join().await?);
    tracing::info!(?orders, ?adjustments, "stopped");
    broker.close().await?;
    Ok(())
}
