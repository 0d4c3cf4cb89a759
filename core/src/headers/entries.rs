//! The storage behind [`Headers`](super::Headers): the entries in insertion order, an index
//! for long lists, and the three headers of a new correlation kept formatted in the entries'
//! own block.
//!
//! Why the new correlation has a place of its own: on the default send path a message gets
//! message-id, correlation-id and timestamp and nothing else, and its headers are allocated
//! on the sending thread and freed on the consuming one. Kept in a list, the three took a
//! block of about 600 bytes; freed on another thread, a block that size goes back to the
//! sender's glibc arena under that arena's lock, which the sender needs for its next
//! allocation (perf put 27–45 % of the memory broker's samples in that lock). Formatted into
//! the entries themselves, the block is 112 bytes: glibc's fastbins take such a block back
//! without the lock.

use std::collections::HashMap;
use std::fmt;

use super::{canonical, names, HeaderName};
use crate::text::{decimal_ascii, uuid_ascii, Text};

/// List capacity taken on the first insert: what the default send layers and a typed event
/// with every layer on stamp (ids, timestamp, trace context, event type and version, content
/// type, idempotency key), so those grow the list once.
const FIRST_CAPACITY: usize = 8;

/// Header count from which lookups go through a hash index instead of a linear scan. Below it a
/// scan of a few cache lines is faster than hashing.
const INDEX_FROM: usize = 16;

/// Where a canonical header is in the list: 0 absent, `p + 1` at place `p` below
/// [`FAR`], [`FAR`] further down (looked up as any other name).
type Slot = u8;
const FAR: Slot = Slot::MAX;

/// message-id and correlation-id (one UUID, hyphenated lowercase) and timestamp
/// (milliseconds since the epoch), formatted once. 57 bytes.
#[derive(Clone)]
struct NewCorrelation {
    id: [u8; 36],
    at_len: u8,
    at: [u8; 20],
}

impl NewCorrelation {
    fn new(id: u128, at_ms: u64) -> Self {
        let (at_len, at) = decimal_ascii(at_ms);
        NewCorrelation {
            id: uuid_ascii(id),
            at_len,
            at,
        }
    }

    fn id(&self) -> &str {
        // SAFETY: hex digits and hyphens from `uuid_ascii`: ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.id) }
    }

    fn at(&self) -> &str {
        // SAFETY: decimal digits from `decimal_ascii`: ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.at[..usize::from(self.at_len)]) }
    }

    /// The value of the canonical header at `names::ALL[canonical]` if it is one of the three.
    fn get(&self, canonical: usize) -> Option<&str> {
        match canonical {
            canonical::MESSAGE_ID | canonical::CORRELATION_ID => Some(self.id()),
            canonical::TIMESTAMP => Some(self.at()),
            _ => None,
        }
    }

    /// The three as `(name, value)`, in the order the correlation layer sets them.
    fn entry(&self, i: usize) -> Option<(&'static str, &str)> {
        match i {
            0 => Some((names::MESSAGE_ID, self.id())),
            1 => Some((names::CORRELATION_ID, self.id())),
            2 => Some((names::TIMESTAMP, self.at())),
            _ => None,
        }
    }
}

/// The headers of one message. While `fresh` is set, `list` holds none of its three names.
#[derive(Clone, Default)]
pub(super) struct Entries {
    fresh: Option<NewCorrelation>,
    list: Vec<(HeaderName, Text)>,
    /// Where each canonical name is in `list` (by its place in [`names::ALL`]): the layers
    /// look those up many times a message, and a miss would otherwise scan the whole list.
    canonical: [Slot; names::ALL.len()],
    /// From [`INDEX_FROM`] entries on: the ASCII-lowercased name to its place in `list`, so an
    /// insert or lookup is O(1) on average whatever the count (50,000 foreign headers took
    /// 1.7 s with the scan alone). Boxed so the entries stay small enough for a fastbin.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Box<str>, usize>>>,
}

impl Entries {
    /// Entries holding only a new correlation's three headers: no allocation beyond the
    /// caller's one for the block.
    pub fn new_correlation(id: u128, at_ms: u64) -> Self {
        Entries {
            fresh: Some(NewCorrelation::new(id, at_ms)),
            ..Entries::default()
        }
    }

    pub fn len(&self) -> usize {
        self.list.len() + if self.fresh.is_some() { 3 } else { 0 }
    }

