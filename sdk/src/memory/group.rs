//! One consumer group of a memory destination: its queue behind a lock, with wake-ups for
//! waiting consumers (messages) and producers (room).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::queue::{Entry, Queue, Ticket};

pub(crate) struct Group {
    state: Mutex<State>,
    /// Signalled when messages become ready.
    readable: Notify,
    /// Signalled when room frees up.
    writable: Notify,
    capacity: usize,
    visibility: Duration,
}

struct State {
    queue: Queue,
    waiting_readers: usize,
    waiting_writers: usize,
}

impl Group {
    pub fn new(capacity: usize, visibility: Duration) -> Arc<Self> {
        Arc::new(Group {
            state: Mutex::new(State {
                queue: Queue::new(),
                waiting_readers: 0,
                waiting_writers: 0,
            }),
            readable: Notify::new(),
            writable: Notify::new(),
            capacity,
            visibility,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated in a way that
        // loses messages (each method finishes its update before returning), so recover.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies of up to `limit` messages held, taking nothing.
    pub fn peek(&self, limit: usize) -> Vec<brokerkit_core::Message> {
        self.lock().queue.peek(limit)
    }

    /// Adds one message, waiting while the group is full (backpressure).
    pub async fn push(&self, entry: Entry) {
        let full = {
            let mut st = self.lock();
            if st.queue.len() < self.capacity {
                st.queue.push(entry);
                Err(st.waiting_readers > 0)
            } else {
                Ok(entry)
            }
        };
        match full {
            Ok(entry) => self.push_all(vec![entry]).await,
            Err(wake_readers) => {
                if wake_readers {
                    self.readable.notify_waiters();
                }
            }
        }
    }

    /// Adds messages, waiting while the group is full (backpressure). Adds as many as fit
    /// each time room frees up, and returns once all are stored.
    pub async fn push_all(&self, mut entries: Vec<Entry>) {
        while !entries.is_empty() {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_readers = {
                let mut st = self.lock();
                let room = self.capacity.saturating_sub(st.queue.len());
                let n = room.min(entries.len());
                for e in entries.drain(..n) {
                    st.queue.push(e);
                }
                if !entries.is_empty() {
                    st.waiting_writers += 1;
                }
                n > 0 && st.waiting_readers > 0
            };
            if wake_readers {
                self.readable.notify_waiters();
            }
            if entries.is_empty() {
                return;
            }
            notified.await;
            self.lock().waiting_writers -= 1;
        }
    }

    /// The next message, if one is deliverable now.
    pub fn try_pop(&self) -> Option<(Ticket, Entry)> {
        let now = Instant::now();
        self.lock().queue.pop(now, now + self.visibility)
    }

    /// Waits for the next message and hands it out. Cancel-safe.
    pub async fn pop(&self) -> (Ticket, Entry) {
        if let Some(got) = self.try_pop() {
            return got;
        }
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut st = self.lock();
                let now = Instant::now();
                if let Some(got) = st.queue.pop(now, now + self.visibility) {
                    return got;
                }
                st.waiting_readers += 1;
                st.queue.next_wakeup()
            };
            let _wait = WaitGuard(self);
            match wake_at {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// After a settlement: readers may have a message (requeued, or a key unlocked, or an
    /// earlier wake-up time), writers may have room.
    fn settled(&self, st: MutexGuard<'_, State>) {
        let (readers, writers) = (st.waiting_readers > 0, st.waiting_writers > 0);
        drop(st);
        if readers {
            self.readable.notify_waiters();
        }
        if writers {
            self.writable.notify_waiters();
        }
    }

    pub fn ack(&self, t: Ticket) -> bool {
        let mut st = self.lock();
        let ok = st.queue.ack(t);
        self.settled(st);
        ok
    }

    pub fn nack(&self, t: Ticket, delay: Option<Duration>) -> bool {
        let mut st = self.lock();
        let due = delay.filter(|d| !d.is_zero()).map(|d| Instant::now() + d);
        let ok = st.queue.nack(t, due);
        self.settled(st);
        ok
    }

    /// Keeps a held message invisible for `by` from now; `false` if the ticket is stale.
    pub fn extend(&self, t: Ticket, by: Duration) -> bool {
        self.lock().queue.extend(t, Instant::now() + by)
    }

    pub fn take_for_dead_letter(&self, t: Ticket) -> Option<Entry> {
        self.lock().queue.take_for_dead_letter(t)
    }

    pub fn finish_dead_letter(&self, e: &Entry) {
        let mut st = self.lock();
        st.queue.finish_dead_letter(e);
        self.settled(st);
    }

    pub fn restore(&self, e: Entry) {
        let mut st = self.lock();
        st.queue.restore(e);
        self.settled(st);
    }

    /// Messages ready, delayed and in flight (for lag).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.lock().queue.counts()
    }

    /// Wakes every waiting consumer (used on shutdown).
    pub fn wake_readers(&self) {
        self.readable.notify_waiters();
    }
}

/// Un-counts a waiting reader when its wait ends, even if the wait is cancelled.
struct WaitGuard<'a>(&'a Group);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting_readers -= 1;
    }
}
