//! CloudEvents interop with a non-Rust client on Kafka: the Python `cloudevents` SDK with
//! confluent-kafka (`tests/cloudevents_interop.py`) sends a binary-mode CloudEvent that
//! brokerkit handles with its id, type and time; and reads, as a CloudEvent, what a brokerkit
//! producer with `.cloudevents(..)` sent.
//!
//! Needs `python3` with `cloudevents` and `confluent-kafka` (`tests/requirements.txt`; `scripts/test` installs it);
//! without them the test prints SKIP, unless `BROKERKIT_REQUIRE_PYTHON=1`.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::cloudevents::CloudEvents;
use brokerkit::{Broker, Context, Event};
use brokerkit_integration_tests::broker_url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "com.example.interop.placed")]
struct Placed {
    id: u32,
}

/// What the handler saw: message id, event type, timestamp in ms, the event.
type Seen = Arc<Mutex<Vec<(String, String, u64, Placed)>>>;

fn script(args: &[&str]) -> Option<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloudevents_interop.py");
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("python3 runs");
    if out.status.code() == Some(3) {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(
            std::env::var("BROKERKIT_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("SKIP cloudevents_python: {why}");
        return None;
    }
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("the script prints JSON"))
}

fn bootstrap(url: &str) -> String {
    url.trim_start_matches("kafka://")
        .split(['?', '/'])
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_cloudevents_and_brokerkit_interoperate_on_kafka() {
    let Some(url) = broker_url("kafka", "BROKERKIT_KAFKA_URL", "kafka://127.0.0.1:9092") else {
        return;
    };
    let broker = Broker::connect(&url).await.expect("kafka broker");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (inbound, outbound) = (format!("ce-py-in-{run}"), format!("ce-py-out-{run}"));
    let host = bootstrap(&url);

    // Python → brokerkit.
    let seen: Seen = Arc::default();
    let seen_in = seen.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handler = broker
        .consumer(&inbound)
        .group("g")
        .handle::<Placed, _, _>(move |ctx: Context, e| {
            let seen = seen_in.clone();
            async move {
                let ms = ctx
                    .headers()
                    .timestamp()?
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64);
                seen.lock().unwrap().push((
                    ctx.message_id().unwrap_or_default().to_string(),
                    ctx.headers().event_type().unwrap_or_default().to_string(),
                    ms,
                    e,
                ));
                Ok(())
            }
        })
        .start(async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    let Some(sent) = script(&["produce", &host, &inbound]) else {
        let _ = stop_tx.send(());
        handler.join().await.unwrap();
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Python CloudEvent never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    let report = handler.join().await.unwrap();
    assert_eq!(report.acked, 1, "{report:?}");
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![(
            sent["id"].as_str().unwrap().to_string(),
            Placed::NAME.to_string(),
            1_522_900_584_000,
            Placed { id: 42 }
        )]
    );

    // brokerkit → Python.
    let producer = broker
        .producer(&outbound)
        .cloudevents(CloudEvents::new().source("/brokerkit/orders"))
        .build()
        .await
        .unwrap();
    producer.send_event(&Placed { id: 7 }).await.unwrap();
    let read = script(&["consume", &host, &outbound, "30"]).expect("python ran before");
    let attrs = &read["attributes"];
    assert_eq!(attrs["specversion"], "1.0");
    assert_eq!(attrs["type"], Placed::NAME);
    assert_eq!(attrs["source"], "/brokerkit/orders");
    assert_eq!(attrs["datacontenttype"], "application/json");
    assert!(attrs["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(attrs["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(read["data"], serde_json::json!({"id": 7}));
    broker.close().await.ok();
}
