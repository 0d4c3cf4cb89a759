//! Which allocator serves this process: the system's, or one preloaded in its place
//! (`LD_PRELOAD=…libjemalloc.so.2`). Printed with every run, because on the memory broker it
//! moves the figures more than most code changes (see `docs/guides/operating-a-consumer.md`).

/// Allocator libraries recognised among the process's mappings.
const KNOWN: [&str; 3] = ["jemalloc", "mimalloc", "tcmalloc"];

/// `jemalloc`, `mimalloc` or `tcmalloc` when such a library is mapped into the process (Linux
/// `/proc/self/maps`), else `system`.
pub fn name() -> &'static str {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    mapped(&maps).unwrap_or("system")
}

/// The first known allocator whose library (`lib<name>…`) `maps` names.
fn mapped(maps: &str) -> Option<&'static str> {
    KNOWN
        .into_iter()
        .find(|k| maps.contains(&format!("lib{k}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preloaded_library_is_named_and_the_system_one_is_not() {
        let preloaded = "7f00-7f01 r-xp 0 08:01 12 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n\
                         7f02-7f03 r-xp 0 08:01 13 /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(mapped(preloaded), Some("jemalloc"));
        assert_eq!(mapped("7f02-7f03 r-xp 0 08:01 13 /usr/lib/libc.so.6"), None);
        assert!(!name().is_empty());
    }
}