    /// Whether every header has a canonical name (slots count the canonical ones in the list;
    /// names are unique, so a list of more than ten has another).
    pub fn all_canonical(&self) -> bool {
        self.list.len() <= names::ALL.len()
            && self.canonical.iter().filter(|&&slot| slot != 0).count() == self.list.len()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let canonical = canonical::index(name);
        if let Some(value) = canonical.and_then(|c| self.fresh.as_ref()?.get(c)) {
            return Some(value);
        }
        self.position(name, canonical)
            .map(|pos| self.list[pos].1.as_str())
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            fresh: self.fresh.as_ref(),
            next_fresh: 0,
            list: self.list.iter(),
        }
    }

    /// Sets `name` to `value`, replacing an earlier value in place.
    pub fn set(&mut self, name: HeaderName, value: Text) {
        let canonical = canonical::index(name.as_str());
        self.materialize_for(canonical);
        if let Some(pos) = self.position(name.as_str(), canonical) {
            self.list[pos].1 = value;
            return;
        }
        if self.list.capacity() == 0 {
            self.list.reserve_exact(FIRST_CAPACITY);
        }
        if let Some(index) = &mut self.index {
            index.insert(name.as_str().to_ascii_lowercase().into(), self.list.len());
        }
        if let Some(c) = canonical {
            self.canonical[c] = slot_at(self.list.len());
        }
        self.list.push((name, value));
        if self.index.is_none() && self.list.len() >= INDEX_FROM {
            self.rebuild_index();
        }
    }

    /// Removes `name`; O(n): later entries move up, so their positions are rewritten.
    pub fn remove(&mut self, name: &str) -> Option<Text> {
        let canonical = canonical::index(name);
        self.materialize_for(canonical);
        let pos = self.position(name, canonical)?;
        let (_, value) = self.list.remove(pos);
        self.reindex();
        Some(value)
    }

    /// Before canonical header `canonical` changes: if it is one of the new correlation's
    /// three, the three move into the list (first, as they were set first).
    fn materialize_for(&mut self, canonical: Option<usize>) {
        let Some(fresh) = self
            .fresh
            .take_if(|f| canonical.is_some_and(|c| f.get(c).is_some()))
        else {
            return;
        };
        let mut list = Vec::with_capacity((self.list.len() + 3).max(FIRST_CAPACITY));
        for i in 0..3 {
            if let Some((n, v)) = fresh.entry(i) {
                list.push((HeaderName::canonical(n), Text::copy_of(v)));
            }
        }
        list.append(&mut self.list);
        self.list = list;
        self.reindex();
    }

    /// Every entry's place recorded again, after entries moved.
    fn reindex(&mut self) {
        self.canonical = Default::default();
        for (pos, (n, _)) in self.list.iter().enumerate() {
            if let Some(c) = canonical::index(n.as_str()) {
                self.canonical[c] = slot_at(pos);
            }
        }
        if self.index.is_some() || self.list.len() >= INDEX_FROM {
            self.rebuild_index();
        }
    }

    fn rebuild_index(&mut self) {
        self.index = Some(Box::new(
            self.list
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.as_str().to_ascii_lowercase().into(), i))
                .collect(),
        ));
    }

    /// Where `name` is in the list; `canonical` is its [`canonical::index`].
    fn position(&self, name: &str, canonical: Option<usize>) -> Option<usize> {
        match canonical.map(|c| self.canonical[c]) {
            Some(0) => return None,
            Some(FAR) | None => {}
            Some(slot) => return Some(usize::from(slot) - 1),
        }
        match &self.index {
            Some(index) if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                index.get(name.to_ascii_lowercase().as_str()).copied()
            }
            Some(index) => index.get(name).copied(),
            None => self
                .list
                .iter()
                .position(|(n, _)| n.as_str().eq_ignore_ascii_case(name)),
        }
    }
}

/// The slot recording place `pos`.
fn slot_at(pos: usize) -> Slot {
    Slot::try_from(pos + 1).unwrap_or(FAR)
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The headers as `(name, value)` in insertion order; see [`Headers::iter`](super::Headers::iter).
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    fresh: Option<&'a NewCorrelation>,
    next_fresh: usize,
    list: std::slice::Iter<'a, (HeaderName, Text)>,
}

