//! URL scheme → adapter. Built-in adapters are listed here, each behind its cargo feature;
//! this is the only place in the SDK that names them (their features are in `Cargo.toml`).

use std::sync::Arc;

use brokerkit_core::{Backend, BrokerUrl, Connector, Error, Result};

/// Each compiled-in adapter's typed settings, for [`Broker::connect_settings`](crate::Broker::connect_settings)
/// (re-exported at the crate root).
pub mod settings {
    pub use crate::memory::MemoryConfig;
    #[cfg(feature = "kafka")]
    pub use brokerkit_kafka::KafkaSettings;
    #[cfg(feature = "nats")]
    pub use brokerkit_nats::NatsSettings;
    #[cfg(feature = "rabbitmq")]
    pub use brokerkit_rabbitmq::RabbitMqSettings;
    #[cfg(feature = "redis-streams")]
    pub use brokerkit_redis_streams::RedisStreamsSettings;
    #[cfg(feature = "sqs")]
    pub use brokerkit_sqs::SqsSettings;
}

/// Connectors by URL scheme.
#[derive(Clone)]
pub struct Registry {
    connectors: Vec<Arc<dyn Connector>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("schemes", &self.schemes())
            .finish()
    }
}

/// Lists the built-in adapters once: the cargo feature, the URL schemes (known even when the
/// feature is off, so the error can name the feature) and the connector.
macro_rules! built_in_adapters {
    ($($feature:literal => $connector:path, [$($scheme:literal),+ $(,)?];)*) => {
        /// Broker URL schemes and the cargo feature that compiles their adapter in.
        pub(crate) const ADAPTER_FEATURES: &[(&str, &str)] = &[$($(($scheme, $feature),)+)*];

        /// `r` with every built-in adapter compiled into this build.
        fn with_built_in(#[allow(unused_mut)] mut r: Registry) -> Registry {
            $(
                #[cfg(feature = $feature)]
                {
                    r = r.with($connector);
                }
            )*
            r
        }
    };
}

built_in_adapters! {
    "nats" => brokerkit_nats::NatsConnector, ["nats", "nats+js"];
    "kafka" => brokerkit_kafka::KafkaConnector, ["kafka"];
    "sqs" => brokerkit_sqs::SqsConnector, ["sqs", "sns"];
    "rabbitmq" => brokerkit_rabbitmq::RabbitMqConnector, ["amqp", "amqps"];
    "redis-streams" => brokerkit_redis_streams::RedisStreamsConnector, ["redis+streams"];
}

impl Default for Registry {
    /// Every adapter compiled into this build.
    fn default() -> Self {
        with_built_in(Registry::empty().with(crate::memory::MemoryConnector))
    }
}

impl Registry {
    /// A registry with no adapters.
    pub fn empty() -> Self {
        Registry {
            connectors: Vec::new(),
        }
    }

    /// Adds (or, for a scheme already present, replaces) a connector.
    pub fn with(mut self, connector: impl Connector) -> Self {
        let schemes = connector.schemes();
        self.connectors
            .retain(|c| !c.schemes().iter().any(|s| schemes.contains(s)));
        self.connectors.push(Arc::new(connector));
        self
    }

    /// Registered schemes, sorted.
    pub fn schemes(&self) -> Vec<&'static str> {
        let mut s: Vec<_> = self
            .connectors
            .iter()
            .flat_map(|c| c.schemes().iter().copied())
            .collect();
        s.sort_unstable();
        s
    }

    /// The wire conventions of `scheme` as its adapter declares them
    /// ([`brokerkit_core::Connector::profile`]); `None` when no adapter here handles it.
    pub fn profile(&self, scheme: &str) -> Option<brokerkit_core::SchemeProfile> {
        self.connectors
            .iter()
            .find(|c| c.schemes().contains(&scheme))
            .map(|c| c.profile(scheme))
    }

    /// The profiles of every registered scheme.
    pub(crate) fn profiles(&self) -> Vec<brokerkit_core::SchemeProfile> {
        self.connectors
            .iter()
            .flat_map(|c| c.schemes().iter().map(|s| c.profile(s)))
            .collect()
    }

    /// Connects to `url` with the adapter registered for its scheme.
    pub async fn connect(&self, url: &str) -> Result<Arc<dyn Backend>> {
        let url = BrokerUrl::parse(url)?;
        let scheme = url.scheme();
        let Some(c) = self
            .connectors
            .iter()
            .find(|c| c.schemes().contains(&scheme))
        else {
            return Err(Error::config(format!(
                "no adapter for scheme {scheme:?} in {url}; registered schemes: {} \
                 (adapters are enabled by cargo features of the brokerkit crate){}",
                self.schemes().join(", "),
                crate::features::adapter_hint(scheme)
            )));
        };
        c.connect(&url).await.map_err(|e| {
            // Context stamped once here for every adapter's connect errors.
            let e = match e.context().operation {
                Some(_) => e,
                None => e.with_operation("connect"),
            };
            match e.context().address {
                Some(_) => e,
                None => e.with_address(url.redacted()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_schemes_match_their_connectors() {
        let compiled = Registry::default().schemes();
        for scheme in compiled.iter().filter(|s| **s != "memory") {
            assert!(
                ADAPTER_FEATURES.iter().any(|(s, _)| s == scheme),
                "{scheme} is registered but not listed in built_in_adapters!"
            );
        }
    }
}
