//! Conformance cases for event evolution, run for every adapter: several versions of one
//! event on one destination (upcast for one handler; an undeclared version follows the
//! policy), and one consumer routing several event types to their typed handlers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::handler::{Router, Unaccepted, Versions};
use brokerkit::{dead_letter_destination, Context, DeadLetterEnvelope, ErrorKind, Event};
use serde::{Deserialize, Serialize};

use crate::harness::{Ctx, Outcome, Stop};

/// `conformance.order` v1.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "conformance.order", version = 1)]
pub struct OrderV1 {
    /// An id.
    pub id: u32,
}

/// `conformance.order` v2: adds a currency.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "conformance.order", version = 2)]
pub struct OrderV2 {
    /// An id.
    pub id: u32,
    /// ISO currency.
    pub currency: String,
}

/// `conformance.order` v3: nobody declared it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "conformance.order", version = 3)]
pub struct OrderV3 {
    /// An id.
    pub id: u32,
    /// ISO currency.
    pub currency: String,
    /// Line count.
    pub lines: u32,
}

/// `conformance.cancelled` v1.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "conformance.cancelled")]
pub struct Cancelled {
    /// An id.
    pub id: u32,
}

/// `conformance.paid` v1.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "conformance.paid")]
pub struct Paid {
    /// An id.
    pub id: u32,
    /// Amount.
    pub cents: u64,
}

