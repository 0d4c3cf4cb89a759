//! The done keys of one shard: an open-addressing table (linear probing, backward-shift
//! deletion, no tombstones) of 16-byte slots: an 88-bit fingerprint and a 40-bit expiry in
//! milliseconds, packed in two `u64`s.
//!
//! The table holds between 60 % and 80 % of its slots (it grows to 60 % when a key would pass
//! 80 %, and the sweep shrinks it below 20 %), so a done key takes 20 to 27 bytes. Its
//! capacity is any number (home slot by multiply-shift, not a power of two), so it grows in
//! steps of a third instead of doubling.

/// A key's fingerprint: 88 bits in a `u128` (see [`FP_BITS`]), never 0 (0 marks an empty
/// slot).
pub(super) type Fp = u128;

/// Bits of a fingerprint: the low 64 place the key, the 24 above them choose its shard and
/// share a word with the expiry.
pub(super) const FP_BITS: u32 = 88;

/// Bits of an expiry (milliseconds after the store's epoch: 34 years).
const EXPIRY_BITS: u32 = 128 - FP_BITS;

/// Latest expiry a slot holds; later ones are kept as this.
pub(super) const MAX_EXPIRY: u64 = (1 << EXPIRY_BITS) - 1;

/// The fingerprint's low 64 bits, then its high 24 bits above the expiry's 40; all zero when
/// empty.
type Slot = [u64; 2];

/// Bytes a slot takes.
#[cfg(test)]
pub(super) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

const MIN_SLOTS: usize = 16;

/// See the module docs.
#[derive(Default)]
pub(super) struct Table {
    slots: Vec<Slot>,
    len: usize,
}

fn slot(fp: Fp, expires: u64) -> Slot {
    debug_assert!(fp >> FP_BITS == 0, "fingerprint wider than {FP_BITS} bits");
    [
        fp as u64,
        ((fp >> 64) as u64) << EXPIRY_BITS | expires.min(MAX_EXPIRY),
    ]
}

fn fp_of(s: &Slot) -> Fp {
    u128::from(s[0]) | (u128::from(s[1] >> EXPIRY_BITS) << 64)
}

fn expiry_of(s: &Slot) -> u64 {
    s[1] & MAX_EXPIRY
}

/// The 64 bits that place a key (the fingerprint's low word).
fn place_of(s: &Slot) -> u64 {
    s[0]
}

fn is_empty(s: &Slot) -> bool {
    s[0] == 0 && s[1] >> EXPIRY_BITS == 0
}

fn same_key(s: &Slot, fp: Fp) -> bool {
    s[0] == fp as u64 && s[1] >> EXPIRY_BITS == (fp >> 64) as u64
}

