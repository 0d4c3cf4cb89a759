//! W3C trace context through OpenTelemetry: injected from the current `tracing` span on send,
//! extracted on receive as the parent of the handler's span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::{Broker, Message};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tokio::sync::Notify;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

fn trace_id_of_current_span() -> String {
    tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string()
}

#[tokio::test]
async fn traceparent_flows_from_sender_span_to_handler_span() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let broker = Broker::connect("memory://").await.unwrap();
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let seen_in = seen.clone();
    let stop = Arc::new(Notify::new());
    let stop_in = stop.clone();
    let handler = broker.consumer("orders").handle_raw(move |_ctx, _m| {
        let seen = seen_in.clone();
        async move {
            *seen.lock().unwrap() = Some(trace_id_of_current_span());
            Ok(())
        }
    });
    let run = tokio::spawn(handler.run_until(async move { stop_in.notified().await }));

    let producer = broker.producer("orders").build().await.unwrap();
    let span = tracing::info_span!("checkout");
    let sender_trace = async {
        producer.send(Message::new("x")).await.unwrap();
        trace_id_of_current_span()
    }
    .instrument(span)
    .await;
    assert_ne!(sender_trace, "00000000000000000000000000000000");

    for _ in 0..100 {
        if seen.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.notify_one();
    run.await.unwrap().unwrap();
    assert_eq!(seen.lock().unwrap().as_deref(), Some(sender_trace.as_str()));
}

#[tokio::test]
async fn traceparent_header_is_w3c() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let broker = Broker::connect("memory://").await.unwrap();
    let mut c = broker.consumer("q").build().await.unwrap();
    let p = broker.producer("q").build().await.unwrap();
    let trace = async {
        p.send(Message::new("x")).await.unwrap();
        trace_id_of_current_span()
    }
    .instrument(tracing::info_span!("send"))
    .await;
    let d = c.next().await.unwrap().unwrap();
    let tp = d.message().headers.traceparent().unwrap().to_string();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!((parts[0], parts[1]), ("00", trace.as_str()));
    d.ack().await.unwrap();
}
