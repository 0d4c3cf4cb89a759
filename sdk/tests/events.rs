//! Event evolution on the memory broker: versions with upcasters, the unaccepted-event
//! policy, routing by event type, and `#[derive(Event)]`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::handler::{Router, Unaccepted, Versions};
use brokerkit::{
    dead_letter_destination, Broker, Context, DeadLetterEnvelope, ErrorKind, Event, Headers,
    Message, RetryPolicy,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "order.placed", version = 1)]
struct PlacedV1 {
    order_id: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "order.placed", version = 2)]
struct PlacedV2 {
    order_id: u32,
    currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "order.placed", version = 3)]
struct PlacedV3 {
    order_id: u32,
    currency: String,
    lines: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "order.cancelled")]
struct Cancelled {
    order_id: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "payment.captured", version = 4)]
struct Captured {
    order_id: u32,
    cents: u64,
}

fn upcast(v1: PlacedV1) -> PlacedV2 {
    PlacedV2 {
        order_id: v1.order_id,
        currency: "EUR".into(),
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Stop(Arc<tokio::sync::Notify>);
impl Stop {
    fn new() -> Self {
        Stop(Arc::default())
    }
    fn signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let n = self.0.clone();
        async move { n.notified().await }
    }
    fn now(&self) {
        self.0.notify_one();
    }
}

#[test]
fn derive_sets_name_version_and_schema_file() {
    assert_eq!(PlacedV2::NAME, "order.placed");
    assert_eq!(PlacedV2::VERSION, 2);
    assert_eq!(Cancelled::VERSION, 1, "version defaults to 1");
    assert_eq!(Captured::schema_file_name(), "payment.captured.v4.json");
}

#[tokio::test]
async fn a_v2_handler_with_an_upcaster_handles_v1_and_v2_and_dead_letters_v3() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dead = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<PlacedV2>>> = Arc::default();
    let seen_in = seen.clone();
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .group("billing")
        .handle_versions(
            Versions::<PlacedV2>::new().upcast(upcast),
            move |_ctx: Context, e: PlacedV2| {
                let seen = seen_in.clone();
                async move {
                    seen.lock().unwrap().push(e);
                    Ok(())
                }
            },
        )
        .start(stop.signal())
        .await
        .unwrap();
    let p = broker.producer("orders").build().await.unwrap();
    p.send_event(&PlacedV1 { order_id: 1 }).await.unwrap();
    p.send_event(&PlacedV2 {
        order_id: 2,
        currency: "USD".into(),
    })
    .await
    .unwrap();
    p.send_event(&PlacedV3 {
        order_id: 3,
        currency: "USD".into(),
        lines: 1,
    })
    .await
    .unwrap();
    let dl = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert_eq!(dl.message().headers.event_version().unwrap(), Some(3));
    assert_eq!(env.reason.error_kind, Some(ErrorKind::Decode));
    assert!(
        env.reason
            .reason
            .contains("no handler accepts order.placed v3")
            && env
                .reason
                .reason
                .contains("order.placed v1, order.placed v2"),
        "{}",
        env.reason.reason
    );
    until("two handled", || seen.lock().unwrap().len() == 2).await;
    stop.now();
    let report = run.join().await.unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort_by_key(|e| e.order_id);
    assert_eq!(
        got,
        vec![
            PlacedV2 {
                order_id: 1,
                currency: "EUR".into()
            },
            PlacedV2 {
                order_id: 2,
                currency: "USD".into()
            }
        ]
    );
    assert_eq!((report.acked, report.dead_lettered), (2, 1));
}

#[tokio::test]
async fn each_version_is_validated_against_its_own_schema() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dead = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .handle_versions(
            Versions::<PlacedV2>::new().upcast(upcast),
            |_ctx, _e| async { Ok(()) },
        )
        .start(stop.signal())
        .await
        .unwrap();
    // Valid as v2 (it has a currency), but labelled v1 with a string order id: v1's schema
    // rejects it, and says where.
    let mut h = Headers::new();
    h.set_event_type("order.placed").unwrap();
    h.set_event_version(1).unwrap();
    broker
        .producer("orders")
        .build()
        .await
        .unwrap()
        .send(Message::new(r#"{"order_id":"one"}"#).with_headers(h))
        .await
        .unwrap();
    let dl = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert_eq!(env.reason.error_kind, Some(ErrorKind::Validation));
    assert_eq!(env.reason.validation_errors[0].pointer, "/order_id");
    assert!(env.reason.reason.contains("order.placed"), "{env:?}");
    stop.now();
    run.join().await.unwrap();
}

#[tokio::test]
async fn skip_acks_an_undeclared_version_without_handling_it() {
    let broker = Broker::connect("memory://").await.unwrap();
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .handle_versions(
            Versions::<PlacedV2>::new().on_unaccepted(Unaccepted::Skip),
            |_ctx, _e| async { Ok(()) },
        )
        .start(stop.signal())
        .await
        .unwrap();
    let p = broker.producer("orders").build().await.unwrap();
    p.send_event(&PlacedV1 { order_id: 1 }).await.unwrap();
    until("dropped", || run.health().report.dropped == 1).await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(
        (report.acked, report.dropped, report.dead_lettered),
        (0, 1, 0)
    );
    // Nothing went to the dead-letter destination.
    let mut dead = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dead.next())
            .await
            .is_err(),
        "skip must not dead-letter"
    );
}

