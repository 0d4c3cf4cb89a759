//! Memory-broker behaviour beyond the shared conformance suite: visibility timeout,
//! backpressure, named instances, config and registry errors.

use std::time::Duration;

use brokerkit::{Broker, ErrorKind, Message};

async fn recv(c: &mut brokerkit::Consumer) -> brokerkit::Delivery {
    tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn visibility_timeout_redelivers_and_late_ack_is_expired() {
    let b = Broker::connect("memory://?visibility_timeout_ms=100")
        .await
        .unwrap();
    let mut c = b.consumer("q").build().await.unwrap();
    b.producer("q")
        .build()
        .await
        .unwrap()
        .send(Message::new("x"))
        .await
        .unwrap();
    let held = recv(&mut c).await;
    let again = recv(&mut c).await;
    assert_eq!(again.attempt(), 2);
    let e = held.ack().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeliveryExpired);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn full_group_makes_senders_wait_until_room() {
    let b = Broker::connect("memory://?capacity=2").await.unwrap();
    let mut c = b.consumer("q").build().await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    p.send(Message::new("1")).await.unwrap();
    p.send(Message::new("2")).await.unwrap();
    let blocked = tokio::spawn({
        let p = p.clone();
        async move { p.send(Message::new("3")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !blocked.is_finished(),
        "send must wait while the group is full"
    );
    recv(&mut c).await.ack().await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), blocked)
        .await
        .expect("send resumes once there is room")
        .unwrap()
        .unwrap();
    for expected in ["2", "3"] {
        let d = recv(&mut c).await;
        assert_eq!(&d.message().payload[..], expected.as_bytes());
        d.ack().await.unwrap();
    }
}

#[tokio::test]
async fn named_instances_are_shared_and_unnamed_are_private() {
    let a = Broker::connect("memory://shared-test").await.unwrap();
    let b = Broker::connect("memory://shared-test").await.unwrap();
    let mut c = b.consumer("q").build().await.unwrap();
    a.producer("q")
        .build()
        .await
        .unwrap()
        .send(Message::new("hi"))
        .await
        .unwrap();
    recv(&mut c).await.ack().await.unwrap();

    let private = Broker::connect("memory://").await.unwrap();
    let mut other = private.consumer("q").build().await.unwrap();
    Broker::connect("memory://")
        .await
        .unwrap()
        .producer("q")
        .build()
        .await
        .unwrap()
        .send(Message::new("elsewhere"))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), other.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn messages_sent_before_any_group_go_to_the_first_group() {
    let b = Broker::connect("memory://").await.unwrap();
    b.producer("q")
        .build()
        .await
        .unwrap()
        .send(Message::new("early"))
        .await
        .unwrap();
    let mut first = b.consumer("q").group("one").build().await.unwrap();
    let mut later = b.consumer("q").group("two").build().await.unwrap();
    recv(&mut first).await.ack().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), later.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn closed_broker_refuses_and_ends_consumers() {
    let b = Broker::connect("memory://").await.unwrap();
    let mut c = b.consumer("q").build().await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    let waiting = tokio::spawn(async move { c.next().await.map(|d| d.is_none()) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.close().await.unwrap();
    assert!(waiting.await.unwrap().unwrap(), "consumer ends on close");
    let e = p.send(Message::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn unknown_scheme_lists_registered_ones() {
    let e = Broker::connect("carrier-pigeon://coop").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("\"carrier-pigeon\"") && e.message().contains("memory"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_urls_and_keys_are_config_errors() {
    for (url, needle) in [
        ("memory://?capacity=0", "positive"),
        ("memory://?capacity=-1", "positive integer"),
        (
            "memory://?colour=blue",
            "accepted keys: capacity, visibility_timeout_ms, max_payload_bytes",
        ),
        ("not a url", "expected <scheme>://"),
    ] {
        let e = Broker::connect(url).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{url}");
        assert!(e.message().contains(needle), "{url}: {e}");
    }
}

#[tokio::test]
async fn from_env_defaults_to_memory() {
    // BROKERKIT_URL is unset or memory in this test process.
    if std::env::var(brokerkit::URL_ENV)
        .map(|u| u.starts_with("memory"))
        .unwrap_or(true)
    {
        assert_eq!(Broker::from_env().await.unwrap().adapter(), "memory");
    }
}

#[tokio::test]
async fn errors_carry_context() {
    let b = Broker::connect("memory://?max_payload_bytes=4")
        .await
        .unwrap();
    let p = b.producer("orders").build().await.unwrap();
    let e = p.send(Message::new("12345")).await.unwrap_err();
    let ctx = e.context();
    assert_eq!(
        (ctx.broker, ctx.destination.as_deref(), ctx.operation),
        (Some("memory"), Some("orders"), Some("send"))
    );
    assert_eq!(
        e.to_string(),
        "payload_too_large: payload is 5 bytes; the maximum is 4 bytes (broker=memory, destination=orders, operation=send)"
    );
}
