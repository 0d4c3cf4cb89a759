//! Per-consumer bookkeeping, free of I/O: which offsets of which partitions are received and
//! not yet settled, what is ready to hand out or held back until its not-before time, and
//! which offsets may be committed.
//!
//! The commit point of a partition is its lowest unsettled offset, or one past the highest
//! offset received when everything received is settled: a commit never passes a message that
//! is not settled, whatever order concurrent handlers settle in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use brokerkit_core::Message;

use crate::headers::RetryInfo;

/// A partition of the destination topic (`retry: false`) or of the group's retry topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tp {
    /// Whether this is the retry topic.
    pub retry: bool,
    /// Partition number.
    pub partition: i32,
}

/// Where a received, unsettled offset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Waiting in `ready` to be handed out.
    Queued,
    /// Waiting in `held` for its not-before time.
    Held,
    /// Handed out to the application.
    Out,
    /// Given up locally (consumer closing, partition revoked): never committed past; the
    /// broker delivers it again to the next owner of the partition.
    Abandoned,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its partition.
    pub tp: Tp,
    /// Its offset.
    pub offset: i64,
    /// The assignment generation it was received in.
    pub generation: u64,
    /// The message as the application sees it.
    pub message: Message,
    /// Retry headers (attempt 1 when it is not a retry copy).
    pub info: RetryInfo,
}

#[derive(Debug)]
struct Part {
    generation: u64,
    inflight: BTreeMap<i64, Slot>,
    /// One past the highest offset received; -1 before the first.
    next_offset: i64,
    /// Last commit point sent; -1 for none.
    committed: i64,
}

struct HeldEntry {
    not_before_ms: u64,
    seq: u64,
    fetched: Fetched,
}

impl PartialEq for HeldEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.not_before_ms, self.seq) == (other.not_before_ms, other.seq)
    }
}
impl Eq for HeldEntry {}
impl PartialOrd for HeldEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeldEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.not_before_ms, self.seq).cmp(&(other.not_before_ms, other.seq))
    }
}

/// The state shared by the consumer handle, its deliveries and its driver thread.
#[derive(Default)]
pub struct State {
    parts: HashMap<Tp, Part>,
    ready: VecDeque<Fetched>,
    ready_bytes: usize,
    held: BinaryHeap<Reverse<HeldEntry>>,
    seq: u64,
    generations: u64,
    /// Intake stopped (consumer closed or dropped, or the backend closed).
    pub closed: bool,
    /// The first assignment arrived.
    pub assigned_once: bool,
    /// Something settled since the last commit.
    pub dirty: bool,
    /// Partitions currently paused.
    pub paused: HashSet<Tp>,
}

impl State {
    /// Partitions assigned now.
    pub fn assigned(&self) -> Vec<Tp> {
        let mut v: Vec<Tp> = self.parts.keys().copied().collect();
        v.sort();
        v
    }

    /// Messages waiting to be handed out, and their payload bytes.
    pub fn ready_len(&self) -> (usize, usize) {
        (self.ready.len(), self.ready_bytes)
    }

    /// Messages held back until their not-before time.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Starts owning `tps` (a new generation each).
    pub fn assign(&mut self, tps: &[Tp]) {
        for &tp in tps {
            self.generations += 1;
            self.parts.insert(
                tp,
                Part {
                    generation: self.generations,
                    inflight: BTreeMap::new(),
                    next_offset: -1,
                    committed: -1,
                },
            );
        }
        self.assigned_once = true;
    }

    /// Stops handing out what is queued or held for `tps` (all partitions when `None`):
    /// those offsets are abandoned, never committed past.
    pub fn abandon_queued(&mut self, tps: Option<&[Tp]>) {
        let hit = |tp: &Tp| tps.is_none_or(|list| list.contains(tp));
        let mut dropped = Vec::new();
        self.ready.retain(|f| {
            let keep = !hit(&f.tp);
            if !keep {
                dropped.push((f.tp, f.offset, f.message.payload.len()));
            }
            keep
        });
        let held = std::mem::take(&mut self.held);
        for Reverse(e) in held {
            if hit(&e.fetched.tp) {
                dropped.push((e.fetched.tp, e.fetched.offset, 0));
            } else {
                self.held.push(Reverse(e));
            }
        }
        for (tp, offset, bytes) in dropped {
            self.ready_bytes -= bytes;
            if let Some(slot) = self
                .parts
                .get_mut(&tp)
                .and_then(|p| p.inflight.get_mut(&offset))
            {
                *slot = Slot::Abandoned;
            }
        }
    }

    /// Deliveries of `tps` (all when `None`) still in the application's hands.
    pub fn out_count(&self, tps: Option<&[Tp]>) -> usize {
        self.parts
            .iter()
            .filter(|(tp, _)| tps.is_none_or(|l| l.contains(tp)))
            .map(|(_, p)| p.inflight.values().filter(|s| **s == Slot::Out).count())
            .sum()
    }

