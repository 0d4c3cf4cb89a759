//! `brokerkit.toml`: the broker URL and the per-destination and per-group settings a team sets
//! once, shared by services ([`Broker::from_config`]) and the `brokerkit` command line.
//!
//! ```toml
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"   # BROKERKIT_URL overrides it
//! visibility_timeout_ms = 30000                     # brokers with a lease (see below)
//!
//! [destinations.orders]                             # defaults for every group of `orders`
//! prefetch = 64
//! retry = { max_attempts = 5, initial_delay_ms = 100, max_delay_ms = 30000 }
//!
//! [destinations.orders.groups.billing]              # overrides for group `billing`
//! concurrency = 4
//! idempotency_store = "redis://127.0.0.1:6379"
//! drain_timeout_ms = 10000
//!
//! [claim_check]                                     # feature `claim-check`: large payloads
//! store = "s3://payloads?region=eu-west-1"          # or file:///var/lib/payloads
//! threshold_bytes = 131072                          # default: what the broker carries
//! cleanup = "auto"                                  # or delete_after_ack, expire
//! ```
//!
//! The claim-check set-up applies to every producer ([`BrokerConfig::producer`]) and handler
//! ([`BrokerConfig::handler`]) made from the file; `BROKERKIT_CLAIM_CHECK__STORE` sets the
//! store from the environment.
//!
//! Layering is done by [figment]: the file first, then environment variables, which win:
//! `BROKERKIT_URL`, `BROKERKIT_VISIBILITY_TIMEOUT_MS`, and nested keys with `__`, e.g.
//! `BROKERKIT_DESTINATIONS__ORDERS__PREFETCH=8` (destination names with `.` or `-` cannot be
//! set this way). An unknown key in the file is a [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the file,
//! the line and the accepted keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokerkit_core::{BrokerUrl, Error, Result};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::consumer_builder::{ConsumerBuilder, HandlerBuilder};
use crate::idempotency::{connect_store, Idempotency};
use crate::retry::RetryPolicy;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "BROKERKIT_CONFIG";

/// The whole file. Its `Debug` redacts secrets in the broker and store URLs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Broker URL; `memory://` when neither the file nor `BROKERKIT_URL` sets one.
    pub url: Option<String>,
    /// How long a delivery may stay unsettled before the broker hands it to another consumer.
    /// Applied to the URL with the key the adapter declares for it
    /// ([`brokerkit_core::SchemeProfile::lease_key`], e.g. `visibility_timeout_ms` on memory;
    /// rounded up where the key takes seconds); refused on brokers with no such clock.
    pub visibility_timeout_ms: Option<u64>,
    /// How long [`BrokerConfig::connect`] retries a broker that cannot be reached yet, in
    /// milliseconds (default 30000; `0` tries once). See [`crate::ConnectOptions`].
    pub connect_deadline_ms: Option<u64>,
    /// Settings per destination.
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Claim-check for every producer and handler made from this configuration (needs the
    /// `claim-check` feature; see [`crate::claim_check`]).
    pub claim_check: Option<ClaimCheckConfig>,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs (broker, idempotency stores) may hold passwords: print them redacted.
        let text = |v: &dyn std::fmt::Debug| brokerkit_core::config::redact_text(&format!("{v:?}"));
        f.debug_struct("BrokerConfig")
            .field("url", &format_args!("{}", text(&self.url)))
            .field("visibility_timeout_ms", &self.visibility_timeout_ms)
            .field("connect_deadline_ms", &self.connect_deadline_ms)
            .field(
                "destinations",
                &format_args!("{}", text(&self.destinations)),
            )
            .field("claim_check", &self.claim_check)
            .finish()
    }
}

/// The `[claim_check]` table.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimCheckConfig {
    /// Object store URL: `s3://bucket?…`, `file:///dir` or `memory://name`. May hold
    /// credentials: it is redacted in `Debug`.
    pub store: String,
    /// Offload payloads above this many bytes (default: what the broker carries).
    pub threshold_bytes: Option<usize>,
    /// `auto` (default), `delete_after_ack` or `expire`.
    pub cleanup: Option<String>,
    /// Object key prefix (default `brokerkit-claim-check`).
    pub prefix: Option<String>,
}

