//! Browse on the memory broker: looking moves nothing; dead letters with their envelopes;
//! redrive reports dead letters its group cannot reach instead of "moved 0".

use std::time::Duration;

use brokerkit::{redrive, Broker, DeadLetterReason, Message, RedriveOptions};

async fn next(c: &mut brokerkit::Consumer) -> brokerkit::Delivery {
    tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("in time")
        .expect("receive")
        .expect("open")
}

#[tokio::test]
async fn browsing_twice_shows_the_same_and_moves_nothing() {
    let b = Broker::connect("memory://").await.unwrap();
    let p = b.producer("orders").build().await.unwrap();
    for i in 0..3 {
        p.send(Message::new(format!("m{i}")).with_key(format!("k{i}")))
            .await
            .unwrap();
    }
    let first = b.browse("orders", 10).await.unwrap();
    let second = b.browse("orders", 10).await.unwrap();
    assert_eq!(first, second);
    let bodies: Vec<_> = first.iter().map(|m| m.message.payload.clone()).collect();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
    assert_eq!(first[1].message.key.as_deref(), Some("k1"));
    assert_eq!(b.browse("orders", 2).await.unwrap().len(), 2);
    // The first group still gets all three, first attempt.
    let mut c = b.consumer("orders").build().await.unwrap();
    for i in 0..3 {
        let d = next(&mut c).await;
        assert_eq!(d.attempt(), 1);
        assert_eq!(&d.message().payload[..], format!("m{i}").as_bytes());
        d.ack().await.unwrap();
    }
    assert!(b.browse("orders", 10).await.unwrap().is_empty());
    assert!(b.browse("nothing-here", 10).await.unwrap().is_empty());
    assert!(b.browse("orders", 0).await.is_err());
}

#[tokio::test]
async fn dead_letters_are_browsed_with_envelopes_and_redriven() {
    let b = Broker::connect("memory://").await.unwrap();
    let mut c = b.consumer("orders").group("svc").build().await.unwrap();
    let p = b.producer("orders").build().await.unwrap();
    p.send(Message::new("a")).await.unwrap();
    p.send(Message::new("b")).await.unwrap();
    for _ in 0..2 {
        let d = next(&mut c).await;
        let why = format!("bad {}", String::from_utf8_lossy(&d.message().payload));
        d.dead_letter(DeadLetterReason::new(why)).await.unwrap();
    }
    let dl = b.browse_dead_letters("orders.dlq", 10).await.unwrap();
    assert_eq!(dl.len(), 2);
    let env = dl[0].envelope.as_ref().unwrap();
    assert_eq!(env.reason.reason, "bad a");
    assert_eq!(env.original_group.as_deref(), Some("svc"));
    assert_eq!(b.browse_dead_letters("orders.dlq", 10).await.unwrap(), dl);
    let r = redrive(&b, "orders.dlq", RedriveOptions::default().rate(1000.0))
        .await
        .unwrap();
    assert_eq!(r.total_moved(), 2);
    assert_eq!(r.unreached, 0);
    assert!(b.browse("orders.dlq", 10).await.unwrap().is_empty());
    assert_eq!(&next(&mut c).await.message().payload[..], b"a");
}

#[tokio::test]
async fn redrive_says_when_its_group_cannot_see_the_dead_letters() {
    let b = Broker::connect("memory://").await.unwrap();
    // Another group took the dead-letter backlog first; the default group starts empty.
    let _other = b
        .consumer("orders.dlq")
        .group("other")
        .build()
        .await
        .unwrap();
    let p = b.producer("orders.dlq").build().await.unwrap();
    let mut m = Message::new("x");
    brokerkit::DeadLetterEnvelope {
        reason: DeadLetterReason::new("boom"),
        attempts: 1,
        original_destination: "orders".into(),
        original_group: None,
        first_failure: std::time::SystemTime::now(),
        last_failure: std::time::SystemTime::now(),
    }
    .write_to(&mut m.headers);
    p.send(m).await.unwrap();
    let r = redrive(
        &b,
        "orders.dlq",
        RedriveOptions::default().idle(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(r.total_moved(), 0);
    assert_eq!(r.unreached, 1, "{r:?}");
    let r = redrive(&b, "orders.dlq", RedriveOptions::default().group("other"))
        .await
        .unwrap();
    assert_eq!(r.total_moved(), 1);
}