    /// Forgets `tps` after they were revoked: later settlements of their deliveries are stale.
    pub fn revoke(&mut self, tps: &[Tp]) {
        self.abandon_queued(Some(tps));
        for tp in tps {
            self.parts.remove(tp);
            self.paused.remove(tp);
        }
    }

    /// Records a received message. `now_ms` decides whether a retry copy is held back.
    /// Returns false when it is not for an owned partition or was received before.
    pub fn receive(&mut self, mut f: Fetched, now_ms: u64) -> bool {
        let Some(part) = self.parts.get_mut(&f.tp) else {
            return false;
        };
        if f.offset < part.next_offset || part.inflight.contains_key(&f.offset) {
            return false;
        }
        part.next_offset = f.offset + 1;
        f.generation = part.generation;
        match f.info.not_before_ms.filter(|nb| *nb > now_ms) {
            Some(nb) => {
                part.inflight.insert(f.offset, Slot::Held);
                self.hold(nb, f);
            }
            None => {
                part.inflight.insert(f.offset, Slot::Queued);
                self.ready_bytes += f.message.payload.len();
                self.ready.push_back(f);
            }
        }
        true
    }

    fn hold(&mut self, not_before_ms: u64, fetched: Fetched) {
        self.seq += 1;
        self.held.push(Reverse(HeldEntry {
            not_before_ms,
            seq: self.seq,
            fetched,
        }));
    }

    /// Moves held messages whose time has come to the ready queue; returns how many, and
    /// when the next one is due.
    pub fn release_due(&mut self, now_ms: u64) -> (usize, Option<u64>) {
        let mut n = 0;
        while let Some(Reverse(top)) = self.held.peek() {
            if top.not_before_ms > now_ms {
                return (n, Some(top.not_before_ms));
            }
            let Some(Reverse(e)) = self.held.pop() else {
                break;
            };
            let f = e.fetched;
            if let Some(slot) = self.slot_mut(f.tp, f.offset, f.generation) {
                *slot = Slot::Queued;
                self.ready_bytes += f.message.payload.len();
                self.ready.push_back(f);
                n += 1;
            }
        }
        (n, None)
    }

    /// The next message to hand out; it is `Out` from now on.
    pub fn pop_ready(&mut self) -> Option<Fetched> {
        while let Some(f) = self.ready.pop_front() {
            self.ready_bytes -= f.message.payload.len();
            if let Some(slot) = self.slot_mut(f.tp, f.offset, f.generation) {
                *slot = Slot::Out;
                return Some(f);
            }
        }
        None
    }

    fn slot_mut(&mut self, tp: Tp, offset: i64, generation: u64) -> Option<&mut Slot> {
        self.parts
            .get_mut(&tp)
            .filter(|p| p.generation == generation)
            .and_then(|p| p.inflight.get_mut(&offset))
    }

    /// Whether a handed-out delivery still belongs to this consumer.
    pub fn is_current(&self, tp: Tp, offset: i64, generation: u64) -> bool {
        self.parts
            .get(&tp)
            .filter(|p| p.generation == generation)
            .and_then(|p| p.inflight.get(&offset))
            .is_some_and(|s| *s == Slot::Out)
    }

    /// Settles a handed-out delivery; false when it is stale (partition revoked since).
    pub fn settle(&mut self, tp: Tp, offset: i64, generation: u64) -> bool {
        let Some(part) = self
            .parts
            .get_mut(&tp)
            .filter(|p| p.generation == generation)
        else {
            return false;
        };
        match part.inflight.get(&offset) {
            Some(Slot::Out) => {
                part.inflight.remove(&offset);
                self.dirty = true;
                true
            }
            _ => false,
        }
    }

    /// Hands a delivery back for local redelivery (a nack or dead-letter whose produce failed):
    /// queued again (or held until `not_before_ms`) with its attempt increased; abandoned when
    /// the consumer is closing. False when it is stale.
    pub fn requeue(&mut self, mut f: Fetched, not_before_ms: Option<u64>) -> bool {
        let closed = self.closed;
        let Some(slot) = self.slot_mut(f.tp, f.offset, f.generation) else {
            return false;
        };
        if closed {
            *slot = Slot::Abandoned;
            return true;
        }
        f.info.attempt = f.info.attempt.saturating_add(1);
        match not_before_ms {
            Some(nb) => {
                *slot = Slot::Held;
                self.hold(nb, f);
            }
            None => {
                *slot = Slot::Queued;
                self.ready_bytes += f.message.payload.len();
                self.ready.push_back(f);
            }
        }
        true
    }

