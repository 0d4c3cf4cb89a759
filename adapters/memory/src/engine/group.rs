//! One consumer group of a memory destination: its queue behind a lock, with wake-ups for
//! waiting consumers (messages) and producers (room).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use brokerkit_core::ClosedFlag;
use tokio::sync::Notify;

use super::queue::{Entry, Queue, Ticket};

/// How many times an empty group is looked at again (yielding in between) before a
/// consumer sleeps.
const POP_RETRIES: usize = 32;

/// Longest a writer waiting for room sleeps before looking again, woken or not.
const RECHECK: Duration = Duration::from_millis(5);

pub(crate) struct Group {
    state: Mutex<State>,
    /// Signalled when messages become ready.
    readable: Notify,
    /// Signalled when room frees up.
    writable: Notify,
    capacity: usize,
    /// Settlements that wake waiting writers (as many writers): an eighth of the capacity,
    /// 1 to 64.
    writer_batch: usize,
    visibility: Duration,
}

struct State {
    queue: Queue,
    waiting_readers: usize,
    waiting_writers: usize,
    /// Settlements since a waiting writer was last woken.
    settled_for_writers: usize,
}

impl Group {
    pub fn new(capacity: usize, visibility: Duration) -> Arc<Self> {
        Arc::new(Group {
            state: Mutex::new(State {
                queue: Queue::new(),
                waiting_readers: 0,
                waiting_writers: 0,
                settled_for_writers: 0,
            }),
            readable: Notify::new(),
            writable: Notify::new(),
            capacity,
            writer_batch: (capacity / 8).clamp(1, 64),
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

    /// Adds messages, waiting while the group is full (backpressure). Adds as many as fit
    /// each time room frees up, and returns once all are stored, or when `deadline` passes or
    /// `closed` is set (then [`Pushed::stored`] says how many went in).
    pub async fn push_all(
        &self,
        mut entries: Vec<Entry>,
        deadline: &mut Deadline,
        closed: &ClosedFlag,
    ) -> Pushed {
        let total = entries.len();
        // Fast path: room for everything, no waiter registered with `writable`.
        if self.push_now(&mut entries, false) {
            return Pushed {
                stored: total,
                stop: None,
            };
        }
        self.wait_to_push(entries, total, deadline, closed).await
    }

    /// Adds one message if there is room now (waking one waiting reader); gives it back if
    /// the group is full.
    pub fn try_push(&self, entry: Entry) -> Result<(), Entry> {
        let wake = {
            let mut st = self.lock();
            if st.queue.len() >= self.capacity {
                return Err(entry);
            }
            st.queue.push(entry);
            st.waiting_readers > 0
        };
        if wake {
            self.readable.notify_one();
        }
        Ok(())
    }

    /// Adds one message: [`Group::push_all`] without a `Vec` while there is room.
    pub async fn push_one(
        &self,
        entry: Entry,
        deadline: &mut Deadline,
        closed: &ClosedFlag,
    ) -> Pushed {
        match self.try_push(entry) {
            Ok(()) => Pushed {
                stored: 1,
                stop: None,
            },
            Err(entry) => self.wait_to_push(vec![entry], 1, deadline, closed).await,
        }
    }

    /// The slow path of a push: waits for room until the deadline or close.
    async fn wait_to_push(
        &self,
        mut entries: Vec<Entry>,
        total: usize,
        deadline: &mut Deadline,
        closed: &ClosedFlag,
    ) -> Pushed {
        let deadline = deadline.get();
        while !entries.is_empty() {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.push_now(&mut entries, true) {
                break;
            }
            let stop = if closed.is_closed() {
                Some(Stop::Closed)
            } else {
                // Full at the deadline (the push above was the last try): give up. Else sleep
                // until woken (settlements wake writers in batches) or `RECHECK` has passed,
                // then look again: a writer never waits long while there is room.
                let now = Instant::now();
                if now >= deadline {
                    Some(Stop::Full)
                } else {
                    let wake_at = deadline.min(now + RECHECK);
                    let _ = tokio::time::timeout_at(wake_at.into(), notified).await;
                    None
                }
            };
            self.lock().waiting_writers -= 1;
            let stop = stop.or(closed.is_closed().then_some(Stop::Closed));
            if let Some(stop) = stop {
                return Pushed {
                    stored: total - entries.len(),
                    stop: Some(stop),
                };
            }
        }
        Pushed {
            stored: total,
            stop: None,
        }
    }

    /// Stores as many of `entries` as there is room for and wakes readers if any were stored.
    /// Returns whether all were stored; if not and `register` is set, counts the caller as a
    /// waiting writer (it must wait on `writable`, then decrement `waiting_writers`).
    fn push_now(&self, entries: &mut Vec<Entry>, register: bool) -> bool {
        let (wake_readers, done, pass_on) = {
            let mut st = self.lock();
            let room = self.capacity.saturating_sub(st.queue.len());
            let n = room.min(entries.len());
            for e in entries.drain(..n) {
                st.queue.push(e);
            }
            let done = entries.is_empty();
            if !done && register {
                st.waiting_writers += 1;
            }
            // A woken writer that leaves room behind wakes the next waiting one (see
            // `Group::settled`).
            let pass_on = register && done && room > n && st.waiting_writers > 0;
            (n.min(st.waiting_readers), done, pass_on)
        };
        // One reader per message stored (a reader woken for nothing waits again; one that
        // is cancelled passes its wake-up on to another waiter).
        for _ in 0..wake_readers {
            self.readable.notify_one();
        }
        if pass_on {
            self.writable.notify_one();
        }
        done
    }

    /// The next message, if one is deliverable now.
    pub fn try_pop(&self) -> Option<(Ticket, Entry)> {
        let now = super::clock::recent();
        self.lock().queue.pop(now, later_than(now, self.visibility))
    }

    /// Hands up to `max` messages deliverable now to `each`, under one lock and one clock
    /// read (`each` runs under the lock: it must be short and must not touch this group).
    /// "Now" is [`super::clock::recent`]: within a kernel tick.
    pub fn try_pop_many(&self, max: usize, mut each: impl FnMut((Ticket, Entry))) {
        if max == 0 {
            return;
        }
        let now = super::clock::recent();
        let deadline = later_than(now, self.visibility);
        let mut st = self.lock();
        for _ in 0..max {
            match st.queue.pop(now, deadline) {
                Some(one) => each(one),
                None => break,
            }
        }
    }

    /// Waits for the next message and hands it out. Cancel-safe.
    pub async fn pop(&self) -> (Ticket, Entry) {
        if let Some(got) = self.try_pop() {
            return got;
        }
        // A sender is often about to store the next message: look again a few times, letting
        // other tasks run in between, before sleeping (waking a sleeping consumer costs the
        // sender a system call and the consumer a trip through the OS scheduler).
        for _ in 0..POP_RETRIES {
            tokio::task::yield_now().await;
            if let Some(got) = self.try_pop() {
                return got;
            }
        }
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut st = self.lock();
                let now = Instant::now();
                if let Some(got) = st.queue.pop(now, later_than(now, self.visibility)) {
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

    /// After a settlement that freed one place: writers (see `writer_batch`), and what
    /// `readers` says for the readers. Wakes no one who is not waiting.
    fn settled(&self, mut st: MutexGuard<'_, State>, readers: Readers) {
        let wake_reader = st.waiting_readers > 0 && readers != Readers::Unchanged;
        // Writers wait for a batch of places (one wake-up, then a run of sends that find
        // room, instead of a wake-up per message); they also look again every `RECHECK`.
        // One writer is woken per batch, from the settling thread; each woken writer that
        // leaves room behind wakes the next (`push_now`), from its own thread, so a crowd of
        // waiting senders is woken one by one where they run, not all at once across the
        // runtime's threads.
        let wake_writer = if st.waiting_writers == 0 {
            st.settled_for_writers = 0;
            false
        } else {
            st.settled_for_writers += 1;
            let batch = st.settled_for_writers >= self.writer_batch;
            if batch {
                st.settled_for_writers = 0;
            }
            batch
        };
        drop(st);
        match readers {
            _ if !wake_reader => {}
            Readers::One => self.readable.notify_one(),
            // A new wake-up time: every waiting reader recomputes its timeout.
            Readers::All | Readers::Unchanged => self.readable.notify_waiters(),
        }
        if wake_writer {
            self.writable.notify_one();
        }
    }

    pub fn ack(&self, t: Ticket) -> bool {
        let mut st = self.lock();
        let (ok, unlocked) = st.queue.ack(t);
        // An ack makes a message deliverable only by unlocking its ordering key.
        let readers = if unlocked {
            Readers::One
        } else {
            Readers::Unchanged
        };
        self.settled(st, readers);
        ok
    }

    pub fn nack(&self, t: Ticket, delay: Option<Duration>) -> bool {
        let mut st = self.lock();
        let due = delay.filter(|d| !d.is_zero()).map(later);
        let ok = st.queue.nack(t, due);
        // Requeued now: one message to hand out; delayed: an earlier wake-up time maybe.
        let readers = if due.is_some() {
            Readers::All
        } else {
            Readers::One
        };
        self.settled(st, readers);
        ok
    }

    /// Keeps a held message invisible for `by` from now; `false` if the ticket is stale.
    pub fn extend(&self, t: Ticket, by: Duration) -> bool {
        self.lock().queue.extend(t, later(by))
    }

    pub fn take_for_dead_letter(&self, t: Ticket) -> Option<Entry> {
        self.lock().queue.take_for_dead_letter(t)
    }

    pub fn finish_dead_letter(&self, e: &Entry) {
        let mut st = self.lock();
        st.queue.finish_dead_letter(e);
        self.settled(st, Readers::One);
    }

    pub fn restore(&self, e: Entry) {
        let mut st = self.lock();
        st.queue.restore(e);
        self.settled(st, Readers::One);
    }

    /// Messages ready, delayed and in flight (for lag).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.lock().queue.counts()
    }

    /// Wakes every waiting consumer and sender (used on shutdown).
    pub fn wake_all(&self) {
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }
}

/// `now + by`, saturating at about 100 years (`Instant + Duration::MAX` panics): a nack delay
/// or lease that long means "not in this process's lifetime".
pub(crate) fn later(by: Duration) -> Instant {
    later_than(Instant::now(), by)
}

/// `now + by`, saturating as [`later`] does.
pub(crate) fn later_than(now: Instant, by: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(by.min(CAP))
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// Which waiting readers a settlement wakes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Readers {
    /// Nothing new to hand out.
    Unchanged,
    /// One message became deliverable.
    One,
    /// The earliest wake-up time may have moved.
    All,
}

/// A send's deadline, read from the clock only when the send has to wait (a send with room
/// reads no clock).
pub(crate) struct Deadline {
    timeout: Duration,
    at: Option<Instant>,
}

impl Deadline {
    /// `timeout` from the first wait on.
    pub fn after(timeout: Duration) -> Self {
        Deadline { timeout, at: None }
    }

    fn get(&mut self) -> Instant {
        *self.at.get_or_insert_with(|| later(self.timeout))
    }
}

/// How a [`Group::push_all`] ended.
pub(crate) struct Pushed {
    /// Messages stored.
    pub stored: usize,
    /// Why it stopped before storing all; `None` when all are stored.
    pub stop: Option<Stop>,
}

/// Why a push stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The group stayed full until the deadline.
    Full,
    /// The broker was closed.
    Closed,
}

/// Un-counts a waiting reader when its wait ends, even if the wait is cancelled.
struct WaitGuard<'a>(&'a Group);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting_readers -= 1;
    }
}
