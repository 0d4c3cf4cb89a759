//! Timing: send times travel in the payload's first 8 bytes; the receiver records latencies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A payload of `size` bytes whose first 8 bytes are the current time.
pub fn stamped_payload(size: usize) -> Vec<u8> {
    let mut p = vec![0xAB; size];
    stamp(&mut p);
    p
}

/// `prefix-<pid>-<n>`: a destination name unique to this process and run, so rounds do not
/// share queues.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Nanoseconds since the bench started.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Writes the current time into the payload's first 8 bytes.
pub fn stamp(payload: &mut [u8]) {
    let nanos = now_ns();
    payload[..8].copy_from_slice(&nanos.to_le_bytes());
}

/// Microseconds since the payload was stamped.
pub fn latency_us(payload: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&payload[..8]);
    let sent = u64::from_le_bytes(b);
    let now = epoch().elapsed().as_nanos() as u64;
    now.saturating_sub(sent) / 1_000
}

/// Latencies in microseconds as a log-linear histogram (64 steps per power of two, so a
/// percentile is within 1.6 % of the exact one), filled from many threads: 30 KB whatever
/// the message count, where a value per message took 8 bytes each (8 MB at 1,000,000).
pub struct Latencies {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

/// Values below this are their own bucket.
const LINEAR: u64 = 128;
const BUCKETS: usize = 128 + 57 * 64;

fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize; // 7..=63
    let m = (us >> (e - 6)) as usize; // 64..128
    128 + (e - 7) * 64 + (m - 64)
}

/// The smallest value of bucket `i`.
fn bucket_floor(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let k = i - 128;
    let (e, m) = (7 + k / 64, 64 + (k % 64) as u64);
    m << (e - 6)
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Latencies {
    /// Counts one latency.
    pub fn record(&self, us: u64) {
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (Vec<u64>, u64) {
        let counts = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (counts, self.max.load(Ordering::Relaxed))
    }
}

/// One run's figures.
pub struct RunResult {
    /// Messages received.
    pub messages: usize,
    /// From the first send to the last receive.
    pub elapsed: Duration,
    /// Latency count per histogram bucket (see [`Latencies`]).
    counts: Vec<u64>,
    max_us: u64,
}

impl RunResult {
    /// A run's result from its latencies (in any order).
    pub fn new(messages: usize, elapsed: Duration, latencies_us: Vec<u64>) -> Self {
        let h = Latencies::default();
        for us in latencies_us {
            h.record(us);
        }
        RunResult::from_latencies(messages, elapsed, &h)
    }

    /// A run whose latencies were counted in `latencies`.
    pub fn from_latencies(messages: usize, elapsed: Duration, latencies: &Latencies) -> Self {
        let (counts, max_us) = latencies.snapshot();
        RunResult {
            messages,
            elapsed,
            counts,
            max_us,
        }
    }

    /// Throughput.
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`th percentile, to the histogram's precision (the floor of its bucket; the
    /// largest value exactly).
    pub fn percentile_us(&self, p: f64) -> u64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * (total - 1) as f64).round() as u64;
        if rank + 1 >= total {
            return self.max_us;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return bucket_floor(i).min(self.max_us);
            }
        }
        self.max_us
    }

    /// Prints one line, labelled.
    pub fn print(&self, label: &str) {
        println!(
            "{label:>4}: {:>10.0} msgs/s  ({} msgs in {:.3} s)  latency p50 {} us, p99 {} us, max {} us",
            self.msgs_per_s(),
            self.messages,
            self.elapsed.as_secs_f64(),
            self.percentile_us(50.0),
            self.percentile_us(99.0),
            self.max_us,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_within_two_percent() {
        let mut last = 0;
        for us in (0..200_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= us && us - floor <= us / 64, "{us} -> {floor}");
        }
    }

    #[test]
    fn percentiles_match_the_exact_ones_closely() {
        let values: Vec<u64> = (1..=10_000).map(|i| i * 37).collect();
        let r = RunResult::new(values.len(), Duration::from_secs(1), values);
        for (p, exact) in [(50.0, 185_037.0), (99.0, 366_337.0)] {
            let got = r.percentile_us(p) as f64;
            assert!((got - exact).abs() / exact < 0.02, "p{p}: {got} vs {exact}");
        }
        assert_eq!(r.percentile_us(100.0), 370_000);
    }
}
