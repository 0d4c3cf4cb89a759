//! Conformance cases for the delivery lifecycle: a handler slower than the broker's lease
//! (visibility timeout, `ack_wait`), and a prefetched backlog that waits longer than the
//! lease for a free handler. In both, every message's handler must run exactly once.
//!
//! They run on the suite's short-lease URL (a 2-second lease), or on the plain URL for brokers
//! with no lease (`Capabilities::lease` is `None`: nothing can expire while the consumer is
//! connected).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::{Broker, Context, Idempotency, IdempotencyStore, Message};

use crate::harness::{Ctx, Outcome, Stop};

/// Handler runs per message id, and the attempt each run saw.
type Runs = Arc<Mutex<HashMap<String, Vec<u32>>>>;

/// The broker to use: the short-lease one where the broker has a lease.
async fn lease_broker(c: &Ctx) -> Result<(Broker, Option<String>, Duration), Outcome> {
    if !c.broker.capabilities().redelivery {
        return Err(Outcome::Skipped(
            "at-most-once broker: nothing is held, nothing can expire".into(),
        ));
    }
    if c.broker.capabilities().lease.is_none() {
        return Ok((c.broker.clone(), None, Duration::from_secs(2)));
    }
    let Some(url) = &c.lease_url else {
        return Err(Outcome::Skipped(
            "the broker has a lease but the suite gave no short-lease URL".into(),
        ));
    };
    let broker = Broker::connect(url)
        .await
        .expect("connect with a short lease");
    let lease = broker.capabilities().lease.expect("a lease");
    assert!(
        lease <= Duration::from_secs(3),
        "the short-lease URL must set a lease of about 2 s, got {lease:?}"
    );
    Ok((broker, Some(url.clone()), lease))
}

/// A store both instances share: Redis where the suite has it, else one in-process store.
async fn shared_store() -> Arc<dyn IdempotencyStore> {
    let skipped = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    let redis = std::env::var("BROKERKIT_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    if !skipped.split(',').any(|s| s.trim() == "redis") {
        if let Ok(store) = brokerkit::connect_store(&redis).await {
            return store;
        }
    }
    brokerkit::connect_store("memory://").await.unwrap()
}

fn record(runs: &Runs, ctx: &Context) {
    let id = ctx.message_id().unwrap_or_default().to_string();
    runs.lock()
        .unwrap()
        .entry(id)
        .or_default()
        .push(ctx.attempt());
}

fn check_once(runs: &Runs, ids: &[String], lease_kept: bool) {
    let runs = runs.lock().unwrap();
    for id in ids {
        let seen = runs.get(id).cloned().unwrap_or_default();
        assert_eq!(
            seen.len(),
            1,
            "message {id} ran {} times (attempts {seen:?})",
            seen.len()
        );
        if lease_kept {
            assert_eq!(
                seen,
                vec![1],
                "message {id} was delivered again: its lease expired"
            );
        }
    }
}

async fn send_ids(broker: &Broker, dest: &str, n: usize) -> Vec<String> {
    let producer = broker.producer(dest).build().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("m-{i}-{}", uuid::Uuid::new_v4().simple());
        let mut m = Message::new(format!("{i}"));
        m.headers.set_message_id(id.clone()).unwrap();
        m.headers.set_idempotency_key(id.clone()).unwrap();
        producer.send(m).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn until_all(runs: &Runs, ids: &[String], within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let done = {
            let r = runs.lock().unwrap();
            ids.iter().all(|id| r.contains_key(id))
        };
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message was handled within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two instances share an idempotency store whose lease is as short as the broker's; the
/// handler takes three leases. Each message runs once, and (where the broker has a lease) is
/// never delivered a second time.
pub async fn slow_handler_keeps_its_lease(c: Ctx) -> Outcome {
    let (broker, _url, lease) = match lease_broker(&c).await {
        Ok(b) => b,
        Err(skip) => return skip,
    };
    let dest = c.dest("slow");
    let store = shared_store().await;
    let runs: Runs = Arc::default();
    let stop = Stop::new();
    let mut running = Vec::new();
    for _ in 0..2 {
        let runs = runs.clone();
        let handler = broker
            .consumer(&dest)
            .group("g")
            .prefetch(2)
            .idempotency(Idempotency::new(store.clone()).lease(lease))
            .handle_raw(move |ctx: Context, _m| {
                let runs = runs.clone();
                async move {
                    record(&runs, &ctx);
                    tokio::time::sleep(lease * 3).await;
                    Ok(())
                }
            });
        running.push(handler.start(stop.signal()).await.unwrap());
    }
    let ids = send_ids(&broker, &dest, 2).await;
    until_all(&runs, &ids, lease * 3 + Duration::from_secs(20)).await;
    // Long enough for an expired lease or claim to have produced a second run.
    tokio::time::sleep(lease * 4).await;
    stop.now();
    let (mut acked, mut again) = (0, 0);
    for r in running {
        let report = r.join().await.unwrap();
        acked += report.acked;
        again += report.duplicates + report.retried;
    }
    let lease_kept = broker.capabilities().lease.is_some();
    check_once(&runs, &ids, lease_kept);
    assert_eq!(acked, 2);
    if lease_kept {
        assert_eq!(
            again, 0,
            "a lease expired: the message reached the other instance"
        );
    }
    Outcome::Passed
}

/// A backlog of three times the prefetch, one handler at a time, each slower than the lease
/// divided by the prefetch: the last prefetched messages wait several leases for their turn.
/// None may expire and run twice.
pub async fn prefetched_backlog_keeps_its_lease(c: Ctx) -> Outcome {
    let (broker, _url, lease) = match lease_broker(&c).await {
        Ok(b) => b,
        Err(skip) => return skip,
    };
    let dest = c.dest("backlog");
    let prefetch = 2;
    let runs: Runs = Arc::default();
    let stop = Stop::new();
    let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
    let ids = send_ids(&broker, &dest, 3 * prefetch).await;
    consumer.close().await.unwrap();
    let per_message = lease * 6 / 10; // > lease / prefetch
    let runs_in = runs.clone();
    let handler = broker
        .consumer(&dest)
        .group("g")
        .prefetch(prefetch)
        .concurrency(1)
        .handle_raw(move |ctx: Context, _m| {
            let runs = runs_in.clone();
            async move {
                record(&runs, &ctx);
                tokio::time::sleep(per_message).await;
                Ok(())
            }
        })
        .start(stop.signal())
        .await
        .unwrap();
    until_all(&runs, &ids, per_message * 6 + Duration::from_secs(30)).await;
    tokio::time::sleep(lease * 2).await;
    stop.now();
    let report = handler.join().await.unwrap();
    // Attempts may start above 1 here (the subscribing consumer may have pre-fetched and
    // released some); an expired lease shows as a second run or a failed ack.
    check_once(&runs, &ids, false);
    assert_eq!(report.acked, ids.len() as u64, "{report:?}");
    assert_eq!(report.settle_failed, 0, "{report:?}");
    Outcome::Passed
}
