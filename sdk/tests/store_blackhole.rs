//! The idempotency stores (PostgreSQL, Redis) against a server that stops answering (issue
//! 12, item 8): a TCP forwarder to the real server that can be paused (bytes held, nothing
//! answered, the connection kept open). Every query must give up within `query_timeout_ms`
//! with a retryable `Timeout`, dropping a pending call (shutdown) must return at once, the
//! store must work again once the server answers, and bad timeouts are `Config` errors that
//! never print the password.
#![cfg(any(feature = "postgres", feature = "redis"))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::idempotency::Claim;
use brokerkit::{connect_store, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A forwarder to `target` on a free port; `true` in the flag black-holes it.
async fn forwarder(target: &'static str) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let paused = Arc::new(AtomicBool::new(false));
    let flag = paused.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, flag.clone()));
            tokio::spawn(pump(sr, cw, flag.clone()));
        }
    });
    (port, paused)
}

/// One store behind a forwarder: `name` as in `BROKERKIT_SKIP_BROKERS`, the server's
/// address, and the store URL for a port (with `query_timeout_ms=400`).
async fn times_out_each_query(name: &str, target: &'static str, url: impl Fn(u16) -> String) {
    let skip = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == name) {
        eprintln!("SKIP {name}: listed in BROKERKIT_SKIP_BROKERS");
        return;
    }
    let (port, paused) = forwarder(target).await;
    let store = connect_store(&url(port)).await.unwrap();
    let key = format!("blackhole-{}", uuid::Uuid::new_v4());
    assert!(matches!(
        store.claim(&key, Duration::from_secs(5)).await.unwrap(),
        Claim::Acquired(_)
    ));
    paused.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        store.claim(&format!("{key}-2"), Duration::from_secs(5)),
    )
    .await
    .expect("a claim against a black-holed server must give up")
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{name}: {e}");
    assert!(e.is_retryable());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Shutdown: a pending call is dropped and returns at once.
    let key3 = format!("{key}-3");
    let pending = store.claim(&key3, Duration::from_secs(5));
    let t = Instant::now();
    assert!(tokio::time::timeout(Duration::from_millis(100), pending)
        .await
        .is_err());
    assert!(t.elapsed() < Duration::from_millis(500));
    // Back up: the store reconnects and works again.
    paused.store(false, Ordering::SeqCst);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(Claim::Acquired(_)) = store
            .claim(&format!("{key}-4"), Duration::from_secs(5))
            .await
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "{name}: the store recovers after the server answers again"
    );
}

async fn bad_query_timeouts_are_refused(url: impl Fn(&str) -> String) {
    for v in ["0", "-1", "soon"] {
        let e = connect_store(&url(v)).await.err().expect("refused");
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(!e.to_string().contains("PW"), "{e}");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_black_holed_database_times_out_each_query() {
        super::times_out_each_query("postgres", "127.0.0.1:5432", |port| {
            format!("postgres://postgres@127.0.0.1:{port}/test?query_timeout_ms=400")
        })
        .await;
    }

    #[tokio::test]
    async fn bad_query_timeouts_are_config_errors() {
        super::bad_query_timeouts_are_refused(|v| {
            format!("postgres://u:PW@127.0.0.1:1/test?query_timeout_ms={v}")
        })
        .await;
    }
}

#[cfg(feature = "redis")]
mod redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_black_holed_redis_times_out_each_query() {
        super::times_out_each_query("redis", "127.0.0.1:6379", |port| {
            format!("redis://127.0.0.1:{port}/?query_timeout_ms=400")
        })
        .await;
    }

    #[tokio::test]
    async fn bad_query_timeouts_are_config_errors() {
        super::bad_query_timeouts_are_refused(|v| {
            format!("redis://:PW@127.0.0.1:1/?query_timeout_ms={v}")
        })
        .await;
    }
}
