//! Observability: traffic on `memory://` (or the broker at `$BROKERKIT_URL`) with brokerkit's
//! OpenTelemetry metrics exported to stdout and served for Prometheus on
//! `http://127.0.0.1:9464/metrics` (`BROKERKIT_METRICS_ADDR` to change it), plus the health
//! snapshot a readiness probe would read.
//!
//! `cargo run -p brokerkit-examples --bin observability`

use std::time::Duration;

use brokerkit::{Broker, Context, Error, ErrorKind, Message, RetryPolicy};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> brokerkit::Result<()> {
    let registry = prometheus::Registry::new();
    let prometheus_reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, e.to_string()))?;
    let stdout_reader = PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(prometheus_reader)
        .with_reader(stdout_reader)
        .build();
    // Before building producers and handlers: they take their instruments from it.
    opentelemetry::global::set_meter_provider(provider.clone());

    let addr = std::env::var("BROKERKIT_METRICS_ADDR").unwrap_or("127.0.0.1:9464".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot listen on {addr}: {e}")))?;
    tokio::spawn(serve_metrics(listener, registry.clone()));

    let broker = Broker::from_env().await?;
    let destination = format!("observability-{}", std::process::id());
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let policy = if broker.capabilities().delayed_redelivery.is_available() {
        RetryPolicy::exponential(Duration::from_millis(20), 3)
    } else {
        RetryPolicy::immediate(3)
    };
    let handler = broker
        .consumer(&destination)
        .group("reports")
        .retry(policy)
        .concurrency(4)
        .handle_raw(|ctx: Context, m: Message| async move {
            match m.headers.get("kind") {
                Some("flaky") if ctx.attempt() == 1 => {
                    Err(Error::new(ErrorKind::Handler, "flaky").into())
                }
                Some("poison") => Err(Error::new(ErrorKind::Rejected, "poison").into()),
                _ => Ok(()),
            }
        })
        .start(async move { stop_in.notified().await })
        .await?;
    let producer = broker.producer(&destination).build().await?;
    for i in 0..100 {
        let kind = match i % 10 {
            0 => "flaky",
            9 => "poison",
            _ => "ok",
        };
        let mut m = Message::new(format!("{{\"n\":{i}}}"));
        m.headers.insert("kind", kind)?;
        producer.send(m).await?;
    }
    while handler.health().report.total() < 110 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("handler: {:?}", handler.health());
    println!("broker:  {:?}", broker.health());

    let scraped = scrape(&addr).await;
    println!("\nPrometheus endpoint http://{addr}/metrics serves:");
    for line in scraped.lines().filter(|l| l.starts_with("# TYPE")) {
        println!("  {line}");
    }
    stop.notify_one();
    println!("\nreport: {:?}", handler.join().await?);
    println!("\nstdout exporter:");
    provider
        .force_flush()
        .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
    broker.close().await
}

/// A minimal `/metrics` endpoint (any path answers with the text exposition format).
async fn serve_metrics(listener: tokio::net::TcpListener, registry: prometheus::Registry) {
    use prometheus::Encoder;
    while let Ok((mut socket, _)) = listener.accept().await {
        let mut request = [0u8; 1024];
        let _ = socket.read(&mut request).await;
        let mut body = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut body);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(&body).await;
    }
}

/// Reads our own endpoint, as Prometheus would.
async fn scrape(addr: &str) -> String {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out
}