impl std::fmt::Debug for ClaimCheckConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimCheckConfig")
            .field(
                "store",
                &BrokerUrl::parse(&self.store)
                    .map(|u| u.redacted())
                    .unwrap_or_else(|_| "<not a URL>".into()),
            )
            .field("threshold_bytes", &self.threshold_bytes)
            .field("cleanup", &self.cleanup)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Settings for every group of one destination, and per group overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Most unsettled deliveries per consumer.
    pub prefetch: Option<usize>,
    /// Handlers running at once.
    pub concurrency: Option<usize>,
    /// How long shutdown waits for running handlers, in milliseconds.
    pub drain_timeout_ms: Option<u64>,
    /// Retry, then dead-letter.
    pub retry: Option<RetryConfig>,
    /// Idempotency store URL (`memory://`, `redis://…`, `postgres://…`).
    pub idempotency_store: Option<String>,
    /// Per consumer group overrides.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
}

/// Settings of one consumer group; unset values come from its destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Most unsettled deliveries per consumer.
    pub prefetch: Option<usize>,
    /// Handlers running at once.
    pub concurrency: Option<usize>,
    /// How long shutdown waits for running handlers, in milliseconds.
    pub drain_timeout_ms: Option<u64>,
    /// Retry, then dead-letter.
    pub retry: Option<RetryConfig>,
    /// Idempotency store URL.
    pub idempotency_store: Option<String>,
}

/// A retry policy: `max_attempts` deliveries, exponential from `initial_delay_ms` (0 or unset:
/// immediate redelivery), capped at `max_delay_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Deliveries before dead-lettering (at least 1).
    pub max_attempts: u32,
    /// First delay in milliseconds.
    pub initial_delay_ms: Option<u64>,
    /// Longest delay in milliseconds.
    pub max_delay_ms: Option<u64>,
}

impl RetryConfig {
    /// The policy this describes.
    pub fn policy(&self) -> RetryPolicy {
        let initial = Duration::from_millis(self.initial_delay_ms.unwrap_or(0));
        let mut p = RetryPolicy::exponential(initial, self.max_attempts);
        if let Some(max) = self.max_delay_ms {
            p = p.max_delay(Duration::from_millis(max));
        }
        p
    }
}

/// The resolved settings for one destination and group.
pub type ConsumerSettings = GroupConfig;

