//! Memory broker under full groups, close and out-of-range options (issue 12, items 7, 10):
//! a send to a full group fails after the send timeout instead of blocking forever, `close()`
//! wakes a blocked sender with `Closed`, and extreme delays or timeouts do not panic.

use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Message};

#[tokio::test]
async fn send_to_a_group_nobody_consumes_times_out() {
    let b = Broker::connect("memory://?capacity=2&send_timeout_ms=300")
        .await
        .unwrap();
    // Two groups; "idle" never reads, like the default group redrive leaves on `<d>.dlq`.
    let mut busy = b.consumer("q").group("busy").build().await.unwrap();
    let _idle = b.consumer("q").group("idle").build().await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    p.send(Message::new("1")).await.unwrap();
    p.send(Message::new("2")).await.unwrap();
    let t = Instant::now();
    let send = tokio::time::timeout(Duration::from_secs(10), p.send(Message::new("3")))
        .await
        .expect("send gives up instead of blocking forever");
    let e = send.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let d = tokio::time::timeout(Duration::from_secs(2), busy.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    d.ack().await.unwrap();
}

#[tokio::test]
async fn close_wakes_a_blocked_sender_with_closed() {
    let b = Broker::connect("memory://?capacity=1").await.unwrap();
    let _c = b.consumer("q").build().await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    p.send(Message::new("1")).await.unwrap();
    let blocked = tokio::spawn({
        let p = p.clone();
        async move { p.send(Message::new("2")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!blocked.is_finished(), "send waits while the group is full");
    b.close().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(2), blocked)
        .await
        .expect("close wakes the sender")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
}

#[tokio::test]
async fn extreme_delays_and_timeouts_do_not_panic() {
    let b = Broker::connect(&format!(
        "memory://?visibility_timeout_ms={}&send_timeout_ms={}",
        u64::MAX,
        u64::MAX
    ))
    .await
    .unwrap();
    let mut c = b.consumer("q").build().await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    p.send(Message::new("x")).await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    d.nack(Some(Duration::MAX)).await.unwrap();
    p.send(Message::new("y")).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(2), c.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        &d.message().payload[..],
        b"y",
        "the nacked message waits ~forever"
    );
    d.ack().await.unwrap();
}
