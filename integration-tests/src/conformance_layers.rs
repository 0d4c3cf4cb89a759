//! Conformance cases for the layers (correlation, schema validation, idempotency,
//! retry/dead-letter, handler shutdown), run for every adapter like the core cases.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::{
    dead_letter_destination, Context, DeadLetterEnvelope, ErrorKind, Event, Headers, Idempotency,
    Message, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use crate::harness::{Ctx, Outcome, Stop};

/// The event the layer cases send.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct TestEvent {
    /// An id.
    pub id: u32,
    /// A name.
    pub name: String,
}

impl Event for TestEvent {
    const NAME: &'static str = "conformance.test";
    const VERSION: u32 = 1;
}

/// Resolves once `cond` holds, or panics after the receive timeout.
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

fn retry_policy(c: &Ctx, attempts: u32) -> RetryPolicy {
    if c.broker.capabilities().delayed_redelivery.is_available() {
        RetryPolicy::exponential(Duration::from_millis(50), attempts).without_jitter()
    } else {
        RetryPolicy::immediate(attempts)
    }
}

/// A message sent from inside a handler inherits the correlation id and takes the handled
/// message's id as causation id; one sent outside starts a new correlation.
pub async fn correlation_flows(c: Ctx) -> Outcome {
    let (a, b) = (c.dest("a"), c.dest("b"));
    let forward = c.broker.producer(&b).build().await.unwrap();
    let seen: Arc<Mutex<Option<(String, String)>>> = Arc::default();
    let seen_in = seen.clone();
    let handler = c
        .broker
        .consumer(&a)
        .group("g")
        .handle_raw(move |ctx: Context, _m| {
            let forward = forward.clone();
            let seen = seen_in.clone();
            async move {
                *seen.lock().unwrap() = Some((
                    ctx.message_id().unwrap_or_default().to_string(),
                    ctx.correlation_id().unwrap_or_default().to_string(),
                ));
                Ok(forward.send(Message::new("next")).await?)
            }
        });
    let stop = Stop::new();
    let mut downstream = c.broker.consumer(&b).group("g").build().await.unwrap();
    let run = handler.start(stop.signal()).await.unwrap();
    let mut first = Headers::new();
    first
        .set_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .unwrap();
    c.broker
        .producer(&a)
        .build()
        .await
        .unwrap()
        .send(Message::new("first").with_headers(first))
        .await
        .unwrap();
    let d = c.recv(&mut downstream).await;
    let (a_id, a_corr) = seen.lock().unwrap().clone().expect("handler ran");
    assert_eq!(a_corr, a_id, "sent outside a handler: a new correlation");
    let h = &d.message().headers;
    assert_eq!(h.correlation_id(), Some(a_corr.as_str()));
    assert_eq!(h.causation_id(), Some(a_id.as_str()));
    assert!(h.message_id().is_some_and(|id| id != a_id));
    assert!(
        h.traceparent()
            .is_some_and(|t| t.contains("0af7651916cd43dd8448eb211c80319c")),
        "trace id carried on: {:?}",
        h.traceparent()
    );
    d.ack().await.unwrap();
    stop.now();
    run.join().await.unwrap();
    Outcome::Passed
}

