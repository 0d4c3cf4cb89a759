//! Wake-ups of a group: writers woken in batches still get in soon when a single place frees.

use std::time::{Duration, Instant};

use brokerkit_core::{ClosedFlag, Message};

use super::group::{Deadline, Group};
use super::queue::Entry;

fn entry(i: usize) -> Entry {
    Entry::new(Message::new(format!("m{i}").into_bytes()))
}

/// A group of `capacity` places, all taken, and its close flag.
fn full_group(capacity: usize) -> (std::sync::Arc<Group>, std::sync::Arc<ClosedFlag>) {
    let group = Group::new(capacity, Duration::from_secs(30));
    for i in 0..capacity {
        assert!(group.try_push(entry(i)).is_ok());
    }
    (group, std::sync::Arc::new(ClosedFlag::new()))
}

/// With a capacity of 1,000, a waiting writer is woken once per 64 settlements; a writer
/// waiting on a full group must still store its message soon after one place frees (it looks
/// again every few milliseconds), long before its 10 s deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_free_place_lets_a_waiting_writer_in_without_a_batch() {
    let (group, closed) = full_group(1000);
    let writer = {
        let (group, closed) = (group.clone(), closed.clone());
        tokio::spawn(async move {
            let mut deadline = Deadline::after(Duration::from_secs(10));
            let started = Instant::now();
            let pushed = group.push_one(entry(1000), &mut deadline, &closed).await;
            (pushed.stored, pushed.stop.is_none(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (ticket, _) = group.try_pop().expect("a message");
    assert!(group.ack(ticket));
    let (stored, done, waited) = writer.await.unwrap();
    assert_eq!((stored, done), (1, true));
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(group.counts(), (1000, 0, 0));
}

/// A full group that stays full times out at the deadline with nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_stays_full_times_out_at_the_deadline() {
    let (group, closed) = full_group(8);
    let mut deadline = Deadline::after(Duration::from_millis(120));
    let started = Instant::now();
    let pushed = group.push_one(entry(8), &mut deadline, &closed).await;
    assert_eq!(pushed.stored, 0);
    assert!(pushed.stop.is_some());
    assert!(started.elapsed() >= Duration::from_millis(120));
}

/// A crowd of writers waiting on a full group: one is woken per batch of settlements and
/// each passes the wake-up on while room is left, so all of them get in once places free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_writers_pass_the_wake_up_on_until_all_are_in() {
    let (group, closed) = full_group(64);
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let (group, closed) = (group.clone(), closed.clone());
            tokio::spawn(async move {
                let mut deadline = Deadline::after(Duration::from_secs(10));
                group.push_one(entry(100 + i), &mut deadline, &closed).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..40 {
        let (ticket, _) = group.try_pop().expect("a message");
        assert!(group.ack(ticket));
    }
    for w in writers {
        let pushed = w.await.unwrap();
        assert_eq!((pushed.stored, pushed.stop), (1, None));
    }
    assert_eq!(group.counts(), (64, 0, 0));
}