impl Table {
    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated (each [`SLOT_BYTES`]).
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn home(&self, lo: u64) -> usize {
        ((u128::from(lo) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Where `fp` is (`Ok`) or the empty slot ending its run (`Err`); `Err(0)` with no slots.
    fn probe(&self, fp: Fp) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mut i = self.home(fp as u64);
        loop {
            let s = &self.slots[i];
            if same_key(s, fp) {
                return Ok(i);
            }
            if is_empty(s) {
                return Err(i);
            }
            i = self.next(i);
        }
    }

    fn find(&self, fp: Fp) -> Option<usize> {
        self.probe(fp).ok()
    }

    /// The expiry of `fp`, if held.
    pub(super) fn get(&self, fp: Fp) -> Option<u64> {
        self.find(fp).map(|i| expiry_of(&self.slots[i]))
    }

    /// Holds `fp` until `expires` (at most [`MAX_EXPIRY`]; later is kept as that), replacing
    /// its expiry if held. Returns whether it is new.
    pub(super) fn insert(&mut self, fp: Fp, expires: u64) -> bool {
        debug_assert_ne!(fp, 0);
        match self.probe(fp) {
            Ok(i) => {
                self.slots[i] = slot(fp, expires);
                return false;
            }
            Err(i) if (self.len + 1) * 5 <= self.slots.len() * 4 => {
                self.slots[i] = slot(fp, expires);
            }
            Err(_) => {
                self.resize((self.len + 1) * 5 / 3);
                self.put(fp, expires);
            }
        }
        self.len += 1;
        true
    }

    /// Places a key known not to be held, with a free slot guaranteed.
    fn put(&mut self, fp: Fp, expires: u64) {
        let mut i = self.home(fp as u64);
        while !is_empty(&self.slots[i]) {
            i = self.next(i);
        }
        self.slots[i] = slot(fp, expires);
    }

    /// Drops `fp`; whether it was held.
    pub(super) fn remove(&mut self, fp: Fp) -> bool {
        let Some(mut hole) = self.find(fp) else {
            return false;
        };
        // Backward shift: pull each later key of the run into the hole unless its home lies
        // cyclically after the hole (it would then be found before reaching it).
        let n = self.slots.len();
        let mut j = self.next(hole);
        while !is_empty(&self.slots[j]) {
            let home = self.home(place_of(&self.slots[j]));
            if (j + n - home) % n >= (j + n - hole) % n {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = self.next(j);
        }
        self.slots[hole] = [0; 2];
        self.len -= 1;
        true
    }

    /// Rebuilds with `slots` slots (at least [`MIN_SLOTS`] and more than the keys held).
    fn resize(&mut self, slots: usize) {
        let slots = slots.max(MIN_SLOTS).max(self.len + 1);
        let old = std::mem::replace(&mut self.slots, vec![[0; 2]; slots]);
        for s in old.iter().filter(|s| !is_empty(s)) {
            self.put(fp_of(s), expiry_of(s));
        }
    }

    /// Gives memory back when under a fifth full.
    pub(super) fn shrink(&mut self) {
        if self.len == 0 {
            self.slots = Vec::new();
        } else if self.slots.len() > MIN_SLOTS && self.len * 5 < self.slots.len() {
            self.resize(self.len * 5 / 3);
        }
    }

    /// Every `(fingerprint, expiry)` held, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Fp, u64)> + '_ {
        self.slots
            .iter()
            .filter(|s| !is_empty(s))
            .map(|s| (fp_of(s), expiry_of(s)))
    }

    /// Drops every key with `drop(expiry)`; how many went.
    pub(super) fn remove_where(&mut self, drop: impl Fn(u64) -> bool) -> usize {
        let gone: Vec<Fp> = self
            .iter()
            .filter(|&(_, at)| drop(at))
            .map(|(fp, _)| fp)
            .collect();
        for fp in &gone {
            self.remove(*fp);
        }
        gone.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (splitmix64) so runs are reproducible.
    fn keys(n: usize, seed: u64) -> Vec<Fp> {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|_| ((u128::from(next() >> 40) << 64) | u128::from(next())).max(1))
            .collect()
    }

    #[test]
    fn behaves_like_a_map_through_inserts_and_removals() {
        let mut t = Table::default();
        let mut model = std::collections::HashMap::new();
        let ks = keys(5_000, 7);
        for (n, &k) in ks.iter().enumerate() {
            assert_eq!(t.insert(k, n as u64), model.insert(k, n as u64).is_none());
            if n % 3 == 0 {
                let gone = ks[n / 2];
                assert_eq!(t.remove(gone), model.remove(&gone).is_some());
            }
        }
        assert_eq!(t.len(), model.len());
        for &k in &ks {
            assert_eq!(t.get(k), model.get(&k).copied(), "key {k:x}");
        }
        let removed = t.remove_where(|at| at % 2 == 0);
        model.retain(|_, at| *at % 2 == 1);
        assert_eq!(removed + t.len(), removed + model.len());
        for &k in &ks {
            assert_eq!(t.get(k), model.get(&k).copied());
        }
        t.shrink();
        for &k in &ks {
            assert_eq!(t.get(k), model.get(&k).copied());
        }
    }

    #[test]
    fn the_widest_fingerprint_and_expiry_read_back_and_later_expiries_are_capped() {
        let mut t = Table::default();
        let widest = (1u128 << FP_BITS) - 1;
        let high_only = 1u128 << (FP_BITS - 1);
        assert!(t.insert(widest, MAX_EXPIRY));
        assert!(t.insert(high_only, u64::MAX));
        assert!(t.insert(1, 0));
        assert_eq!(t.get(widest), Some(MAX_EXPIRY));
        assert_eq!(t.get(high_only), Some(MAX_EXPIRY), "capped, not wrapped");
        assert_eq!(t.get(1), Some(0), "expiry 0 is a key, not an empty slot");
        assert_eq!(t.get(high_only | 1), None);
        let mut held: Vec<_> = t.iter().collect();
        held.sort();
        assert_eq!(
            held,
            vec![(1, 0), (high_only, MAX_EXPIRY), (widest, MAX_EXPIRY)]
        );
    }

    #[test]
    fn stays_between_sixty_and_eighty_percent_full_as_it_grows() {
        let mut t = Table::default();
        for (n, k) in keys(100_000, 3).into_iter().enumerate() {
            t.insert(k, 1);
            if n > 1_000 {
                let load = t.len() as f64 / t.capacity() as f64;
                assert!((0.59..=0.8).contains(&load), "load {load} at {n}");
            }
        }
        assert_eq!(SLOT_BYTES, 16);
        t.remove_where(|_| true);
        t.shrink();
        assert_eq!((t.len(), t.capacity()), (0, 0));
    }
}
