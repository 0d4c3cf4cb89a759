//! Lag of a memory consumer group: exact counts from the group's queue.

use brokerkit_core::{Lag, LagAccuracy};

use super::destination::DEFAULT_GROUP;
use super::Inner;

/// The lag of `group` (default group when `None`) on `destination`. A destination never used
/// and a group not subscribed yet (while other groups are) have nothing waiting for them; a
/// group not subscribed yet on a destination no group has joined reports the backlog it will
/// adopt on subscribing.
pub(super) fn lag(inner: &Inner, destination: &str, group: Option<&str>) -> Lag {
    let dest = inner
        .destinations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(destination)
        .cloned();
    let group = dest.and_then(|d| d.group_for_lag(group.unwrap_or(DEFAULT_GROUP)));
    let (ready, delayed, in_flight) = group.map_or((0, 0, 0), |g| g.counts());
    Lag::from_parts(
        Some(ready as u64),
        Some(in_flight as u64),
        Some(delayed as u64),
        LagAccuracy::Exact,
    )
}

#[cfg(test)]
mod tests {
    use brokerkit_core::{Backend, ConsumerOptions, Message};

    use crate::memory::{MemoryBroker, MemoryConfig};

    #[tokio::test]
    async fn counts_waiting_in_flight_and_the_first_groups_backlog() {
        let b = MemoryBroker::new(MemoryConfig::default());
        assert_eq!(b.lag("q", None).await.unwrap().total, 0);
        let p = b.producer("q").await.unwrap();
        for i in 0..5 {
            p.send(Message::new(format!("{i}"))).await.unwrap();
        }
        // No group yet: the backlog waits for the first one.
        assert_eq!(b.lag("q", Some("g")).await.unwrap().total, 5);
        let opts = ConsumerOptions {
            group: Some("g".into()),
            prefetch: 8,
        };
        let mut c = b.consumer("q", &opts).await.unwrap();
        let d = c.next().await.unwrap().unwrap();
        let l = b.lag("q", Some("g")).await.unwrap();
        assert_eq!((l.total, l.waiting, l.in_flight), (5, Some(4), Some(1)));
        d.ack().await.unwrap();
        assert_eq!(b.lag("q", Some("g")).await.unwrap().total, 4);
        // Another group, not subscribed: nothing is kept for it.
        assert_eq!(b.lag("q", Some("other")).await.unwrap().total, 0);
    }
}
