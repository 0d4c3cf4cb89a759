//! The state of one consumer group's queue: ready, delayed and in-flight messages, with
//! per-key ordering. Pure data structure (no async), so its rules are unit-tested directly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::time::{Instant, SystemTime};

use brokerkit_core::Message;

/// A stored message and its delivery history.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub message: Message,
    /// Deliveries so far.
    pub deliveries: u32,
    /// First nack, expiry or drop.
    pub first_failure: Option<SystemTime>,
}

impl Entry {
    pub fn new(message: Message) -> Self {
        Entry {
            message,
            deliveries: 0,
            first_failure: None,
        }
    }

    fn failed_now(&mut self) {
        self.first_failure.get_or_insert_with(SystemTime::now);
    }
}

struct Delayed {
    due: Instant,
    seq: u64,
    entry: Entry,
}

impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

struct Slot {
    generation: u32,
    held: Option<(Entry, Instant)>,
}

/// Identifies one handed-out delivery; stale once settled or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    slot: u32,
    generation: u32,
}

/// One group's queue.
pub(crate) struct Queue {
    ready: VecDeque<Entry>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Visibility deadlines, sorted. A record whose slot now holds a later deadline (after
    /// [`Queue::extend`]) or another generation is stale and skipped.
    deadlines: VecDeque<(Instant, Ticket)>,
    /// Keys with a message in flight or delayed: later messages of the key wait.
    locked_keys: HashSet<String>,
    in_flight: usize,
    seq: u64,
}

impl Queue {
    pub fn new() -> Self {
        Queue {
            ready: VecDeque::new(),
            delayed: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            locked_keys: HashSet::new(),
            in_flight: 0,
            seq: 0,
        }
    }

    /// Messages held: ready, delayed and in flight.
    pub fn len(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.in_flight
    }

    /// Copies of up to `limit` messages held (ready, then delayed by due time, then in flight),
    /// taking nothing (browse).
    pub fn peek(&self, limit: usize) -> Vec<Message> {
        let mut delayed: Vec<&Delayed> = self.delayed.iter().map(|Reverse(d)| d).collect();
        delayed.sort_by_key(|d| (d.due, d.seq));
        let held = self
            .slots
            .iter()
            .filter_map(|s| s.held.as_ref().map(|(e, _)| e));
        (self
            .ready
            .iter()
            .chain(delayed.into_iter().map(|d| &d.entry))
            .chain(held))
        .take(limit)
        .map(|e| e.message.clone())
        .collect()
    }

    /// Messages ready, delayed and in flight, apart (for lag).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.ready.len(), self.delayed.len(), self.in_flight)
    }

    pub fn push(&mut self, entry: Entry) {
        self.ready.push_back(entry);
    }

    /// Moves due delayed messages and expired in-flight messages back to ready.
    pub fn tick(&mut self, now: Instant) {
        while let Some(Reverse(d)) = self.delayed.peek() {
            if d.due > now {
                break;
            }
            let Some(Reverse(d)) = self.delayed.pop() else {
                break;
            };
            self.requeue_front(d.entry);
        }
        while let Some(&(deadline, ticket)) = self.deadlines.front() {
            if !self.is_current(ticket) {
                self.deadlines.pop_front();
                continue;
            }
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.held_deadline(ticket).is_some_and(|d| d > now) {
                continue; // extended: a later record stands for it
            }
            if let Some(mut entry) = self.take(ticket) {
                entry.failed_now();
                self.requeue_front(entry);
            }
        }
    }

