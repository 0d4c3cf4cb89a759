//! The conformance suite (written once in `integration-tests`) against this adapter, with its
//! fixture (`fixture/mod.rs`), and a round trip through the raw client with no brokerkit code in
//! between: if that fails, the broker is broken, not the adapter.

use brokerkit_integration_tests::{broker_url, conformance_suite};

mod fixture;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

const LOCALSTACK: &str =
    "endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test";

fn url(scheme: &str, env_var: &str, extra: &str) -> Option<String> {
    broker_url(
        "localstack",
        env_var,
        &format!("{scheme}://?{LOCALSTACK}&{extra}"),
    )
}

conformance_suite!(
    sqs,
    url("sqs", "BROKERKIT_SQS_URL", "wait_time_secs=20"),
    fixture::SqsFixture { sns: false },
    brokerkit::Registry::default(),
    lease: url(
        "sqs",
        "BROKERKIT_SQS_LEASE_URL",
        "wait_time_secs=1&visibility_timeout_secs=2"
    )
);
conformance_suite!(
    sns,
    url("sns", "BROKERKIT_SNS_URL", "wait_time_secs=20"),
    fixture::SqsFixture { sns: true },
    brokerkit::Registry::default(),
    lease: url(
        "sns",
        "BROKERKIT_SNS_LEASE_URL",
        "wait_time_secs=1&visibility_timeout_secs=2"
    )
);

#[tokio::test]
async fn localstack_sqs_answers_aws_sdk() {
    let Some(endpoint) = broker_url(
        "localstack",
        "BROKERKIT_SMOKE_LOCALSTACK",
        "http://127.0.0.1:4566",
    ) else {
        return;
    };
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "smoke",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let created = sqs
        .create_queue()
        .queue_name(unique("smoke"))
        .send()
        .await
        .expect("LocalStack SQS answers");
    let url = created.queue_url().expect("a queue url").to_string();
    assert!(url.contains("/queue/"), "path-style queue URL: {url}");
    sqs.send_message()
        .queue_url(&url)
        .message_body("ping")
        .send()
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages()[0].body(), Some("ping"));
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}

/// The AsyncAPI server of an `sqs://` URL takes its host from `endpoint=`; no bindings.
#[test]
fn asyncapi_server_from_the_endpoint() {
    let d = brokerkit_integration_tests::conformance_profile::asyncapi_of(
        "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1",
    );
    assert_eq!(d["servers"]["s"]["protocol"], "sqs");
    assert_eq!(d["servers"]["s"]["host"], "127.0.0.1:4566");
    assert!(d["channels"]["orders"].get("bindings").is_none());
    let missing = brokerkit::asyncapi::Document::builder("t", "1")
        .server_url("s", "sqs://?region=x")
        .build();
    assert!(missing.unwrap_err().to_string().contains("endpoint="));
}
