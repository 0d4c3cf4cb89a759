//! A service started before its broker connects once the broker comes up: the "broker" here
//! is a TCP forwarder to the real NATS server on 127.0.0.1:4222 that starts listening on a
//! free port only after 2 s. A bad URL fails at once.

use std::time::{Duration, Instant};

use brokerkit::{Broker, ConnectOptions, ErrorKind, Message};
use tokio::net::{TcpListener, TcpStream};

const NATS: &str = "127.0.0.1:4222";

/// A free port: bound, read, released.
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// After `delay`, listens on `port` and forwards every connection to NATS.
fn start_forwarder_after(delay: Duration, port: u16) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(NATS).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_waits_for_a_broker_that_starts_late() {
    if TcpStream::connect(NATS).await.is_err() {
        panic!("NATS is not running on {NATS}: start it with scripts/brokers up");
    }
    let port = free_port().await;
    let url = format!("nats+js://127.0.0.1:{port}");
    // Nothing listens yet: without retry the connect fails at once, retryable.
    let started = Instant::now();
    let e = ConnectOptions::default()
        .no_retry()
        .connect(&url)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    start_forwarder_after(Duration::from_secs(2), port);
    let started = Instant::now();
    let broker = Broker::connect(&url)
        .await
        .expect("connects once the broker is up");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "connected before the broker was up: {waited:?}"
    );
    assert!(waited < Duration::from_secs(15), "{waited:?}");

    // It is a working connection.
    let destination = format!("late-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = broker
        .consumer(&destination)
        .group("g")
        .build()
        .await
        .unwrap();
    broker
        .producer(&destination)
        .build()
        .await
        .unwrap()
        .send(Message::new("hello"))
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&d.message().payload[..], b"hello");
    d.ack().await.unwrap();
    consumer.close().await.unwrap();
    broker.close().await.unwrap();
}

#[tokio::test]
async fn a_bad_url_fails_at_once() {
    let started = Instant::now();
    let e = Broker::connect("nats+js://127.0.0.1:4222?no_such_key=1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e2 = Broker::connect("nosuchbroker://x").await.unwrap_err();
    assert_eq!(e2.kind(), ErrorKind::Config);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
