//! Limits on what a foreign producer's header map can make a consumer do: at most
//! [`MAX_FOREIGN_HEADERS`] headers are kept per message (the rest are listed in
//! [`crate::headers::INVALID_HEADERS`]), and the warning about skipped headers is logged at most
//! once per [`WARN_INTERVAL`] per adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::headers::Headers;

/// Most headers a received message keeps. A 1 MB message can carry ~150,000 short headers;
/// past this count they are skipped and named in the invalid-headers list (the first
/// [`LISTED_EXCESS`] names, then a count), and the message is still delivered.
pub const MAX_FOREIGN_HEADERS: usize = 1024;

/// How many skipped names over the limit are listed by name.
pub const LISTED_EXCESS: usize = 16;

/// Shortest time between two "skipped invalid headers" warnings of one adapter.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Counts the headers of one received message that are over [`MAX_FOREIGN_HEADERS`].
#[derive(Debug, Default)]
pub struct ForeignLimit {
    listed: Vec<String>,
    excess: usize,
}

impl ForeignLimit {
    /// A fresh count for one message.
    pub fn new() -> Self {
        ForeignLimit::default()
    }

    /// Whether `headers` is full; if so `name` is counted as skipped and must not be inserted.
    pub fn refuses(&mut self, headers: &Headers, name: &str) -> bool {
        if headers.len() < MAX_FOREIGN_HEADERS {
            return false;
        }
        if self.listed.len() < LISTED_EXCESS {
            self.listed.push(name.chars().take(64).collect());
        }
        self.excess += 1;
        true
    }

    /// Number of headers skipped for the limit.
    pub fn excess(&self) -> usize {
        self.excess
    }

    /// The entry for the invalid-headers list, `None` when nothing was over the limit:
    /// `over the limit of 1024 headers: 3 skipped (a, b, c)`.
    pub fn entry(&self) -> Option<String> {
        if self.excess == 0 {
            return None;
        }
        let more = self.excess - self.listed.len();
        let mut names = self.listed.clone();
        names.sort();
        let mut list = names.join(", ");
        if more > 0 {
            list.push_str(&format!(", and {more} more"));
        }
        Some(format!(
            "over the limit of {MAX_FOREIGN_HEADERS} headers: {} skipped ({list})",
            self.excess
        ))
    }
}

/// A rate limit for one repeated warning: [`WarnLimit::due`] says yes at most once per
/// [`WARN_INTERVAL`] and how many were suppressed since. Lock-free; meant as a `static`.
#[derive(Debug)]
pub struct WarnLimit {
    start: OnceLock<Instant>,
    /// Milliseconds after `start` of the last warning, plus one (0: never).
    last: AtomicU64,
    suppressed: AtomicU64,
    interval: Duration,
}

impl WarnLimit {
    /// A limit of one warning per [`WARN_INTERVAL`].
    pub const fn new() -> Self {
        WarnLimit::every(WARN_INTERVAL)
    }

    /// A limit of one warning per `interval`.
    pub const fn every(interval: Duration) -> Self {
        WarnLimit {
            start: OnceLock::new(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            interval,
        }
    }

    /// `Some(suppressed)` when a warning may be logged now (`suppressed` counts those skipped
    /// since the last one); `None` when it must be skipped.
    pub fn due(&self) -> Option<u64> {
        let start = *self.start.get_or_init(Instant::now);
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let free = last == 0 || now.saturating_sub(last) >= interval;
        if free
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for WarnLimit {
    fn default() -> Self {
        WarnLimit::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_headers_are_counted_and_listed_not_kept() {
        let mut h = Headers::new();
        let mut limit = ForeignLimit::new();
        for i in 0..MAX_FOREIGN_HEADERS + 40 {
            let n = format!("x-{i:05}");
            if !limit.refuses(&h, &n) {
                h.insert(n, "v").unwrap();
            }
        }
        assert_eq!(h.len(), MAX_FOREIGN_HEADERS);
        assert_eq!(limit.excess(), 40);
        let entry = limit.entry().unwrap();
        assert!(entry.starts_with("over the limit of 1024 headers: 40 skipped (x-01024, "));
        assert!(entry.ends_with(", and 24 more)"), "{entry}");
        assert_eq!(ForeignLimit::new().entry(), None);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let limit = WarnLimit::every(Duration::from_millis(200));
        assert_eq!(limit.due(), Some(0));
        for _ in 0..1000 {
            assert_eq!(limit.due(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(limit.due(), Some(1000));
        assert_eq!(limit.due(), None);
    }
}
