//! The time a pop reads: the monotonic clock, read in full at most once per kernel tick on
//! each thread.
//!
//! Every pop needs "now" (is a delayed or leased message due, when does the new lease end),
//! and a full `Instant::now()` costs about 27 ns on the 2-core bench machine — as much as a
//! third of the rest of a pop. `CLOCK_MONOTONIC_COARSE` (about 6 ns) says whether the
//! kernel's tick moved since the thread last read the full clock; if not, that reading is
//! reused. So the time a pop sees is at most one tick (1 to 4 ms) behind: a delayed message
//! may become due up to a tick late and a lease may end up to a tick early — far inside the
//! millisecond grain of every delay and lease the broker takes. Elsewhere (not Linux) it is
//! `Instant::now()`.

use std::time::Instant;

#[cfg(target_os = "linux")]
thread_local! {
    /// The coarse tick of the last full reading, and that reading.
    static LAST: std::cell::Cell<Option<(u64, Instant)>> = const { std::cell::Cell::new(None) };
}

/// Now, to within one kernel tick, never ahead of `Instant::now()` and never behind a
/// reading this thread returned before.
pub(crate) fn recent() -> Instant {
    #[cfg(target_os = "linux")]
    if let Some(tick) = coarse_tick() {
        return LAST.with(|last| match last.get() {
            Some((seen, at)) if seen == tick => at,
            _ => {
                let at = Instant::now();
                last.set(Some((tick, at)));
                at
            }
        });
    }
    Instant::now()
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: changes once per kernel tick.
#[cfg(target_os = "linux")]
fn coarse_tick() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (rc == 0).then(|| (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn recent_is_within_a_tick_and_never_goes_back() {
        let mut last = recent();
        let end = Instant::now() + Duration::from_millis(60);
        while Instant::now() < end {
            let before = Instant::now();
            let r = recent();
            let after = Instant::now();
            assert!(r >= last, "went back");
            assert!(r <= after, "ahead of the clock");
            // A tick is 1 to 4 ms (HZ 1000 to 250); allow for a descheduled thread.
            assert!(before.saturating_duration_since(r) < Duration::from_millis(50));
            last = r;
        }
    }
}
