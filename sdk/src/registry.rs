//! URL scheme → adapter. Built-in adapters are listed here, each behind its cargo feature;
//! this is the only place that knows which adapters are compiled in.

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

impl Default for Registry {
    /// Every adapter compiled into this build.
    fn default() -> Self {
        #[allow(unused_mut)]
        let mut r = Registry::empty().with(crate::memory::MemoryConnector);
        #[cfg(feature = "nats")]
        {
            r = r.with(brokerkit_nats::NatsConnector);
        }
        #[cfg(feature = "kafka")]
        {
            r = r.with(brokerkit_kafka::KafkaConnector);
        }
        #[cfg(feature = "sqs")]
        {
            r = r.with(brokerkit_sqs::SqsConnector);
        }
        #[cfg(feature = "rabbitmq")]
        {
            r = r.with(brokerkit_rabbitmq::RabbitMqConnector);
        }
        r
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
