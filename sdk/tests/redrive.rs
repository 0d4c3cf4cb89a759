//! Redrive moves dead letters back to their origin, with a filter and a limit.

use std::time::Duration;

use brokerkit::{redrive, Broker, DeadLetterReason, Headers, Message, RedriveOptions};

async fn dead_letter_three(broker: &Broker) {
    let mut c = broker
        .consumer("orders")
        .group("billing")
        .build()
        .await
        .unwrap();
    let p = broker
        .producer("orders")
        .without_default_layers()
        .build()
        .await
        .unwrap();
    for (i, tenant) in ["a", "b", "a"].iter().enumerate() {
        let h = Headers::new().with("x-tenant", *tenant).unwrap();
        p.send(Message::new(format!("order-{i}")).with_headers(h))
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let d = c.next().await.unwrap().unwrap();
        d.dead_letter(DeadLetterReason::new("downstream outage"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn filtered_redrive_moves_matching_messages_back_unchanged() {
    let broker = Broker::connect("memory://").await.unwrap();
    // Subscribe the ops group first: it is the group that holds the dead letters.
    let _ops = broker
        .consumer("orders.dlq")
        .group("ops")
        .build()
        .await
        .unwrap();
    drop(_ops);
    dead_letter_three(&broker).await;
    let mut billing = broker
        .consumer("orders")
        .group("billing")
        .build()
        .await
        .unwrap();

    let opts = RedriveOptions::default()
        .group("ops")
        .idle(Duration::from_millis(200))
        .filter(|m, env| {
            m.headers.get("x-tenant") == Some("a") && env.reason.reason.contains("outage")
        });
    let report = redrive(&broker, "orders.dlq", opts).await.unwrap();
    assert_eq!(report.total_moved(), 2);
    assert_eq!(report.moved.get("orders"), Some(&2));
    assert_eq!(report.skipped, 1);

    for _ in 0..2 {
        let d = tokio::time::timeout(Duration::from_secs(2), billing.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.message().headers.get("x-tenant"), Some("a"));
        assert!(
            d.message()
                .headers
                .iter()
                .all(|(n, _)| !brokerkit::core::dead_letter::is_envelope_header(n)),
            "envelope removed"
        );
        d.ack().await.unwrap();
    }
    // The filtered-out message is still dead-lettered; a limit of 1 moves just it.
    let report = redrive(
        &broker,
        "orders.dlq",
        RedriveOptions::default()
            .group("ops")
            .limit(1)
            .idle(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(report.total_moved(), 1);
    let d = tokio::time::timeout(Duration::from_secs(2), billing.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(d.message().headers.get("x-tenant"), Some("b"));
}
