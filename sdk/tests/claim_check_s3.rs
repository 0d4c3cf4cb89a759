//! The S3 object store on LocalStack (127.0.0.1:4566, as `scripts/brokers up` starts it):
//! put/get/delete, a missing key, and the expiry lifecycle rule. Skipped with a printed reason
//! only when `BROKERKIT_SKIP_BROKERS` lists `localstack`.
#![cfg(feature = "claim-check-s3")]

use brokerkit::claim_check::{connect_object_store, S3Store, DEFAULT_PREFIX};
use brokerkit::{BrokerUrl, Bytes, ErrorKind};

const URL: &str = "s3://brokerkit-sdk-tests?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&create_bucket=true";

fn skipped() -> bool {
    let skip = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == "localstack") {
        eprintln!("SKIP claim_check_s3: localstack listed in BROKERKIT_SKIP_BROKERS");
        return true;
    }
    false
}

#[tokio::test]
async fn s3_store_put_get_delete_and_missing() {
    if skipped() {
        return;
    }
    let store = connect_object_store(URL).await.unwrap();
    assert_eq!(
        (store.kind(), store.bucket()),
        ("s3", "brokerkit-sdk-tests")
    );
    let key = format!("{DEFAULT_PREFIX}/t/{}", uuid::Uuid::new_v4().simple());
    let body = Bytes::from(vec![9u8; 300_000]);
    store
        .put(&key, body.clone(), Some("application/octet-stream"))
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(body));
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.delete(&key).await.unwrap();
    assert_eq!(
        store.get("../escape").await.unwrap_err().kind(),
        ErrorKind::Decode
    );
}

#[tokio::test]
async fn expiry_rule_is_installed_on_the_prefix() {
    if skipped() {
        return;
    }
    let url = BrokerUrl::parse(&format!(
        "{}&expire_after_days=7",
        URL.replace("brokerkit-sdk-tests", "brokerkit-sdk-lifecycle")
    ))
    .unwrap();
    let store = S3Store::connect(&url).await.unwrap();
    assert_eq!(store.expiry_days(DEFAULT_PREFIX).await.unwrap(), Some(7));
    store.expire_after("other-prefix", 3).await.unwrap();
    assert_eq!(store.expiry_days("other-prefix").await.unwrap(), Some(3));
    assert_eq!(
        store.expiry_days(DEFAULT_PREFIX).await.unwrap(),
        Some(7),
        "other rules are kept"
    );
    assert_eq!(
        store.expire_after("x", 0).await.unwrap_err().kind(),
        ErrorKind::Config
    );
}

#[tokio::test]
async fn bad_urls_are_config_errors_without_secrets() {
    let e = connect_object_store("s3://b?region=us-east-1&access_key_id=AK")
        .await
        .err()
        .expect("an error");
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = connect_object_store("s3://b?nope=1&secret_access_key=TOPSECRET")
        .await
        .err()
        .expect("an error");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("TOPSECRET"), "{e}");
    assert!(
        e.to_string().contains("endpoint"),
        "lists the accepted keys: {e}"
    );
    let e = connect_object_store("ftp://x")
        .await
        .err()
        .expect("an error");
    assert!(e.to_string().contains("s3://"), "{e}");
}
