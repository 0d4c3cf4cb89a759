//! Servers from brokerkit URLs and protocol bindings, both as the adapters declare them
//! ([`brokerkit_core::SchemeProfile`]: the AsyncAPI protocol of each URL scheme and the JSON
//! of its channel and receive-operation bindings). No adapter is named here.

use brokerkit_core::{BrokerUrl, SchemeProfile};
use serde_json::{Map, Value};

use crate::Registry;

/// The AsyncAPI protocol and host of a brokerkit URL, credentials left out.
pub(super) fn server_of_url(url: &str) -> Result<(String, String), String> {
    let parsed = BrokerUrl::parse(url).map_err(|e| e.to_string())?;
    let scheme = parsed.scheme();
    let profile = Registry::default().profile(scheme).ok_or_else(|| {
        format!(
            "no adapter for the {scheme}:// scheme in this build{}",
            crate::features::adapter_hint(scheme)
        )
    })?;
    let protocol = profile
        .asyncapi_protocol
        .ok_or_else(|| format!("no AsyncAPI protocol for the {scheme}:// scheme"))?;
    let u = parsed.expose();
    let host = match u.host_str() {
        Some(h) if !h.is_empty() => match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        },
        _ => profile
            .address_key
            .and_then(|k| u.query_pairs().find(|(key, _)| key == k))
            .map(|(_, e)| {
                let e = e.split("://").last().unwrap_or(&e).trim_end_matches('/');
                e.rsplit('@').next().unwrap_or(e).to_string()
            })
            .unwrap_or_default(),
    };
    if host.is_empty() {
        let hint = profile
            .address_key
            .map(|k| format!(" (give {k}=)"))
            .unwrap_or_default();
        return Err(format!("the {scheme}:// URL names no host{hint}"));
    }
    Ok((protocol.to_string(), host))
}

/// The profiles of the adapters compiled in that declare one of `protocols`.
pub(super) fn profiles_of(protocols: &[&str]) -> Vec<SchemeProfile> {
    let mut out: Vec<SchemeProfile> = Vec::new();
    for p in Registry::default().profiles() {
        let declared = p.asyncapi_protocol.is_some_and(|d| protocols.contains(&d));
        if declared && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Channel bindings of `destination` under `profiles`.
pub(super) fn channel(destination: &str, profiles: &[SchemeProfile]) -> Option<Value> {
    merge(
        profiles.iter().filter_map(|p| p.asyncapi_channel),
        "$destination",
        destination,
    )
}

/// Operation bindings of a consumer group under `profiles`.
pub(super) fn receive(group: &str, profiles: &[SchemeProfile]) -> Option<Value> {
    merge(
        profiles.iter().filter_map(|p| p.asyncapi_receive),
        "$group",
        group,
    )
}

/// The binding objects of `templates` merged into one, each string equal to `placeholder`
/// replaced by `name`. A template that is not a JSON object is skipped (and fails the
/// adapter's own test of its profile).
fn merge<'a>(
    templates: impl Iterator<Item = &'a str>,
    placeholder: &str,
    name: &str,
) -> Option<Value> {
    let mut out = Map::new();
    for t in templates {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) {
            for (k, mut v) in m {
                substitute(&mut v, placeholder, name);
                out.insert(k, v);
            }
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn substitute(v: &mut Value, placeholder: &str, name: &str) {
    match v {
        Value::String(s) if s == placeholder => *s = name.to_string(),
        Value::Array(a) => a.iter_mut().for_each(|v| substitute(v, placeholder, name)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|v| substitute(v, placeholder, name)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_and_merged() {
        let a = r#"{"p1": {"topic": "$destination", "ids": ["$destination", "x"]}}"#;
        let b = r#"{"p2": {"v": 1}}"#;
        let got = merge([a, b, "not json"].into_iter(), "$destination", "orders").unwrap();
        assert_eq!(
            got,
            serde_json::json!({"p1": {"topic": "orders", "ids": ["orders", "x"]}, "p2": {"v": 1}})
        );
        assert_eq!(merge(std::iter::empty(), "$group", "g"), None);
    }

    #[test]
    fn urls_without_an_asyncapi_protocol_or_adapter_are_refused() {
        assert!(server_of_url("memory://").is_err());
        assert!(server_of_url("nope").is_err());
        assert!(server_of_url("unknown://h:1").is_err());
    }
}
