//! Peak resident memory of this process (Linux `VmHWM`), so a run can report what it held at
//! most. `reset_peak` starts a new high-water mark (`/proc/self/clear_refs` value 5), so each
//! run of a multi-run bench gets its own peak.

/// Peak resident set size in KiB since start or the last [`reset_peak`]; `None` off Linux.
pub fn peak_kib() -> Option<u64> {
    status_field("VmHWM:")
}

/// Current resident set size in KiB; `None` off Linux.
pub fn current_kib() -> Option<u64> {
    status_field("VmRSS:")
}

/// Resets the high-water mark to the current RSS. Returns false where the kernel refuses.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `12.3 MiB` for a KiB figure, `n/a` when unknown.
pub fn show(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_at_least_current_and_grows_with_a_touched_allocation() {
        let Some(current) = current_kib() else { return }; // not Linux
        let before = peak_kib().expect("VmHWM next to VmRSS");
        assert!(before >= current, "peak {before} < current {current}");
        let big = std::hint::black_box(vec![1u8; 64 << 20]); // 64 MiB, every page written
        let after = peak_kib().unwrap();
        assert!(after >= before + 60 * 1024, "peak {before} -> {after} KiB");
        drop(big);
        if reset_peak() {
            assert!(peak_kib().unwrap() < after, "reset kept the old peak");
        }
    }
}