    /// When `tick` next has work: the earliest delay or visibility deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let delayed = self.delayed.peek().map(|Reverse(d)| d.due);
        let expiry = self
            .deadlines
            .iter()
            .find(|(_, t)| self.is_current(*t))
            .map(|(d, _)| *d);
        match (delayed, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hands out the next deliverable message: the oldest ready one whose key is not locked.
    pub fn pop(&mut self, now: Instant, deadline: Instant) -> Option<(Ticket, Entry)> {
        self.tick(now);
        let index = if self.locked_keys.is_empty() {
            if self.ready.is_empty() {
                return None;
            }
            0
        } else {
            self.ready.iter().position(|e| match &e.message.key {
                Some(k) => !self.locked_keys.contains(k),
                None => true,
            })?
        };
        let mut entry = self.ready.remove(index)?;
        entry.deliveries += 1;
        if let Some(k) = &entry.message.key {
            self.locked_keys.insert(k.clone());
        }
        let delivered = entry.clone();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    held: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.held = Some((entry, deadline));
        let ticket = Ticket {
            slot,
            generation: s.generation,
        };
        self.in_flight += 1;
        self.deadlines.push_back((deadline, ticket));
        if self.deadlines.len() > 2 * self.in_flight + 1024 {
            // Settled out of order: drop stale records so this stays bounded by in-flight.
            let slots = &self.slots;
            self.deadlines.retain(|(_, t)| {
                slots[t.slot as usize].generation == t.generation
                    && slots[t.slot as usize].held.is_some()
            });
        }
        Some((ticket, delivered))
    }

    fn held_deadline(&self, t: Ticket) -> Option<Instant> {
        let s = self.slots.get(t.slot as usize)?;
        if s.generation != t.generation {
            return None;
        }
        s.held.as_ref().map(|(_, d)| *d)
    }

    /// Moves a held message's visibility deadline to `deadline`. `false` if the ticket is
    /// stale (settled, or expired and handed out again).
    pub fn extend(&mut self, t: Ticket, deadline: Instant) -> bool {
        if !self.is_current(t) {
            return false;
        }
        if let Some((_, d)) = &mut self.slots[t.slot as usize].held {
            *d = deadline;
        }
        let at = self.deadlines.partition_point(|(d, _)| *d <= deadline);
        self.deadlines.insert(at, (deadline, t));
        true
    }

    fn is_current(&self, t: Ticket) -> bool {
        self.slots
            .get(t.slot as usize)
            .is_some_and(|s| s.generation == t.generation && s.held.is_some())
    }

    /// Removes a held message; `None` if the ticket is stale. The key stays locked.
    fn take(&mut self, t: Ticket) -> Option<Entry> {
        if !self.is_current(t) {
            return None;
        }
        let s = &mut self.slots[t.slot as usize];
        let (entry, _) = s.held.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(t.slot);
        self.in_flight -= 1;
        Some(entry)
    }

    fn unlock(&mut self, entry: &Entry) {
        if let Some(k) = &entry.message.key {
            self.locked_keys.remove(k);
        }
    }

    fn requeue_front(&mut self, entry: Entry) {
        self.unlock(&entry);
        self.ready.push_front(entry);
    }

    /// Settles as done: whether the ticket was current (`false`: expired and handed out
    /// again), and whether an ordering key was unlocked.
    pub fn ack(&mut self, t: Ticket) -> (bool, bool) {
        match self.take(t) {
            Some(e) => {
                self.unlock(&e);
                (true, e.message.key.is_some())
            }
            None => (false, false),
        }
    }

    /// Puts the message back, due at `due` (`None`: now). Its key stays locked while it waits,
    /// so later messages of the key cannot overtake it.
    pub fn nack(&mut self, t: Ticket, due: Option<Instant>) -> bool {
        let Some(mut entry) = self.take(t) else {
            return false;
        };
        entry.failed_now();
        match due {
            None => self.requeue_front(entry),
            Some(due) => {
                self.seq += 1;
                self.delayed.push(Reverse(Delayed {
                    due,
                    seq: self.seq,
                    entry,
                }));
            }
        }
        true
    }

    /// Takes the message out for dead-lettering; the caller must `finish_dead_letter` or
    /// `restore` it.
    pub fn take_for_dead_letter(&mut self, t: Ticket) -> Option<Entry> {
        let mut e = self.take(t)?;
        e.failed_now();
        Some(e)
    }

    /// The message reached the dead-letter destination: release its key.
    pub fn finish_dead_letter(&mut self, entry: &Entry) {
        self.unlock(entry);
    }

    /// Puts back a message taken for dead-lettering that could not be moved.
    pub fn restore(&mut self, entry: Entry) {
        self.requeue_front(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(body: &str, key: Option<&str>) -> Entry {
        let mut m = Message::new(body.as_bytes().to_vec());
        m.key = key.map(str::to_string);
        Entry::new(m)
    }

    fn body(e: &Entry) -> &[u8] {
        &e.message.payload
    }

    #[test]
    fn fifo_and_ack() {
        let mut q = Queue::new();
        let now = Instant::now();
        let far = now + Duration::from_secs(30);
        q.push(msg("a", None));
        q.push(msg("b", None));
        let (t, e) = q.pop(now, far).unwrap();
        assert_eq!((body(&e), e.deliveries), (&b"a"[..], 1));
        assert!(q.ack(t).0);
        assert!(!q.ack(t).0, "second ack of a settled ticket is stale");
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn keyed_messages_wait_for_the_earlier_one() {
        let mut q = Queue::new();
        let now = Instant::now();
        let far = now + Duration::from_secs(30);
        q.push(msg("k1", Some("k")));
        q.push(msg("k2", Some("k")));
        q.push(msg("x", Some("other")));
        let (t1, _) = q.pop(now, far).unwrap();
        let (_, e) = q.pop(now, far).unwrap();
        assert_eq!(body(&e), b"x", "k2 must wait while k1 is in flight");
        assert!(q.pop(now, far).is_none());
        // Nack with delay keeps the key locked until k1 comes back.
        assert!(q.nack(t1, Some(now + Duration::from_millis(50))));
        assert!(q.pop(now, far).is_none());
        let later = now + Duration::from_millis(60);
        let (_, e) = q.pop(later, far).unwrap();
        assert_eq!((body(&e), e.deliveries), (&b"k1"[..], 2));
        assert!(e.first_failure.is_some());
    }

    #[test]
    fn visibility_timeout_redelivers_and_stales_the_ticket() {
        let mut q = Queue::new();
        let now = Instant::now();
        q.push(msg("a", None));
        let (t, _) = q.pop(now, now + Duration::from_millis(10)).unwrap();
        assert_eq!(q.next_wakeup(), Some(now + Duration::from_millis(10)));
        let later = now + Duration::from_millis(11);
        let (t2, e) = q.pop(later, later + Duration::from_secs(1)).unwrap();
        assert_eq!(e.deliveries, 2);
        assert!(!q.ack(t).0, "expired ticket");
        assert!(q.ack(t2).0);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn extend_moves_the_visibility_deadline() {
        let mut q = Queue::new();
        q.push(msg("a", None));
        let t0 = Instant::now();
        let (t, _) = q.pop(t0, t0 + Duration::from_secs(1)).unwrap();
        assert!(q.extend(t, t0 + Duration::from_secs(5)));
        q.tick(t0 + Duration::from_secs(2));
        assert_eq!(q.len(), 1);
        assert!(q
            .pop(t0 + Duration::from_secs(2), t0 + Duration::from_secs(9))
            .is_none());
        q.tick(t0 + Duration::from_secs(6));
        assert!(!q.ack(t).0, "expired after the extended deadline");
        assert!(q
            .pop(t0 + Duration::from_secs(6), t0 + Duration::from_secs(9))
            .is_some());
    }

    #[test]
    fn dead_letter_take_and_restore() {
        let mut q = Queue::new();
        let now = Instant::now();
        q.push(msg("a", Some("k")));
        let (t, _) = q.pop(now, now + Duration::from_secs(1)).unwrap();
        let e = q.take_for_dead_letter(t).unwrap();
        q.restore(e);
        let (t, e) = q.pop(now, now + Duration::from_secs(1)).unwrap();
        assert_eq!(e.deliveries, 2);
        let e = q.take_for_dead_letter(t).unwrap();
        q.finish_dead_letter(&e);
        assert_eq!(q.len(), 0);
    }
}
