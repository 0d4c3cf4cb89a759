//! Protocol bindings AsyncAPI defines for the brokers brokerkit speaks, and servers from
//! brokerkit URLs. SQS and SNS bindings describe queue policies brokerkit does not manage,
//! so none is written for them.

use serde_json::{json, Map, Value};

/// The AsyncAPI protocol and host of a brokerkit URL, credentials left out.
pub(super) fn server_of_url(url: &str) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "a server URL looks like scheme://host:port".to_string())?;
    let protocol = match scheme {
        "kafka" => "kafka",
        "amqp" => "amqp",
        "amqps" => "amqps",
        "nats" | "nats+js" => "nats",
        "sqs" => "sqs",
        "sns" => "sns",
        other => return Err(format!("no AsyncAPI protocol for the {other:?} scheme")),
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if host.is_empty() {
        // SQS/SNS URLs name the endpoint in the query.
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("endpoint="))
            .map(|e| e.split("://").last().unwrap_or(e).trim_end_matches('/'))
            .unwrap_or("")
    } else {
        host
    };
    if host.is_empty() {
        return Err(format!(
            "the {scheme}:// URL names no host (for SQS/SNS, give endpoint=)"
        ));
    }
    Ok((protocol.to_string(), host.to_string()))
}

/// Channel bindings for `destination` on the given protocols.
pub(super) fn channel(destination: &str, protocols: &[&str]) -> Option<Value> {
    let mut out = Map::new();
    for p in protocols {
        match *p {
            "kafka" => {
                out.insert(
                    "kafka".into(),
                    json!({"topic": destination, "bindingVersion": "0.5.0"}),
                );
            }
            "amqp" | "amqps" => {
                // The RabbitMQ adapter publishes to a fanout exchange named after the
                // destination; each group has its own queue bound to it.
                out.insert(
                    "amqp".into(),
                    json!({"is": "routingKey",
                           "exchange": {"name": destination, "type": "fanout", "durable": true},
                           "bindingVersion": "0.3.0"}),
                );
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Operation bindings of a consumer group on the given protocols.
pub(super) fn receive(group: &str, protocols: &[&str]) -> Option<Value> {
    let mut out = Map::new();
    for p in protocols {
        match *p {
            "kafka" => {
                out.insert(
                    "kafka".into(),
                    json!({"groupId": {"type": "string", "enum": [group]}, "bindingVersion": "0.5.0"}),
                );
            }
            "nats" => {
                out.insert(
                    "nats".into(),
                    json!({"queue": group, "bindingVersion": "0.1.0"}),
                );
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_from_urls_without_credentials() {
        assert_eq!(
            server_of_url("amqp://guest:secret@127.0.0.1:5672/%2f").unwrap(),
            ("amqp".into(), "127.0.0.1:5672".into())
        );
        assert_eq!(
            server_of_url("nats+js://127.0.0.1:4222?ack_wait_ms=1").unwrap(),
            ("nats".into(), "127.0.0.1:4222".into())
        );
        assert_eq!(
            server_of_url("sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1").unwrap(),
            ("sqs".into(), "127.0.0.1:4566".into())
        );
        assert!(server_of_url("memory://").is_err());
        assert!(server_of_url("sqs://?region=x").is_err());
        assert!(server_of_url("nope").is_err());
    }
}
