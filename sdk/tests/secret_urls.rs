//! No secret from a broker or store URL reaches an error's `Display` or `Debug` (issue 12,
//! item 13), whether the URL fails to parse, names a bad port or key, or the client library's
//! own error (the source) quotes it. Each adapter's malformed URLs are a shared case of the
//! conformance suite (`Fixture::malformed_urls`); these are the ones of no adapter.

use brokerkit::core::config::redact_text;
use brokerkit::{Broker, BrokerUrl, Error, ErrorKind};

/// `(url, secrets it holds)`.
const URLS: &[(&str, &[&str])] = &[
    ("nohost://h:bad?secret_access_key=SECRETKEY", &["SECRETKEY"]),
    ("proto://user:pa/ss@host:notaport", &["pa/ss", "pa%2Fss"]),
    ("proto://tok3nSECRET@h:99999", &["tok3nSECRET"]),
    ("proto://user:p?w#d@host:notaport", &["p?w#d", "p?w"]),
    ("user:NOSCHEME@host:5672", &["NOSCHEME"]),
    ("memory://x?token=MTOKEN", &["MTOKEN"]),
    ("redis://:RPASS@h:notaport", &["RPASS"]),
    (
        "redis://user:RPASS2@127.0.0.1:9/?password=RPASS3",
        &["RPASS2", "RPASS3"],
    ),
    ("postgres://u:PGPASS@h:99999/db", &["PGPASS"]),
    (
        "postgres://u:PG/PASS@h/db?sslmode=bogus",
        &["PG/PASS", "PG%2FPASS"],
    ),
    (
        "postgresql://u:PGPASS2@127.0.0.1:9/db?connect_timeout_ms=100",
        &["PGPASS2"],
    ),
];

fn assert_clean(what: &str, url: &str, secrets: &[&str], e: &Error) {
    for text in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
        for s in secrets {
            assert!(!text.contains(s), "{what} {url:?} printed {s:?}: {text}");
        }
    }
}

#[test]
fn url_parse_errors_redact_secrets() {
    for (url, secrets) in URLS {
        if let Err(e) = BrokerUrl::parse(url) {
            assert_clean("BrokerUrl::parse", url, secrets, &e);
        }
    }
}

#[tokio::test]
async fn broker_connect_errors_redact_secrets() {
    for (url, secrets) in URLS.iter().filter(|(u, _)| !u.starts_with("redis")) {
        let connect = Broker::connect(url);
        match tokio::time::timeout(std::time::Duration::from_secs(20), connect).await {
            Ok(Err(e)) => assert_clean("Broker::connect", url, secrets, &e),
            Ok(Ok(b)) => {
                let _ = b.close().await;
            }
            Err(_) => {}
        }
    }
}

#[tokio::test]
async fn store_connect_errors_redact_secrets() {
    for (url, secrets) in URLS {
        let connect = brokerkit::connect_store(url);
        match tokio::time::timeout(std::time::Duration::from_secs(20), connect).await {
            Ok(Err(e)) => assert_clean("connect_store", url, secrets, &e),
            Ok(Ok(_)) => panic!("{url} connected"),
            Err(_) => panic!("{url}: connect_store did not give up in 20 s"),
        }
    }
}

/// A client library error whose `Display` quotes the URL and whose `Debug` holds the password.
#[derive(Debug)]
struct LeakyClientError {
    #[allow(dead_code)]
    password: String,
    url: String,
}

impl std::fmt::Display for LeakyClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach {}", self.url)
    }
}

impl std::error::Error for LeakyClientError {}

#[test]
fn client_library_sources_print_redacted() {
    let e = Error::new(ErrorKind::Unavailable, "connect").with_source(LeakyClientError {
        password: "DBGSECRET".into(),
        url: "proto://user:pa/ss@host:5672 and other://tok3nSECRET@h".into(),
    });
    assert_clean("source", "-", &["DBGSECRET", "pa/ss", "tok3nSECRET"], &e);
    assert!(e.to_string().contains("proto://user:***@host:5672"), "{e}");
    assert_eq!(
        redact_text("see aws://h?secret_access_key=SK&region=x"),
        "see aws://h?secret_access_key=***&region=x"
    );
}
