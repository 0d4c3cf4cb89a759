//! Timing: send times travel in the payload's first 8 bytes; the receiver records latencies.

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

/// One run's figures.
pub struct RunResult {
    /// Messages received.
    pub messages: usize,
    /// From the first send to the last receive.
    pub elapsed: Duration,
    /// Every message's latency, sorted.
    pub latencies_us: Vec<u64>,
}

impl RunResult {
    /// A run's result from its latencies (in any order).
    pub fn new(messages: usize, elapsed: Duration, mut latencies_us: Vec<u64>) -> Self {
        latencies_us.sort_unstable();
        RunResult {
            messages,
            elapsed,
            latencies_us,
        }
    }

    /// Throughput.
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at percentile `p` (0..=100).
    pub fn percentile_us(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let idx = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[idx]
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
            self.latencies_us.last().copied().unwrap_or(0),
        );
    }
}
