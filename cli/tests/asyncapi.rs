//! `brokerkit asyncapi`: a document from the checked-in schemas, valid AsyncAPI 3.0, with no
//! credentials; mistakes exit 2 saying what is accepted.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn bk() -> Command {
    let mut c = Command::cargo_bin("brokerkit").expect("the brokerkit binary");
    c.env_remove("BROKERKIT_URL").env_remove("BROKERKIT_CONFIG");
    c
}

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// `NAME=URL` of every broker `scripts/brokers` starts whose adapter documents a server, with
/// the passwords their URLs hold.
fn servers() -> (Vec<String>, Vec<String>) {
    let registry = brokerkit::Registry::default();
    let mut servers = Vec::new();
    let mut passwords = Vec::new();
    for (name, url) in brokerkit_integration_tests::listed_brokers() {
        let parsed = brokerkit::BrokerUrl::parse(&url).unwrap();
        let documented = registry
            .profile(parsed.scheme())
            .is_some_and(|p| p.asyncapi_protocol.is_some());
        if name.contains('+') || !documented {
            continue;
        }
        passwords.extend(parsed.expose().password().map(str::to_string));
        servers.push(format!("{name}={url}"));
    }
    (servers, passwords)
}

#[test]
fn a_document_from_the_checked_in_schemas() {
    let (servers, passwords) = servers();
    let out = bk()
        .arg("asyncapi")
        .arg("--schemas")
        .arg(schemas())
        .args(servers.iter().flat_map(|s| ["--server", s.as_str()]))
        .args([
            "--title",
            "order-service",
            "--produces",
            "orders=order.placed",
            "--consumes",
            "orders:billing=order.placed.v1",
            "--produces",
            "payments=payment.captured",
            "--consumes",
            "payments:email=payment.captured",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for p in &passwords {
        assert!(!text.contains(&format!(":{p}@")), "{text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "order-service");
    for s in &servers {
        let name = s.split_once('=').unwrap().0;
        assert!(doc["servers"][name]["host"].is_string(), "{name}: {doc}");
    }
    assert_eq!(
        doc["operations"]["receive-orders-billing"]["action"],
        "receive"
    );
    assert_eq!(
        doc["components"]["messages"]["order.placed.v1"]["payload"]["required"][0],
        "order_id"
    );
    // Valid against the official schema when scripts/asyncapi-schema has fetched it.
    let official = std::env::var_os("BROKERKIT_ASYNCAPI_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/asyncapi/asyncapi-3.0.0.json")
        });
    match std::fs::read_to_string(&official) {
        Ok(s) => {
            let v = brokerkit::SchemaValidator::new(
                "AsyncAPI 3.0.0",
                serde_json::from_str(&s).unwrap(),
            )
            .unwrap();
            let issues = v.violations(&doc);
            assert!(issues.is_empty(), "{issues:#?}");
        }
        Err(_) => eprintln!(
            "SKIP official-schema validation: {} is missing",
            official.display()
        ),
    }
}

#[test]
fn mistakes_exit_2_and_say_what_is_there() {
    bk().arg("asyncapi")
        .arg("--schemas")
        .arg(schemas())
        .args(["--produces", "orders=order.shipped"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no published schema for \"order.shipped\"")
                .and(predicate::str::contains("order.placed")),
        );
    bk().arg("asyncapi")
        .arg("--schemas")
        .arg(schemas())
        .args(["--consumes", "orders=order.placed"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("DEST:GROUP=TYPE"));
    bk().arg("asyncapi")
        .args(["--schemas", "/nonexistent/dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read schema directory"));
    bk().arg("asyncapi")
        .arg("--schemas")
        .arg(schemas())
        .args(["--server", "x=memory://"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no AsyncAPI protocol"));
}
