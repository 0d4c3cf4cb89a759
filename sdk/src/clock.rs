//! The clock reads of the hot paths, as plain integers.
//!
//! `SystemTime::now().duration_since(UNIX_EPOCH)` and `Instant::elapsed` check and normalise
//! a `timespec` on each step (about 80 and 200 instructions a message on the send path, the
//! metrics layer's two reads included). On Linux these read the same clocks through
//! `clock_gettime` and return integers; elsewhere they go through `std`.

use std::time::Duration;

/// Wall time since the Unix epoch (`CLOCK_REALTIME`); zero before the epoch.
pub(crate) fn unix_now() -> Duration {
    #[cfg(target_os = "linux")]
    if let Some((secs, nanos)) = read(libc::CLOCK_REALTIME) {
        return Duration::new(secs, nanos);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch of `since`, saturating.
pub(crate) fn millis(since: Duration) -> u64 {
    since
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(since.subsec_millis()))
}

/// Milliseconds since the Unix epoch, to within the kernel's clock tick (1 to 4 ms) on Linux:
/// `CLOCK_REALTIME_COARSE` reads a value the kernel keeps, without the time counter.
pub(crate) fn coarse_unix_ms() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some((secs, nanos)) = read(libc::CLOCK_REALTIME_COARSE) {
        return secs.saturating_mul(1000) + u64::from(nanos) / 1_000_000;
    }
    millis(unix_now())
}

/// A monotonic instant in nanoseconds (an arbitrary origin): for durations only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stopwatch(u64);

impl Stopwatch {
    /// Now.
    pub fn start() -> Self {
        #[cfg(target_os = "linux")]
        if let Some((secs, nanos)) = read(libc::CLOCK_MONOTONIC) {
            return Stopwatch(secs.saturating_mul(1_000_000_000) + u64::from(nanos));
        }
        Stopwatch(origin().elapsed().as_nanos() as u64)
    }

    /// Seconds since [`Stopwatch::start`] (never negative).
    pub fn seconds(self) -> f64 {
        Stopwatch::start().0.saturating_sub(self.0) as f64 * 1e-9
    }
}

/// The origin of [`Stopwatch`] where `clock_gettime` is not used.
fn origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// `clock_gettime(clock)` as whole seconds and nanoseconds; `None` on an error or a time
/// before the epoch (the callers then fall back to `std`).
#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> Option<(u64, u32)> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some((ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn wall_time_agrees_with_std() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let ours = unix_now();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(
            before <= ours && ours <= after,
            "{before:?} {ours:?} {after:?}"
        );
        assert_eq!(millis(Duration::new(3, 999_999_999)), 3_999);
        let coarse = coarse_unix_ms();
        let precise = millis(unix_now());
        // The coarse clock lags by at most a tick or so.
        assert!(
            coarse <= precise && precise - coarse < 100,
            "{coarse} {precise}"
        );
    }

    #[test]
    fn a_stopwatch_measures_a_sleep_and_never_goes_negative() {
        let sw = Stopwatch::start();
        assert!(sw.seconds() >= 0.0);
        std::thread::sleep(Duration::from_millis(20));
        let s = sw.seconds();
        assert!((0.02..5.0).contains(&s), "{s}");
        assert!(Stopwatch::start() >= sw);
    }
}