impl Iter<'_> {
    /// No headers.
    pub(super) fn empty() -> Self {
        Iter {
            fresh: None,
            next_fresh: 0,
            list: [].iter(),
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(fresh) = self.fresh {
            if let Some(entry) = fresh.entry(self.next_fresh) {
                self.next_fresh += 1;
                return Some(entry);
            }
            self.fresh = None;
        }
        self.list.next().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {
    fn len(&self) -> usize {
        let fresh = if self.fresh.is_some() {
            3 - self.next_fresh.min(3)
        } else {
            0
        };
        fresh + self.list.len()
    }
}

impl fmt::Debug for NewCorrelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCorrelation")
            .field("id", &self.id())
            .field("at", &self.at())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_new_correlation_fits_a_glibc_fastbin() {
        // glibc's fastbins take chunks up to 128 bytes: a request of at most 120.
        assert!(std::mem::size_of::<Entries>() + 16 <= 120);
        let _ = Arc::new(Entries::new_correlation(1, 2));
    }

    #[test]
    fn a_canonical_header_far_down_a_long_list_is_found_and_replaced() {
        let mut e = Entries::default();
        for i in 0..300 {
            e.set(HeaderName::new(format!("x-{i}")).unwrap(), Text::digits(i));
        }
        e.set(HeaderName::canonical(names::EVENT_TYPE), Text::copy_of("a"));
        e.set(HeaderName::new("Event-Type").unwrap(), Text::copy_of("b"));
        assert_eq!(e.get("EVENT-TYPE"), Some("b"));
        assert_eq!(e.len(), 301);
        assert_eq!(e.remove("x-0").unwrap().as_str(), "0");
        assert_eq!(e.get(names::EVENT_TYPE), Some("b"));
        // Near the front once more entries go: found through its slot.
        for i in 1..100 {
            e.remove(&format!("x-{i}"));
        }
        assert_eq!(e.canonical[4], 201);
        assert_eq!(e.get(names::EVENT_TYPE), Some("b"));
        assert_eq!(e.get(names::CONTENT_TYPE), None);
    }

    #[test]
    fn changing_one_of_the_three_keeps_order_and_values() {
        let id = 0x0190_0000_0000_7000_8000_0000_0000_0001;
        let uuid = "01900000-0000-7000-8000-000000000001";
        let mut e = Entries::new_correlation(id, 1_700_000_000_000);
        assert!(e.all_canonical());
        e.set(HeaderName::new("Event-Type").unwrap(), Text::copy_of("t"));
        assert!(e.all_canonical());
        assert_eq!(e.remove("event-type").unwrap().as_str(), "t");
        e.set(HeaderName::new("x-tenant").unwrap(), Text::copy_of("a"));
        assert!(!e.all_canonical());
        assert_eq!(e.get("CORRELATION-ID"), Some(uuid));
        e.set(
            HeaderName::canonical(names::CORRELATION_ID),
            Text::copy_of("c"),
        );
        let all: Vec<_> = e.iter().collect();
        assert_eq!(
            all,
            [
                (names::MESSAGE_ID, uuid),
                (names::CORRELATION_ID, "c"),
                (names::TIMESTAMP, "1700000000000"),
                ("x-tenant", "a"),
            ]
        );
        assert_eq!(e.remove("Timestamp").unwrap().as_str(), "1700000000000");
        assert_eq!(e.len(), 3);
        assert_eq!(e.iter().len(), 3);
    }

    #[test]
    fn removing_one_of_the_three_with_an_index_keeps_lookups_right() {
        let mut e = Entries::new_correlation(7, 9);
        for i in 0..INDEX_FROM {
            e.set(
                HeaderName::new(format!("x-{i}")).unwrap(),
                Text::digits(i as u64),
            );
        }
        assert!(e.index.is_some());
        assert!(!e.all_canonical());
        assert!(e.remove(names::MESSAGE_ID).is_some());
        assert_eq!(e.get("x-0"), Some("0"));
        assert_eq!(e.get("X-15"), Some("15"));
        assert_eq!(e.get(names::TIMESTAMP), Some("9"));
        assert_eq!(e.get(names::MESSAGE_ID), None);
        assert_eq!(e.len(), INDEX_FROM + 2);
    }

    /// Random sets, removes and look-ups, against a plain list that compares names ignoring
    /// case: the new correlation, the slots and the index must never change an answer.
    #[test]
    fn random_changes_read_back_as_a_plain_list_would() {
        let pool: Vec<String> = names::ALL
            .iter()
            .flat_map(|n| [n.to_string(), n.to_ascii_uppercase()])
            .chain((0..24).map(|i| format!("x-{i}")))
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for round in 0..300 {
            let (mut e, mut model) = if round % 2 == 0 {
                let e = Entries::new_correlation(u128::from(round as u32), 42);
                let model: Vec<(String, String)> = e
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                (e, model)
            } else {
                (Entries::default(), Vec::new())
            };
            for step in 0..60 {
                let name = &pool[next(pool.len())];
                let found = model.iter().position(|(n, _)| n.eq_ignore_ascii_case(name));
                match next(3) {
                    0 => {
                        let value = format!("v{round}-{step}");
                        e.set(
                            HeaderName::new(name.clone()).unwrap(),
                            Text::copy_of(&value),
                        );
                        match found {
                            Some(i) => model[i].1 = value,
                            None => model.push((name.clone(), value)),
                        }
                    }
                    1 => {
                        let removed = e.remove(name).map(Text::into_string);
                        assert_eq!(removed, found.map(|i| model.remove(i).1), "{name}");
                    }
                    _ => {}
                }
                for probe in &pool {
                    let want = model
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(probe))
                        .map(|(_, v)| v.as_str());
                    assert_eq!(e.get(probe), want, "round {round} step {step} {probe}");
                }
                let got: Vec<(&str, &str)> = e.iter().collect();
                let want: Vec<(&str, &str)> = model
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                // Names read back as first set (a replaced value keeps its entry's name).
                assert_eq!(got.len(), want.len());
                for ((gn, gv), (wn, wv)) in got.iter().zip(&want) {
                    assert!(
                        gn.eq_ignore_ascii_case(wn) && gv == wv,
                        "{got:?} vs {want:?}"
                    );
                }
                assert_eq!(e.len(), model.len());
                let canonical_only = model.iter().all(|(n, _)| canonical::index(n).is_some());
                assert_eq!(e.all_canonical(), canonical_only);
            }
        }
    }
}
