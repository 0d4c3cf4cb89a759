//! The brokers the bench was built with (one cargo feature each, see `build.rs`), plus the
//! in-memory broker, looked up by URL scheme.

use brokerkit_bench_driver::BrokerBench;

/// Every broker bench crate the features enabled.
static BUILT: &[&dyn BrokerBench] = include!(concat!(env!("OUT_DIR"), "/brokers.rs"));

/// The in-memory broker first, then the others in feature order.
pub fn all() -> impl Iterator<Item = &'static dyn BrokerBench> {
    std::iter::once(&crate::memory::MEMORY as &dyn BrokerBench).chain(BUILT.iter().copied())
}

/// The broker bench that covers `scheme`.
pub fn for_scheme(scheme: &str) -> Option<&'static dyn BrokerBench> {
    all().find(|b| b.schemes().contains(&scheme))
}

/// `--help`'s lines per broker: schemes, raw baseline, peers.
pub fn usage() -> String {
    let mut text = String::from("\nbrokers built in (schemes: raw baseline; peers):");
    for b in all() {
        let peers: Vec<&str> = [
            brokerkit_bench_driver::Peer::Omniqueue,
            brokerkit_bench_driver::Peer::FastStream,
        ]
        .into_iter()
        .filter(|p| b.peer(*p).is_some())
        .map(|p| p.name())
        .collect();
        text.push_str(&format!(
            "\n  {}: {}; peers: {}",
            b.schemes().join(", "),
            b.usage(),
            if peers.is_empty() {
                "none".to_string()
            } else {
                peers.join(", ")
            }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_has_one_broker_and_memory_is_always_there() {
        let mut seen = Vec::new();
        for b in all() {
            for s in b.schemes() {
                assert!(!seen.contains(s), "{s} registered twice");
                seen.push(*s);
            }
        }
        assert!(for_scheme("memory").is_some());
        assert!(for_scheme("memory")
            .unwrap()
            .raw(&brokerkit_bench_driver::Args::parse(std::iter::empty()).unwrap())
            .is_none());
        assert!(for_scheme("nope").is_none());
        assert!(usage().contains("memory: no raw baseline"));
    }
}