    /// Commit points that moved (all partitions, or only `tps`): `(tp, offset to commit)`.
    /// Marks them committed; [`State::commit_failed`] undoes that.
    pub fn take_commits(&mut self, tps: Option<&[Tp]>) -> Vec<(Tp, i64)> {
        self.dirty = false;
        let mut out = Vec::new();
        for (tp, part) in self.parts.iter_mut() {
            if tps.is_some_and(|l| !l.contains(tp)) || part.next_offset < 0 {
                continue;
            }
            let point = part
                .inflight
                .keys()
                .next()
                .copied()
                .unwrap_or(part.next_offset);
            if point > part.committed {
                part.committed = point;
                out.push((*tp, point));
            }
        }
        out.sort();
        out
    }

    /// A commit of `tps` failed: commit them again next time.
    pub fn commit_failed(&mut self, tps: &[Tp]) {
        for tp in tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.committed = -1;
                self.dirty = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P0: Tp = Tp {
        retry: false,
        partition: 0,
    };
    const R0: Tp = Tp {
        retry: true,
        partition: 0,
    };

    fn fetched(tp: Tp, offset: i64, not_before_ms: Option<u64>) -> Fetched {
        Fetched {
            tp,
            offset,
            generation: 0,
            message: Message::new(format!("{offset}")),
            info: RetryInfo {
                attempt: 1,
                not_before_ms,
                first_failure_ms: None,
            },
        }
    }

    #[test]
    fn commit_never_passes_an_unsettled_offset() {
        let mut s = State::default();
        s.assign(&[P0]);
        for o in 10..15 {
            assert!(s.receive(fetched(P0, o, None), 0));
        }
        let out: Vec<Fetched> = std::iter::from_fn(|| s.pop_ready()).collect();
        assert_eq!(out.len(), 5);
        // Settle 11, 13, 14 first (concurrent handlers): nothing can be committed past 10.
        for f in out.iter().filter(|f| [11, 13, 14].contains(&f.offset)) {
            assert!(s.settle(f.tp, f.offset, f.generation));
        }
        assert_eq!(s.take_commits(None), vec![(P0, 10)]);
        assert!(s.settle(P0, 10, out[0].generation));
        assert_eq!(s.take_commits(None), vec![(P0, 12)]);
        assert!(s.settle(P0, 12, out[2].generation));
        assert_eq!(s.take_commits(None), vec![(P0, 15)]);
        assert!(s.take_commits(None).is_empty());
        // A second settlement of the same offset is refused.
        assert!(!s.settle(P0, 12, out[2].generation));
    }

    #[test]
    fn revoked_partitions_make_deliveries_stale_and_duplicates_are_ignored() {
        let mut s = State::default();
        s.assign(&[P0]);
        assert!(s.receive(fetched(P0, 0, None), 0));
        assert!(!s.receive(fetched(P0, 0, None), 0));
        let f = s.pop_ready().unwrap();
        assert_eq!(s.out_count(None), 1);
        s.revoke(&[P0]);
        assert!(!s.settle(P0, 0, f.generation));
        s.assign(&[P0]);
        assert!(!s.is_current(P0, 0, f.generation));
        assert!(!s.receive(
            fetched(
                Tp {
                    retry: false,
                    partition: 9
                },
                0,
                None
            ),
            0
        ));
    }

    #[test]
    fn held_messages_wait_for_their_time_and_block_commits() {
        let mut s = State::default();
        s.assign(&[R0]);
        assert!(s.receive(fetched(R0, 0, Some(2_000)), 1_000));
        assert!(s.receive(fetched(R0, 1, Some(500)), 1_000));
        assert_eq!(s.pop_ready().map(|f| f.offset), Some(1));
        assert!(s.pop_ready().is_none());
        assert_eq!(s.release_due(1_500), (0, Some(2_000)));
        assert_eq!(s.release_due(2_000), (1, None));
        let f = s.pop_ready().unwrap();
        assert_eq!(f.offset, 0);
        assert_eq!(s.take_commits(None), vec![(R0, 0)]);
        assert!(s.settle(R0, 0, f.generation));
        assert_eq!(s.take_commits(None), vec![(R0, 1)]);
        assert!(s.settle(R0, 1, f.generation));
        assert_eq!(s.take_commits(None), vec![(R0, 2)]);
    }

    #[test]
    fn close_abandons_queued_and_requeue_counts_attempts() {
        let mut s = State::default();
        s.assign(&[P0]);
        for o in 0..3 {
            s.receive(fetched(P0, o, None), 0);
        }
        let f = s.pop_ready().unwrap();
        assert!(s.requeue(f, None));
        let f = s.ready.back().cloned().unwrap();
        assert_eq!((f.offset, f.info.attempt), (0, 2));
        s.closed = true;
        s.abandon_queued(None);
        assert_eq!(s.ready_len(), (0, 0));
        assert!(s.pop_ready().is_none());
        // Abandoned offsets are never committed past.
        assert_eq!(s.take_commits(None), vec![(P0, 0)]);
        assert_eq!(s.out_count(None), 0);
    }
}