impl BrokerConfig {
    /// Reads `path`, or `$BROKERKIT_CONFIG`, or nothing (an empty configuration), then applies
    /// the environment. Unknown keys are errors with the file, line and accepted keys.
    pub fn load(path: Option<&Path>) -> Result<BrokerConfig> {
        let path: Option<PathBuf> = match path {
            Some(p) => Some(p.to_path_buf()),
            None => match std::env::var_os(CONFIG_ENV) {
                Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => None,
            },
        };
        let mut figment = Figment::new();
        if let Some(path) = &path {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::config(format!(
                    "cannot read configuration file {}: {e}",
                    path.display()
                ))
            })?;
            // toml reports the line and column and serde the accepted keys; figment (below)
            // reports neither, so the file is checked on its own first.
            toml::from_str::<BrokerConfig>(&text).map_err(|e| {
                Error::config(format!("{}: {}", path.display(), e.to_string().trim_end()))
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("BROKERKIT_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    k == "url"
                        || k == "visibility_timeout_ms"
                        || k.starts_with("destinations__")
                        || k.starts_with("claim_check__")
                })
                .split("__"),
        );
        let mut config: BrokerConfig = figment
            .extract()
            .map_err(|e| Error::config(format!("configuration: {e}")))?;
        if config.url.as_deref().is_some_and(|u| u.trim().is_empty()) {
            config.url = None;
        }
        Ok(config)
    }

    /// The broker URL with [`BrokerConfig::visibility_timeout_ms`] applied. Never print it:
    /// it may carry a password (use [`BrokerUrl::redacted`]).
    pub fn broker_url(&self) -> Result<String> {
        let url = self.url.clone().unwrap_or_else(|| "memory://".to_string());
        let Some(ms) = self.visibility_timeout_ms else {
            return Ok(url);
        };
        let parsed = BrokerUrl::parse(&url)?;
        let scheme = parsed.scheme();
        // The adapter declares which URL key sets its lease (and in what unit).
        let lease_key = crate::Registry::default()
            .profile(scheme)
            .and_then(|p| p.lease_key);
        let Some(lease_key) = lease_key else {
            return Err(Error::config(format!(
                "visibility_timeout_ms: {scheme}:// has no visibility or ack timeout \
                 (a delivery stays with its consumer while it is connected){}; remove the key",
                crate::features::adapter_hint(scheme)
            )));
        };
        let (key, value) = lease_key.pair(ms);
        let mut u = parsed.expose().clone();
        u.query_pairs_mut().append_pair(key, &value);
        Ok(u.to_string())
    }

    /// Connects to the configured broker, retrying as [`Broker::connect`] does for up to
    /// `connect_deadline_ms` (default 30000; `BROKERKIT_CONNECT_DEADLINE_MS` overrides it).
    pub async fn connect(&self) -> Result<Broker> {
        let mut options = crate::ConnectOptions::default();
        if let Some(ms) = self.connect_deadline_ms {
            options = options.deadline(std::time::Duration::from_millis(ms));
        }
        options.connect(&self.broker_url()?).await
    }

    /// The settings for `destination` and `group`: the group's, then the destination's.
    pub fn settings(&self, destination: &str, group: Option<&str>) -> ConsumerSettings {
        let Some(d) = self.destinations.get(destination) else {
            return ConsumerSettings::default();
        };
        let g = group
            .and_then(|g| d.groups.get(g))
            .cloned()
            .unwrap_or_default();
        GroupConfig {
            prefetch: g.prefetch.or(d.prefetch),
            concurrency: g.concurrency.or(d.concurrency),
            drain_timeout_ms: g.drain_timeout_ms.or(d.drain_timeout_ms),
            retry: g.retry.or_else(|| d.retry.clone()),
            idempotency_store: g.idempotency_store.or_else(|| d.idempotency_store.clone()),
        }
    }

    /// A raw consumer builder for `destination` and `group` with the configured consumer
    /// settings applied (prefetch). Handler settings need [`BrokerConfig::handler`].
    pub fn consumer(
        &self,
        broker: &Broker,
        destination: &str,
        group: Option<&str>,
    ) -> ConsumerBuilder {
        let s = self.settings(destination, group);
        let mut b = broker.consumer(destination);
        if let Some(g) = group {
            b = b.group(g);
        }
        if let Some(p) = s.prefetch {
            b = b.prefetch(p);
        }
        b
    }

    /// A handler builder for `destination` and `group` with every configured setting applied
    /// (prefetch, concurrency, drain timeout, retry, and the idempotency store, connected
    /// here).
    pub async fn handler(
        &self,
        broker: &Broker,
        destination: &str,
        group: Option<&str>,
    ) -> Result<HandlerBuilder> {
        let s = self.settings(destination, group);
        let mut b = self.consumer(broker, destination, group).handler();
        if let Some(c) = s.concurrency {
            b = b.concurrency(c);
        }
        if let Some(ms) = s.drain_timeout_ms {
            b = b.drain_timeout(Duration::from_millis(ms));
        }
        if let Some(r) = &s.retry {
            if r.max_attempts == 0 {
                return Err(Error::config(format!(
                    "destinations.{destination}: retry.max_attempts must be at least 1"
                )));
            }
            b = b.retry(r.policy());
        }
        if let Some(url) = &s.idempotency_store {
            b = b.idempotency(Idempotency::new(connect_store(url).await?));
        }
        #[cfg(feature = "claim-check")]
        if let Some(cc) = self.claim_check().await? {
            b = b.claim_check(cc);
        }
        #[cfg(not(feature = "claim-check"))]
        self.refuse_claim_check()?;
        Ok(b)
    }

    /// A producer builder for `destination` with the configured claim-check applied (the
    /// store is connected here).
    pub async fn producer(
        &self,
        broker: &Broker,
        destination: &str,
    ) -> Result<crate::ProducerBuilder> {
        #[allow(unused_mut)]
        let mut b = broker.producer(destination);
        #[cfg(feature = "claim-check")]
        if let Some(cc) = self.claim_check().await? {
            b = b.claim_check(cc);
        }
        #[cfg(not(feature = "claim-check"))]
        self.refuse_claim_check()?;
        Ok(b)
    }

    /// The `[claim_check]` set-up, its store connected; `None` when the file has none.
    #[cfg(feature = "claim-check")]
    pub async fn claim_check(&self) -> Result<Option<crate::claim_check::ClaimCheck>> {
        use crate::claim_check::{ClaimCheck, Cleanup};
        let Some(c) = &self.claim_check else {
            return Ok(None);
        };
        let mut cc = ClaimCheck::connect(&c.store)
            .await
            .map_err(|e| Error::config(format!("claim_check.store: {e}")))?;
        if let Some(t) = c.threshold_bytes {
            cc = cc.threshold(t);
        }
        if let Some(s) = &c.cleanup {
            cc = cc.cleanup(Cleanup::parse(s)?);
        }
        if let Some(p) = &c.prefix {
            cc = cc.prefix(p.clone());
        }
        Ok(Some(cc))
    }

    #[cfg(not(feature = "claim-check"))]
    fn refuse_claim_check(&self) -> Result<()> {
        match &self.claim_check {
            Some(_) => Err(Error::config(
                "[claim_check] needs the `claim-check` feature of the brokerkit crate",
            )),
            None => Ok(()),
        }
    }
}