fn upcast(v1: OrderV1) -> OrderV2 {
    OrderV2 {
        id: v1.id,
        currency: "EUR".into(),
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + crate::RECEIVE_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// v1 and v2 events on one destination all reach a v2 handler with a v1→v2 upcaster; none
/// is dead-lettered. An undeclared v3 follows the default policy: dead-lettered with the
/// reason (or, where the broker has no dead-letter destination, skipped by `Skip`).
pub async fn versions_upcast_on_one_destination(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let has_dlq = c.broker.capabilities().dead_letter.is_available();
    let mut dead = match has_dlq {
        true => Some(
            c.broker
                .consumer(&dead_letter_destination(&dest))
                .group("ops")
                .build()
                .await
                .unwrap(),
        ),
        false => None,
    };
    let versions = match has_dlq {
        true => Versions::<OrderV2>::new().upcast(upcast),
        false => Versions::<OrderV2>::new()
            .upcast(upcast)
            .on_unaccepted(Unaccepted::Skip),
    };
    let seen: Arc<Mutex<Vec<OrderV2>>> = Arc::default();
    let seen_in = seen.clone();
    let handler = c.broker.consumer(&dest).group("g").handle_versions(
        versions,
        move |_ctx: Context, e: OrderV2| {
            let seen = seen_in.clone();
            async move {
                seen.lock().unwrap().push(e);
                Ok(())
            }
        },
    );
    let stop = Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    for id in 0..4 {
        if id % 2 == 0 {
            p.send_event(&OrderV1 { id }).await.unwrap();
        } else {
            p.send_event(&OrderV2 {
                id,
                currency: "USD".into(),
            })
            .await
            .unwrap();
        }
    }
    p.send_event(&OrderV3 {
        id: 9,
        currency: "USD".into(),
        lines: 1,
    })
    .await
    .unwrap();
    until("four handled", || seen.lock().unwrap().len() == 4).await;
    if let Some(dead) = dead.as_mut() {
        let dl = c.recv(dead).await;
        let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
        assert_eq!(dl.message().headers.event_version().unwrap(), Some(3));
        assert_eq!(env.reason.error_kind, Some(ErrorKind::Decode));
        assert!(
            env.reason
                .reason
                .contains("no handler accepts conformance.order v3"),
            "{}",
            env.reason.reason
        );
        dl.ack().await.unwrap();
    } else {
        until("v3 skipped", || run.health().report.dropped == 1).await;
    }
    stop.now();
    let report = run.join().await.unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort_by_key(|e| e.id);
    let want: Vec<OrderV2> = (0..4)
        .map(|id| OrderV2 {
            id,
            currency: if id % 2 == 0 { "EUR" } else { "USD" }.into(),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(report.acked, 4, "{report:?}");
    assert_eq!(
        report.dead_lettered + report.dropped,
        1,
        "only v3 goes by the policy: {report:?}"
    );
    Outcome::Passed
}

/// One consumer with three typed handlers receives three event types in one stream, each
/// to its handler, in order per type.
pub async fn router_three_types(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, b, d) = (log.clone(), log.clone(), log.clone());
    let router = Router::new()
        .on_versions(
            Versions::<OrderV2>::new().upcast(upcast),
            move |_ctx, e: OrderV2| {
                let log = a.clone();
                async move {
                    log.lock().unwrap().push(format!("order {}", e.id));
                    Ok(())
                }
            },
        )
        .on(move |_ctx, e: Cancelled| {
            let log = b.clone();
            async move {
                log.lock().unwrap().push(format!("cancelled {}", e.id));
                Ok(())
            }
        })
        .on(move |_ctx, e: Paid| {
            let log = d.clone();
            async move {
                log.lock().unwrap().push(format!("paid {}", e.id));
                Ok(())
            }
        });
    let stop = Stop::new();
    let run = c
        .broker
        .consumer(&dest)
        .group("read-model")
        .handle_events(router)
        .start(stop.signal())
        .await
        .unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    for id in 0..3 {
        p.send_event(&OrderV1 { id }).await.unwrap();
        p.send_event(&Paid { id, cents: 100 }).await.unwrap();
        p.send_event(&Cancelled { id }).await.unwrap();
    }
    until("nine handled", || log.lock().unwrap().len() == 9).await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(report.acked, 9, "{report:?}");
    assert_eq!(report.dead_lettered + report.dropped + report.retried, 0);
    let got = log.lock().unwrap().clone();
    for kind in ["order", "paid", "cancelled"] {
        let of_kind: Vec<_> = got.iter().filter(|l| l.starts_with(kind)).collect();
        assert_eq!(of_kind.len(), 3, "{kind}: {got:?}");
    }
    Outcome::Passed
}

/// `conformance.ce` v1: the event of the CloudEvents cases.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Event)]
#[event(name = "com.example.conformance.ce")]
pub struct CeEvent {
    /// An id.
    pub id: u32,
}

/// What the handler saw: message id, timestamp in ms, the event.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<u64>, CeEvent)>>>;

/// A CloudEvents binary-mode message published by the broker's own client (as a producer in
/// another language would), with the attribute names of the broker's protocol binding, is
/// handled by a typed brokerkit handler: its id is the context's message id, its `type`
/// routes it, its `time` is the timestamp.
pub async fn foreign_cloudevent_is_read(c: Ctx, f: Arc<dyn crate::fixture::Fixture>) -> Outcome {
    use brokerkit::cloudevents::binding_of;
    let dest = c.dest("ce-in");
    let seen: Seen = Arc::default();
    let seen_in = seen.clone();
    let stop = Stop::new();
    let run = c
        .broker
        .consumer(&dest)
        .group("g")
        .handle::<CeEvent, _, _>(move |ctx: Context, e| {
            let seen = seen_in.clone();
            async move {
                let ms = ctx
                    .headers()
                    .timestamp()
                    .ok()
                    .flatten()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64);
                seen.lock()
                    .unwrap()
                    .push((ctx.message_id().map(str::to_string), ms, e));
                Ok(())
            }
        })
        .start(stop.signal())
        .await
        .unwrap();
    let p = binding_of(&c.broker).prefix();
    let names: Vec<String> = ["specversion", "id", "source", "type", "time"]
        .iter()
        .map(|a| format!("{p}{a}"))
        .collect();
    let headers: Vec<(&str, &str)> = vec![
        (names[0].as_str(), "1.0"),
        (names[1].as_str(), "ce-4711"),
        (names[2].as_str(), "/python/orders"),
        (names[3].as_str(), CeEvent::NAME),
        (names[4].as_str(), "2018-04-05T03:56:24Z"),
        ("content-type", "application/json"),
    ];
    if !f
        .inject_with_headers(&c.url, &dest, &headers, br#"{"id":7}"#)
        .await
    {
        stop.now();
        run.join().await.unwrap();
        return Outcome::Skipped("the fixture has no foreign sender for this broker".into());
    }
    until("the CloudEvent handled", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(report.acked, 1, "{report:?}");
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![(
            Some("ce-4711".to_string()),
            Some(1_522_900_584_000),
            CeEvent { id: 7 }
        )]
    );
    Outcome::Passed
}

/// A producer with CloudEvents on writes the binary-mode attributes under the broker's
/// binding (as the adapter declares it: `ce_`, `cloudEvents_`, `ce-`, …), next to brokerkit's
/// headers, and a brokerkit consumer still reads the event as usual.
pub async fn cloudevents_sent_in_binary_mode(c: Ctx) -> Outcome {
    use brokerkit::cloudevents::{binding_of, CloudEvents};
    let dest = c.dest("ce-out");
    let mut consumer = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let p = c
        .broker
        .producer(&dest)
        .cloudevents(CloudEvents::new().source("/conformance"))
        .build()
        .await
        .unwrap();
    p.send_event(&CeEvent { id: 1 }).await.unwrap();
    let d = c.recv(&mut consumer).await;
    let h = &d.message().headers;
    let pre = binding_of(&c.broker).prefix();
    let attr = |a: &str| h.get(&format!("{pre}{a}")).map(str::to_string);
    assert_eq!(attr("specversion").as_deref(), Some("1.0"), "{h:?}");
    assert_eq!(attr("id").as_deref(), h.message_id());
    assert!(h.message_id().is_some());
    assert_eq!(attr("type").as_deref(), Some(CeEvent::NAME));
    assert_eq!(attr("source").as_deref(), Some("/conformance"));
    let time = attr("time").expect("time");
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    assert_eq!(h.event_version().unwrap(), Some(1));
    let e: CeEvent = serde_json::from_slice(&d.message().payload).unwrap();
    assert_eq!(e, CeEvent { id: 1 });
    d.ack().await.unwrap();
    Outcome::Passed
}