#[tokio::test]
async fn retry_later_redelivers_then_dead_letters_when_attempts_run_out() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dead = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .retry(RetryPolicy::exponential(Duration::from_millis(10), 3).without_jitter())
        .handle_versions(
            Versions::<PlacedV2>::new().on_unaccepted(Unaccepted::RetryLater),
            |_ctx, _e| async { Ok(()) },
        )
        .start(stop.signal())
        .await
        .unwrap();
    let p = broker.producer("orders").build().await.unwrap();
    p.send_event(&PlacedV3 {
        order_id: 3,
        currency: "USD".into(),
        lines: 2,
    })
    .await
    .unwrap();
    let dl = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert_eq!(env.reason.error_kind, Some(ErrorKind::Unavailable));
    assert_eq!(env.attempts, 3);
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!((report.retried, report.dead_lettered), (2, 1));
}

#[tokio::test]
async fn a_router_sends_each_type_to_its_handler_and_applies_the_policy_to_others() {
    let broker = Broker::connect("memory://").await.unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    let router = Router::new()
        .on_versions(
            Versions::<PlacedV2>::new().upcast(upcast),
            move |_ctx, e: PlacedV2| {
                let log = a.clone();
                async move {
                    log.lock().unwrap().push(format!("placed {}", e.order_id));
                    Ok(())
                }
            },
        )
        .on(move |_ctx, e: Cancelled| {
            let log = b.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("cancelled {}", e.order_id));
                Ok(())
            }
        })
        .on(move |ctx: Context, e: Captured| {
            let log = c.clone();
            async move {
                assert!(ctx.message_id().is_some());
                log.lock().unwrap().push(format!("captured {}", e.cents));
                Ok(())
            }
        })
        .on_unaccepted(Unaccepted::Skip);
    assert_eq!(
        router.accepted(),
        vec![
            ("order.cancelled", 1),
            ("order.placed", 1),
            ("order.placed", 2),
            ("payment.captured", 4)
        ]
    );
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .handle_events(router)
        .start(stop.signal())
        .await
        .unwrap();
    let p = broker.producer("orders").build().await.unwrap();
    p.send_event(&PlacedV1 { order_id: 1 }).await.unwrap();
    p.send_event(&Cancelled { order_id: 1 }).await.unwrap();
    p.send_event(&Captured {
        order_id: 1,
        cents: 500,
    })
    .await
    .unwrap();
    p.send(Message::new("{}")).await.unwrap(); // no event type
    let mut h = Headers::new();
    h.set_event_type("order.shipped").unwrap();
    p.send(Message::new("{}").with_headers(h)).await.unwrap();
    until("all settled", || {
        let r = run.health().report;
        r.acked + r.dropped == 5
    })
    .await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!((report.acked, report.dropped), (3, 2));
    let mut got = log.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, vec!["cancelled 1", "captured 500", "placed 1"]);
}

#[tokio::test]
async fn a_router_dead_letters_unknown_types_by_default() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dead = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    let stop = Stop::new();
    let run = broker
        .consumer("orders")
        .handle_events(Router::new().on(|_ctx, _e: Cancelled| async { Ok(()) }))
        .start(stop.signal())
        .await
        .unwrap();
    let p = broker.producer("orders").build().await.unwrap();
    p.send_event(&Captured {
        order_id: 1,
        cents: 1,
    })
    .await
    .unwrap();
    let dl = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert!(
        env.reason.reason.contains(
            "no handler accepts payment.captured v4: this consumer routes order.cancelled"
        ),
        "{}",
        env.reason.reason
    );
    stop.now();
    run.join().await.unwrap();
}