impl Broker {
    /// Connects with the configuration file at `path` (or `$BROKERKIT_CONFIG`), environment
    /// variables overriding it (`BROKERKIT_URL` as in [`Broker::from_env`]); `memory://` when
    /// nothing sets a URL. Use [`BrokerConfig::load`] to also get the per-group settings.
    pub async fn from_config(path: Option<&Path>) -> Result<Broker> {
        BrokerConfig::load(path)?.connect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn write(text: &str) -> (PathBuf, impl Drop) {
        struct Rm(PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let p = std::env::temp_dir().join(format!("brokerkit-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&p, text).unwrap();
        (p.clone(), Rm(p))
    }

    #[test]
    fn debug_redacts_broker_and_store_passwords() {
        let (p, _rm) = write(
            "url = \"amqp://user:BrokerS3cret@127.0.0.1:5672\"\n[destinations.orders]\nidempotency_store = \"redis://:St0reS3cret@127.0.0.1:6379\"\n",
        );
        let c = BrokerConfig::load(Some(&p)).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("BrokerS3cret"), "{shown}");
        assert!(!shown.contains("St0reS3cret"), "{shown}");
        assert!(shown.contains("127.0.0.1:5672"), "{shown}");
    }

    #[test]
    fn reads_settings_and_merges_group_over_destination() {
        let (p, _rm) = write(
            "url = \"memory://cfg\"\n[destinations.orders]\nprefetch = 8\nretry = { max_attempts = 3 }\n[destinations.orders.groups.billing]\nconcurrency = 4\n",
        );
        let c = BrokerConfig::load(Some(&p)).unwrap();
        let s = c.settings("orders", Some("billing"));
        assert_eq!(s.prefetch, Some(8));
        assert_eq!(s.concurrency, Some(4));
        assert_eq!(s.retry.unwrap().max_attempts, 3);
        assert_eq!(c.settings("other", None), GroupConfig::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_accepted_keys() {
        let (p, _rm) = write("url = \"memory://\"\n\n[destinations.orders]\nprefech = 8\n");
        let e = BrokerConfig::load(Some(&p)).unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(m.contains(&p.display().to_string()), "{m}");
        assert!(m.contains("line 4"), "{m}");
        assert!(m.contains("prefech") && m.contains("prefetch"), "{m}");
    }

    #[test]
    fn visibility_timeout_uses_the_adapters_lease_key() {
        // Each adapter's key is checked by the conformance case `profile_is_kept`.
        let mut c = BrokerConfig {
            url: Some("memory://".into()),
            visibility_timeout_ms: Some(1500),
            ..Default::default()
        };
        assert!(c
            .broker_url()
            .unwrap()
            .contains("visibility_timeout_ms=1500"));
        c.url = Some("unknown://h:1".into());
        assert!(c.broker_url().is_err());
    }

    #[tokio::test]
    async fn from_config_connects_and_applies_group_settings() {
        let (p, _rm) = write(
            "url = \"memory://\"\n[destinations.orders.groups.billing]\nprefetch = 2\nconcurrency = 3\nidempotency_store = \"memory://\"\nretry = { max_attempts = 2 }\n",
        );
        let broker = Broker::from_config(Some(&p)).await.unwrap();
        assert_eq!(broker.adapter(), "memory");
        let config = BrokerConfig::load(Some(&p)).unwrap();
        let mut c = config
            .consumer(&broker, "orders", Some("billing"))
            .build()
            .await
            .unwrap();
        let producer = broker.producer("orders").build().await.unwrap();
        producer
            .send(brokerkit_core::Message::new("x"))
            .await
            .unwrap();
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(&d.message().payload[..], b"x");
        d.ack().await.unwrap();
        let handler = config.handler(&broker, "orders", Some("billing")).await;
        assert!(handler.is_ok());
        let bad = BrokerConfig {
            destinations: [(
                "orders".to_string(),
                DestinationConfig {
                    retry: Some(RetryConfig::default()),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let e = bad.handler(&broker, "orders", None).await.err().unwrap();
        assert!(e.to_string().contains("max_attempts"), "{e}");
    }

    #[test]
    fn claim_check_store_url_is_redacted_in_debug() {
        let (p, _rm) = write(
            "[claim_check]\nstore = \"s3://b?region=us-east-1&access_key_id=AK&secret_access_key=TOPSECRET\"\n",
        );
        let c = BrokerConfig::load(Some(&p)).unwrap();
        let cc = c.claim_check.clone().unwrap();
        assert!(cc.store.contains("TOPSECRET"));
        assert!(!format!("{c:?}").contains("TOPSECRET"), "{c:?}");
    }

    #[cfg(feature = "claim-check")]
    #[tokio::test]
    async fn claim_check_from_the_file_applies_to_producers_and_handlers() {
        use crate::claim_check::REFERENCE_HEADER;
        let (p, _rm) = write(
            "url = \"memory://\"\n[claim_check]\nstore = \"memory://config-test\"\nthreshold_bytes = 8\ncleanup = \"expire\"\n",
        );
        let config = BrokerConfig::load(Some(&p)).unwrap();
        let broker = config.connect().await.unwrap();
        let mut tap = broker.consumer("cfg").group("tap").build().await.unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_in = seen.clone();
        let handler = config.handler(&broker, "cfg", Some("g")).await.unwrap();
        assert!(handler.layer_names().contains(&"claim_check"));
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stop_in = stop.clone();
        let running = handler
            .handle_raw(move |_c, m: brokerkit_core::Message| {
                seen_in.lock().unwrap().push(m.payload.to_vec());
                async { Ok(()) }
            })
            .start(async move { stop_in.notified().await })
            .await
            .unwrap();
        let producer = config
            .producer(&broker, "cfg")
            .await
            .unwrap()
            .build()
            .await
            .unwrap();
        producer
            .send(brokerkit_core::Message::new("more than eight bytes"))
            .await
            .unwrap();
        let d = tap.next().await.unwrap().unwrap();
        assert!(d.message().headers.get(REFERENCE_HEADER).is_some());
        assert!(d.message().payload.is_empty());
        d.ack().await.unwrap();
        for _ in 0..500 {
            if !seen.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *seen.lock().unwrap(),
            vec![b"more than eight bytes".to_vec()]
        );
        stop.notify_one();
        running.join().await.unwrap();
        let bad = BrokerConfig {
            claim_check: Some(ClaimCheckConfig {
                store: "memory://x".into(),
                cleanup: Some("sometimes".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = bad.producer(&broker, "cfg").await.err().unwrap();
        assert!(e.to_string().contains("delete_after_ack"), "{e}");
    }
}