/// With the same idempotency key, the handler runs once; duplicates are acked.
pub async fn idempotent_handler(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let runs = Arc::new(AtomicUsize::new(0));
    let runs_in = runs.clone();
    let store = brokerkit::connect_store("memory://").await.unwrap();
    let handler = c
        .broker
        .consumer(&dest)
        .group("g")
        .idempotency(Idempotency::new(store))
        .handle::<TestEvent, _, _>(move |_ctx, _ev| {
            let runs = runs_in.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
    let stop = Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    for (i, key) in ["k1", "k1", "k2", "k1"].into_iter().enumerate() {
        let mut m = brokerkit::encode_event(&TestEvent {
            id: i as u32,
            name: "x".into(),
        })
        .unwrap();
        m.headers.set_idempotency_key(key).unwrap();
        p.send(m).await.unwrap();
    }
    until("two handled keys", || runs.load(Ordering::SeqCst) >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "{report:?}");
    assert_eq!(report.acked, 2, "{report:?}");
    if !c.broker.capabilities().native_dedup {
        assert_eq!(report.duplicates, 2, "{report:?}");
    }
    Outcome::Passed
}

/// A failing handler is retried with backoff, then dead-lettered with the envelope.
pub async fn retry_then_dead_letter(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    if !caps.redelivery || !caps.dead_letter.is_available() {
        return Outcome::Skipped("no redelivery or no dead-letter destination".into());
    }
    let dest = c.dest("q");
    let mut dead = c
        .broker
        .consumer(&dead_letter_destination(&dest))
        .group("ops")
        .build()
        .await
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let attempts_in = attempts.clone();
    let handler = c
        .broker
        .consumer(&dest)
        .group("g")
        .retry(retry_policy(&c, 3))
        .handle::<TestEvent, _, _>(move |_ctx, _ev| {
            let attempts = attempts_in.clone();
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(brokerkit::Error::new(ErrorKind::Handler, "payment service down").into())
            }
        });
    let stop = Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    p.send_event(&TestEvent {
        id: 1,
        name: "n".into(),
    })
    .await
    .unwrap();
    let dl = c.recv(&mut dead).await;
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
    assert_eq!(env.attempts, 3);
    assert_eq!(env.reason.error_kind, Some(ErrorKind::Handler));
    assert!(
        env.reason.reason.contains("gave up after 3 attempts"),
        "{}",
        env.reason.reason
    );
    assert!(env.reason.reason.contains("payment service down"));
    assert!(env.first_failure <= env.last_failure);
    assert_eq!(
        dl.message().headers.event_type(),
        Some(TestEvent::NAME),
        "original headers kept"
    );
    dl.ack().await.unwrap();
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!((report.retried, report.dead_lettered), (2, 1), "{report:?}");
    Outcome::Passed
}

/// Malformed JSON, a wrong event type and a schema violation never reach the handler: each
/// is dead-lettered with its reason (and the violations); the consumer keeps going.
pub async fn bad_payloads_dead_lettered(c: Ctx) -> Outcome {
    if !c.broker.capabilities().dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("q");
    let mut dead = c
        .broker
        .consumer(&dead_letter_destination(&dest))
        .group("ops")
        .build()
        .await
        .unwrap();
    let handled: Arc<Mutex<Vec<TestEvent>>> = Arc::default();
    let handled_in = handled.clone();
    let handler = c
        .broker
        .consumer(&dest)
        .group("g")
        .handle::<TestEvent, _, _>(move |_ctx, ev| {
            let handled = handled_in.clone();
            async move {
                handled.lock().unwrap().push(ev);
                Ok(())
            }
        });
    let stop = Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    let typed = |body: &str, event_type: &str| {
        let mut h = Headers::new();
        h.set_event_type(event_type).unwrap();
        h.set_event_version(1).unwrap();
        Message::new(body.to_string()).with_headers(h)
    };
    p.send(typed("{not json", TestEvent::NAME)).await.unwrap();
    p.send(typed(r#"{"id":1,"name":"x"}"#, "something.else"))
        .await
        .unwrap();
    p.send(typed(r#"{"id":"seven"}"#, TestEvent::NAME))
        .await
        .unwrap();
    p.send_event(&TestEvent {
        id: 9,
        name: "good".into(),
    })
    .await
    .unwrap();
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let dl = c.recv(&mut dead).await;
        let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
        reasons.push((
            env.reason.error_kind,
            env.reason.reason.clone(),
            env.reason.validation_errors.clone(),
        ));
        dl.ack().await.unwrap();
    }
    until("the good event", || !handled.lock().unwrap().is_empty()).await;
    stop.now();
    run.join().await.unwrap();
    assert_eq!(
        *handled.lock().unwrap(),
        vec![TestEvent {
            id: 9,
            name: "good".into()
        }]
    );
    assert!(
        reasons
            .iter()
            .any(|(k, r, _)| *k == Some(ErrorKind::Decode) && r.contains("not valid JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(k, r, _)| *k == Some(ErrorKind::Decode) && r.contains("something.else")),
        "{reasons:?}"
    );
    let (_, _, issues) = reasons
        .iter()
        .find(|(k, _, _)| *k == Some(ErrorKind::Validation))
        .expect("a validation dead letter");
    let pointers: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
    assert!(pointers.contains(&"/id"), "{issues:?}");
    assert!(
        issues.iter().any(|i| i.reason.contains("name")),
        "missing field named: {issues:?}"
    );
    Outcome::Passed
}

/// Shutdown stops intake, lets running handlers finish within the drain timeout, cancels and
/// nacks the rest; the cancelled message is delivered again and nothing is dead-lettered.
pub async fn handler_shutdown_drains(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    if !caps.redelivery {
        return Outcome::Skipped("no redelivery: a cancelled message cannot come back".into());
    }
    let dest = c.dest("q");
    let mut dead = None;
    if caps.dead_letter.is_available() {
        dead = Some(
            c.broker
                .consumer(&dead_letter_destination(&dest))
                .group("ops")
                .build()
                .await
                .unwrap(),
        );
    }
    let started = Arc::new(AtomicUsize::new(0));
    let started_in = started.clone();
    let handler = c
        .broker
        .consumer(&dest)
        .group("g")
        .concurrency(2)
        .drain_timeout(Duration::from_millis(700))
        .handle::<TestEvent, _, _>(move |_ctx, ev| {
            let started = started_in.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let work = if ev.name == "slow" { 60_000 } else { 300 };
                tokio::time::sleep(Duration::from_millis(work)).await;
                Ok(())
            }
        });
    let stop = Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let p = c.broker.producer(&dest).build().await.unwrap();
    p.send_event(&TestEvent {
        id: 1,
        name: "quick".into(),
    })
    .await
    .unwrap();
    p.send_event(&TestEvent {
        id: 2,
        name: "slow".into(),
    })
    .await
    .unwrap();
    until("both handlers running", || {
        started.load(Ordering::SeqCst) == 2
    })
    .await;
    stop.now();
    let report = run.join().await.unwrap();
    assert_eq!(
        (report.acked, report.cancelled, report.dead_lettered),
        (1, 1, 0),
        "{report:?}"
    );
    let mut again = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let d = c.recv(&mut again).await;
    let ev: TestEvent = serde_json::from_slice(&d.message().payload).unwrap();
    assert_eq!(ev.name, "slow");
    d.ack().await.unwrap();
    if let Some(dead) = dead.as_mut() {
        c.expect_nothing(dead, Duration::from_millis(300)).await;
    }
    Outcome::Passed
}
