//! UUID version 7 message ids (RFC 9562): 48 bits of Unix milliseconds, then a 42-bit
//! counter and 32 random bits, generated per thread without a lock.
//!
//! The layout is the one `uuid`'s `ContextV7` uses (RFC 9562 §6.2, method 1, a counter in
//! `rand_a` and the top of `rand_b`): at each new millisecond the counter starts at a random
//! value below 2^41, within a millisecond it counts up, so a thread's ids are strictly
//! increasing; when the clock steps back, the thread stays on its last millisecond and
//! counts on. Ids of different threads and processes differ by their random counter start
//! and their 32 random bits.
//!
//! It is ours rather than `Uuid::new_v7` for cost alone: that call draws 128 bits from a
//! ChaCha generator for every id and divides 128-bit numbers to split its timestamp (about
//! 380 instructions an id under callgrind; this one about 40). The counter start comes from `uuid`'s
//! cryptographic generator (`Uuid::new_v4`) once per millisecond and thread, the 32 bits
//! per id from `fastrand` (a per-thread wyrand seeded by the OS).

use std::cell::Cell;

/// The counter's width and the bound of its random start (the top bit starts clear, so a
/// millisecond has at least 2^41 ids before it spills into the next).
const COUNTER_BITS: u32 = 42;
const COUNTER_START_MASK: u64 = (1 << (COUNTER_BITS - 1)) - 1;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;

/// One thread's generator state: the millisecond last used and its counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    ms: u64,
    counter: u64,
}

impl State {
    /// The next id at clock time `now_ms`, with `seed` drawn for a new millisecond and
    /// `random` the id's 32 random bits.
    fn next(&mut self, now_ms: u64, seed: impl FnOnce() -> u64, random: u32) -> u128 {
        if now_ms > self.ms {
            self.ms = now_ms;
            self.counter = seed() & COUNTER_START_MASK;
        } else if self.counter < COUNTER_MAX {
            // The same millisecond, or the clock went back: count on.
            self.counter += 1;
        } else {
            // The counter is spent: borrow the next millisecond.
            self.ms += 1;
            self.counter = seed() & COUNTER_START_MASK;
        }
        layout(self.ms, self.counter, random)
    }
}

/// The 128 bits of a v7 UUID: milliseconds (48), version 7 (4), counter high 12 bits
/// (`rand_a`), variant `10` (2), counter low 30 bits and 32 random bits (`rand_b`).
fn layout(ms: u64, counter: u64, random: u32) -> u128 {
    let ms = u128::from(ms & ((1 << 48) - 1));
    let counter = u128::from(counter);
    (ms << 80)
        | (0x7 << 76)
        | ((counter >> 30) << 64)
        | (0b10 << 62)
        | ((counter & ((1 << 30) - 1)) << 32)
        | u128::from(random)
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State { ms: 0, counter: 0 }) };
}

/// A new UUID v7 (as its 128 bits) for the time `unix_ms` (milliseconds since the Unix
/// epoch): unique, and increasing within the calling thread.
pub(crate) fn uuid_v7(unix_ms: u64) -> u128 {
    STATE.with(|cell| {
        let mut state = cell.get();
        let id = state.next(
            unix_ms,
            || uuid::Uuid::new_v4().as_u128() as u64,
            fastrand::u32(..),
        );
        cell.set(state);
        id
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn ids_are_valid_v7_with_their_millisecond() {
        let ms = 1_764_633_600_123;
        let id = Uuid::from_u128(uuid_v7(ms));
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, ms);
    }

    #[test]
    fn within_a_millisecond_and_when_the_clock_steps_back_ids_still_increase() {
        let mut s = State::default();
        let first = s.next(1000, || u64::MAX, 0xffff_ffff);
        // The seed's top counter bit is cleared.
        assert_eq!(s.counter, COUNTER_START_MASK);
        let second = s.next(1000, || unreachable!(), 0);
        assert!(second > first);
        let back = s.next(990, || unreachable!(), 0);
        assert!(back > second);
        assert_eq!(s.ms, 1000);
        let later = s.next(1001, || 5, 0);
        assert!(later > back);
        assert_eq!((s.ms, s.counter), (1001, 5));
    }

    #[test]
    fn a_spent_counter_moves_to_the_next_millisecond() {
        let mut s = State {
            ms: 7,
            counter: COUNTER_MAX - 1,
        };
        let a = s.next(7, || unreachable!(), u32::MAX);
        assert_eq!(s.counter, COUNTER_MAX);
        let b = s.next(7, || 0, 0);
        assert_eq!((s.ms, s.counter), (8, 0));
        assert!(b > a);
        assert_eq!(Uuid::from_u128(b).get_version_num(), 7);
    }

    #[test]
    fn a_million_ids_of_one_thread_increase_and_two_threads_do_not_collide() {
        let run = || {
            let mut out = Vec::with_capacity(500_000);
            for i in 0..500_000u64 {
                out.push(uuid_v7(1_764_633_600_000 + i / 100_000));
            }
            out
        };
        let a = std::thread::spawn(run).join().unwrap();
        let b = std::thread::spawn(run).join().unwrap();
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u128> = a.into_iter().chain(b).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 1_000_000);
    }
}
