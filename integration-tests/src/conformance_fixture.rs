//! Shared promises that need a per-adapter [`Fixture`]: an unreachable broker is a clear,
//! retryable error without secrets; foreign messages with headers brokerkit cannot carry are
//! delivered without them (listed), can be nacked and dead-lettered, and never stop the
//! consumer. Plus dead-letter flows every adapter keeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::core::headers::INVALID_HEADERS;
use brokerkit::{
    dead_letter_destination, ConnectOptions, DeadLetterEnvelope, DeadLetterReason, Delivery,
    ErrorKind, Headers, Message,
};

use crate::fixture::{Fixture, SECRET};
use crate::harness::{Ctx, Outcome};

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message().payload).into_owned()
}

/// Connecting where nothing listens: a retryable `Unavailable` error with the (redacted)
/// address and operation `connect`, in bounded time, never showing the secret. One attempt
/// (`no_retry`): `Broker::connect` would retry this error for its 30 s deadline.
pub async fn unreachable_broker(_c: Ctx, f: Arc<dyn Fixture>) -> Outcome {
    let Some(url) = f.unreachable_url() else {
        return Outcome::Skipped("the adapter has no network to be unreachable".into());
    };
    let started = Instant::now();
    let e = match ConnectOptions::default().no_retry().connect(&url).await {
        Ok(_) => panic!("connected to an unreachable broker"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.context().address.is_some(), "{e}");
    assert_eq!(e.context().operation, Some("connect"), "{e}");
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    Outcome::Passed
}

/// Malformed URLs of the adapter's schemes ([`Fixture::malformed_urls`]): neither
/// `BrokerUrl::parse` nor `Broker::connect` shows a secret they hold, in `Display` or `Debug`.
pub async fn malformed_urls_never_show_secrets(_c: Ctx, f: Arc<dyn Fixture>) -> Outcome {
    let urls = f.malformed_urls();
    if urls.is_empty() {
        return Outcome::Skipped("the fixture lists no malformed URLs".into());
    }
    for (url, secrets) in &urls {
        let check = |what: &str, e: &brokerkit::Error| {
            for shown in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
                for s in secrets {
                    assert!(
                        !shown.contains(s.as_str()),
                        "{what} {url:?} showed {s:?}: {shown}"
                    );
                }
            }
        };
        if let Err(e) = brokerkit::BrokerUrl::parse(url) {
            check("BrokerUrl::parse", &e);
        }
        let options = ConnectOptions::default().no_retry();
        let connect = options.connect(url);
        match tokio::time::timeout(Duration::from_secs(20), connect).await {
            Ok(Err(e)) => check("connect", &e),
            Ok(Ok(b)) => {
                let _ = b.close().await;
            }
            Err(_) => {}
        }
    }
    Outcome::Passed
}

/// A foreign message with headers brokerkit cannot carry arrives without them, their names
/// listed in `x-brokerkit-invalid-headers`; nacked it comes back with the same list; dead-
/// lettered it reaches the DLQ with its good headers and the envelope; the consumer goes on.
pub async fn foreign_headers_dropped_and_listed(c: Ctx, f: Arc<dyn Fixture>) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let dest = c.dest("foreign");
    let mut consumer = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let mut dead = match caps.dead_letter.is_available() {
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
    let Some(injected) = f.inject_foreign(&c.url, &dest, b"foreign").await else {
        return Outcome::Skipped("the fixture has no foreign sender for this broker".into());
    };
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("native")).await.unwrap();
    // The two may arrive in either order (e.g. different partitions).
    let mut foreign = None;
    for _ in 0..2 {
        let d = c.recv(&mut consumer).await;
        if text(&d) == "native" {
            d.ack().await.unwrap();
        } else {
            foreign = Some(d);
        }
    }
    let d = foreign.expect("the foreign message arrived");
    assert_eq!(text(&d), "foreign");
    let h = &d.message().headers;
    assert_eq!(h.get("x-ok"), Some("fine"), "{h:?}");
    let listed = h
        .get(INVALID_HEADERS)
        .expect("dropped headers are listed")
        .to_string();
    for name in &injected.invalid {
        assert!(listed.contains(name.as_str()), "{name} not in {listed:?}");
    }
    if !caps.redelivery {
        d.ack().await.unwrap();
        return Outcome::Passed;
    }
    d.nack(None).await.unwrap();
    let d = c.recv(&mut consumer).await;
    assert_eq!((text(&d), d.attempt()), ("foreign".to_string(), 2));
    assert_eq!(
        d.message().headers.get(INVALID_HEADERS),
        Some(listed.as_str())
    );
    let Some(dead) = dead.as_mut() else {
        d.ack().await.unwrap();
        return Outcome::Passed;
    };
    d.dead_letter(DeadLetterReason::new("foreign junk"))
        .await
        .unwrap();
    let dl = c.recv(dead).await;
    assert_eq!(text(&dl), "foreign");
    assert_eq!(dl.message().headers.get("x-ok"), Some("fine"));
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
    assert_eq!(
        (env.attempts, env.reason.reason.as_str()),
        (2, "foreign junk")
    );
    dl.ack().await.unwrap();
    c.expect_nothing(&mut consumer, Duration::from_millis(300))
        .await;
    Outcome::Passed
}

/// Dead letters written before anyone consumes the DLQ wait there: a DLQ consumer made later
/// (no group) gets them, payload and headers unchanged, with its own attempt count.
pub async fn dead_letters_wait_for_a_later_dlq_consumer(c: Ctx) -> Outcome {
    if !c.broker.capabilities().dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("q");
    let mut consumer = c
        .broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let h = Headers::new().with("x-order", "7").unwrap();
    producer
        .send(Message::new("poison").with_headers(h))
        .await
        .unwrap();
    let d = c.recv(&mut consumer).await;
    d.dead_letter(DeadLetterReason::new("bad")).await.unwrap();
    let dlq = dead_letter_destination(&dest);
    let mut dead = c.broker.consumer(&dlq).build().await.unwrap();
    let dl = c.recv(&mut dead).await;
    assert_eq!(text(&dl), "poison");
    assert_eq!(dl.message().headers.get("x-order"), Some("7"));
    assert_eq!(
        dl.attempt(),
        1,
        "a dead letter starts its own attempt count"
    );
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
    assert_eq!(env.original_group.as_deref(), Some("billing"));
    dl.ack().await.unwrap();
    Outcome::Passed
}
