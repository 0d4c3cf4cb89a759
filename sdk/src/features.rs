//! Which cargo feature of the `brokerkit` crate brings in a URL scheme, so an error for a
//! scheme this build lacks can say what to enable.

use crate::registry::ADAPTER_FEATURES as ADAPTERS;

/// Idempotency store URL schemes and the feature that compiles their store in.
const STORES: &[(&str, &str)] = &[
    ("redis", "redis"),
    ("rediss", "redis"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
];

fn lookup(table: &[(&str, &'static str)], scheme: &str) -> Option<&'static str> {
    table.iter().find(|(s, _)| *s == scheme).map(|(_, f)| *f)
}

/// `" (scheme X needs cargo feature `F` of brokerkit, not enabled in this build)"`, or
/// nothing for a scheme brokerkit does not know.
pub(crate) fn adapter_hint(scheme: &str) -> String {
    hint(lookup(ADAPTERS, scheme), scheme)
}

/// As [`adapter_hint`], for idempotency stores.
pub(crate) fn store_hint(scheme: &str) -> String {
    hint(lookup(STORES, scheme), scheme)
}

fn hint(feature: Option<&str>, scheme: &str) -> String {
    match feature {
        Some(f) => format!(
            "; {scheme}:// needs cargo feature `{f}` of brokerkit, not enabled in this build \
             (e.g. brokerkit = {{ version = \"…\", features = [\"{f}\"] }})"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_schemes_name_their_feature() {
        for (scheme, feature) in ADAPTERS {
            assert!(adapter_hint(scheme).contains(&format!("feature `{feature}`")));
        }
        assert!(store_hint("rediss").contains("feature `redis`"));
        assert_eq!(adapter_hint("mqtt"), "");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn a_store_without_its_feature_names_it() {
        let e = crate::connect_store("redis://127.0.0.1:6379")
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), brokerkit_core::ErrorKind::Config);
        assert!(e.message().contains("cargo feature `redis`"), "{e}");
    }

    #[tokio::test]
    async fn an_adapter_without_its_feature_names_it() {
        let compiled = crate::Registry::default().schemes();
        let Some((scheme, feature)) = ADAPTERS.iter().find(|(s, _)| !compiled.contains(s)) else {
            eprintln!("SKIP: every adapter is compiled into this build");
            return;
        };
        let e = crate::Broker::connect(&format!("{scheme}://127.0.0.1:1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), brokerkit_core::ErrorKind::Config);
        assert!(
            e.message().contains(&format!("cargo feature `{feature}`")),
            "{e}"
        );
    }
}
