//! What an adapter declares about its wire conventions ([`brokerkit::core::SchemeProfile`])
//! holds: the connected backend declares what its connector does, the lease key sets the
//! lease, a broker with a lease declares that key, the AsyncAPI protocol documents a server
//! from the URL, and the binding templates are JSON objects.

use std::time::Duration;

use brokerkit::cloudevents::binding_of;
use brokerkit::{Broker, BrokerUrl, Registry};

use crate::harness::{Ctx, Outcome};

/// The declared profile matches what the broker does.
pub async fn profile_is_kept(c: Ctx) -> Outcome {
    let url = BrokerUrl::parse(&c.url).expect("the suite's URL parses");
    let Some(profile) = Registry::default().profile(url.scheme()) else {
        return Outcome::Skipped("the scheme's adapter is not in the default registry".into());
    };
    assert_eq!(
        binding_of(&c.broker),
        profile.cloudevents,
        "backend vs connector"
    );
    match profile.lease_key {
        Some(key) => {
            let (k, v) = key.pair(3000);
            let mut u = url.expose().clone();
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(n, _)| n != k)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(k, &v);
            let b = Broker::connect(u.as_str())
                .await
                .expect("the lease URL connects");
            assert_eq!(b.capabilities().lease, Some(Duration::from_secs(3)), "{k}");
            b.close().await.ok();
        }
        None => assert_eq!(
            c.broker.capabilities().lease,
            None,
            "a broker with a lease declares the URL key that sets it"
        ),
    }
    if let Some(protocol) = profile.asyncapi_protocol {
        let doc = brokerkit::asyncapi::Document::builder("conformance", "1.0.0")
            .server_url("s", &c.url)
            .build()
            .expect("the broker's URL documents a server");
        assert_eq!(doc.as_json()["servers"]["s"]["protocol"], protocol);
    }
    for t in [profile.asyncapi_channel, profile.asyncapi_receive]
        .into_iter()
        .flatten()
    {
        let v: serde_json::Value = serde_json::from_str(t).expect("a binding is JSON");
        assert!(v.is_object(), "a binding is a JSON object: {t}");
    }
    Outcome::Passed
}

/// The AsyncAPI document of one server at `url` (named `s`) with a producer on `orders` and
/// the consumer group `billing`, for an adapter's test of the bindings it declares.
pub fn asyncapi_of(url: &str) -> serde_json::Value {
    let schema = brokerkit::SchemaValidator::new("t", serde_json::json!({"type": "object"}))
        .expect("a schema");
    let events = [("order.placed", 1, std::sync::Arc::new(schema))];
    let doc = brokerkit::asyncapi::Document::builder("t", "1")
        .server_url("s", url)
        .produces_schemas("orders", &events)
        .consumes_schemas("orders", "billing", &events)
        .build()
        .expect("a document");
    doc.as_json().clone()
}
