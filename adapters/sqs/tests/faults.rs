//! Fault injection with wiremock standing in for SQS (the only mock used by brokerkit):
//! throttling, 5xx, timeouts, malformed answers, refused settlements and partial batch
//! failures each give a typed error, retryable or not, and nothing is acked by mistake.

use std::time::Duration;

use brokerkit_core::{Backend, BrokerUrl, Connector, ConsumerOptions, ErrorKind, Headers, Message};
use brokerkit_sqs::SqsConnector;
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "wJalrXUtnFEMI-s3cr3t";
const KEY_ID: &str = "AKIDEXAMPLEKEY";

fn target(op: &str) -> wiremock::matchers::HeaderExactMatcher {
    header("x-amz-target", format!("AmazonSQS.{op}").as_str())
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_json(body)
}

/// An AWS JSON-protocol error, with the query-compatible code header SQS sends.
fn aws_error(status: u16, code: &str, query_code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .insert_header(
            "x-amzn-query-error",
            format!("{query_code};Sender").as_str(),
        )
        .set_body_json(
            json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": "injected fault"}),
        )
}

/// A mock SQS that knows queue `q`, and a backend connected to it.
async fn setup(max_attempts: u32) -> (MockServer, std::sync::Arc<dyn Backend>) {
    let server = MockServer::start().await;
    let queue_url = format!("{}/000000000000/q", server.uri());
    Mock::given(method("POST"))
        .and(target("ListQueues"))
        .respond_with(ok(json!({"QueueUrls": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetQueueUrl"))
        .respond_with(ok(json!({"QueueUrl": queue_url})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetQueueAttributes"))
        .respond_with(ok(json!({"Attributes": {"MaximumMessageSize": "262144"}})))
        .mount(&server)
        .await;
    let url = format!(
        "sqs://?endpoint={}&region=us-east-1&access_key_id={KEY_ID}&secret_access_key={SECRET}\
         &max_attempts={max_attempts}&retry_backoff_ms=5&timeout_ms=500&wait_time_secs=0",
        server.uri()
    );
    let backend = SqsConnector
        .connect(&BrokerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    (server, backend)
}

async fn count(server: &MockServer, op: &str) -> usize {
    let want = format!("AmazonSQS.{op}");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) == Some(want.as_str())
        })
        .count()
}

fn no_secrets(text: &str) {
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains(KEY_ID), "access key id leaked: {text}");
}

fn receive_one(server: &MockServer) -> Mock {
    let _ = server;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(ok(json!({"Messages": [{
            "MessageId": "m-1",
            "ReceiptHandle": "rh-1",
            "Body": "payload",
            "MD5OfBody": "ignored",
            "Attributes": {"ApproximateReceiveCount": "2", "ApproximateFirstReceiveTimestamp": "1700000000000"}
        }]})))
}

#[tokio::test]
async fn throttling_is_retried_then_a_retryable_throttled_error() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessage"))
        .respond_with(aws_error(400, "ThrottlingException", "RequestThrottled"))
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let e = producer.send(Message::new("x")).await.unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert!(e.is_retryable());
    assert_eq!(count(&server, "SendMessage").await, 3, "the SDK retried");
    assert_eq!(e.context().destination.as_deref(), Some("q"));
    no_secrets(&e.to_string());
    no_secrets(&format!("{e:?}"));
}

#[tokio::test]
async fn server_errors_are_retryable_unavailable() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessage"))
        .respond_with(aws_error(500, "InternalError", "InternalError"))
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let e = producer.send(Message::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert_eq!(count(&server, "SendMessage").await, 3);
    // 503 without a known code: still unavailable.
    server.reset().await;
    Mock::given(method("POST"))
        .and(target("SendMessage"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&server)
        .await;
    let e = producer.send(Message::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn slow_answers_are_retryable_timeouts() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessage"))
        .respond_with(
            ok(json!({"MessageId": "m", "MD5OfMessageBody": "x"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let started = std::time::Instant::now();
    let e = producer.send(Message::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout_ms applies"
    );
}

#[tokio::test]
async fn malformed_answers_are_permanent_unexpected_errors() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_string("<<<this is not json"),
        )
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let e = producer.send(Message::new("x")).await.unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::Unexpected, "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn failed_ack_is_an_error_and_the_message_is_not_deleted() {
    let (server, backend) = setup(3).await;
    receive_one(&server).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DeleteMessage"))
        .respond_with(aws_error(500, "InternalError", "InternalError"))
        .mount(&server)
        .await;
    let mut consumer = backend
        .consumer("q", &ConsumerOptions::default())
        .await
        .unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    assert_eq!(d.attempt(), 2, "attempt from ApproximateReceiveCount");
    assert_eq!(&d.message().payload[..], b"payload");
    let e = d.ack().await.unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.context().operation, Some("ack"));
    // Every delete failed, and nothing else touched the message: it stays in the queue and
    // comes back after its visibility timeout.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&server, "DeleteMessage").await, 3);
    assert_eq!(count(&server, "ChangeMessageVisibility").await, 0);
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn expired_receipt_handle_is_delivery_expired() {
    let (server, backend) = setup(3).await;
    receive_one(&server).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("ChangeMessageVisibility"))
        .respond_with(aws_error(
            400,
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
        ))
        .mount(&server)
        .await;
    let mut consumer = backend
        .consumer("q", &ConsumerOptions::default())
        .await
        .unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    let e = d.nack(None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeliveryExpired, "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn dropped_delivery_is_released_with_visibility_zero() {
    let (server, backend) = setup(3).await;
    receive_one(&server).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("ChangeMessageVisibility"))
        .and(wiremock::matchers::body_partial_json(
            json!({"ReceiptHandle": "rh-1", "VisibilityTimeout": 0}),
        ))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let mut consumer = backend
        .consumer("q", &ConsumerOptions::default())
        .await
        .unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    drop(d);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.verify().await;
    assert_eq!(count(&server, "DeleteMessage").await, 0);
}

#[tokio::test]
async fn receive_errors_surface_and_the_consumer_keeps_running() {
    let (server, backend) = setup(1).await;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(aws_error(400, "ThrottlingException", "RequestThrottled"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    receive_one(&server)
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("ReceiveMessage"))
        .respond_with(ok(json!({})))
        .with_priority(3)
        .mount(&server)
        .await;
    let mut consumer = backend
        .consumer("q", &ConsumerOptions::default())
        .await
        .unwrap();
    let e = consumer.next().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.context().operation, Some("receive"));
    let d = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("the consumer recovers")
        .unwrap()
        .unwrap();
    assert_eq!(&d.message().payload[..], b"payload");
    drop(d);
}

#[tokio::test]
async fn partial_batch_failure_names_the_failed_entries() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessageBatch"))
        .respond_with(ok(json!({
            "Successful": [{"Id": "0", "MessageId": "a", "MD5OfMessageBody": "x"}],
            "Failed": [
                {"Id": "1", "SenderFault": false, "Code": "InternalError", "Message": "try later"},
                {"Id": "2", "SenderFault": true, "Code": "InvalidParameterValue", "Message": "bad entry"}
            ]
        })))
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let batch = (0..3)
        .map(|i| {
            let mut h = Headers::new();
            h.set_message_id(format!("id-{i}")).unwrap();
            Message::new(format!("m{i}")).with_headers(h)
        })
        .collect();
    let e = producer.send_batch(batch).await.unwrap_err();
    eprintln!("{e}");
    let report = brokerkit_core::BatchError::of(&e).expect("a structured batch report");
    assert_eq!(report.unsent(), vec![1, 2], "{e}");
    assert_eq!(report.total, 3);
    let why: Vec<String> = report
        .failed
        .iter()
        .map(|(_, e)| e.message().to_string())
        .collect();
    assert_eq!(
        why,
        [
            "InternalError: try later (message-id \"id-1\")",
            "InvalidParameterValue: bad entry (message-id \"id-2\")"
        ]
    );
    // One entry failed for good, so the batch error is not retryable as a whole.
    assert!(!e.is_retryable());
    assert_eq!(count(&server, "SendMessageBatch").await, 1);
}

#[tokio::test]
async fn refused_batch_request_names_every_entry() {
    let (server, backend) = setup(3).await;
    Mock::given(method("POST"))
        .and(target("SendMessageBatch"))
        .respond_with(aws_error(400, "ThrottlingException", "RequestThrottled"))
        .mount(&server)
        .await;
    let producer = backend.producer("q").await.unwrap();
    let batch = (0..4).map(|i| Message::new(format!("m{i}"))).collect();
    let e = producer.send_batch(batch).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert!(e.is_retryable());
    let report = brokerkit_core::BatchError::of(&e).expect("a structured batch report");
    assert_eq!(report.unsent(), vec![0, 1, 2, 3], "{e}");
}

#[tokio::test]
async fn missing_queue_and_refused_credentials_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("ListQueues"))
        .respond_with(ok(json!({"QueueUrls": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetQueueUrl"))
        .respond_with(aws_error(
            400,
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ))
        .mount(&server)
        .await;
    let url = format!(
        "sqs://?endpoint={}&region=us-east-1&access_key_id={KEY_ID}&secret_access_key={SECRET}&auto_create=false&max_attempts=1",
        server.uri()
    );
    let backend = SqsConnector
        .connect(&BrokerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let e = backend.producer("orders").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("\"orders\""), "{e}");
    no_secrets(&e.to_string());
    server.reset().await;
    Mock::given(method("POST"))
        .and(target("ListQueues"))
        .respond_with(aws_error(
            403,
            "InvalidClientTokenId",
            "InvalidClientTokenId",
        ))
        .mount(&server)
        .await;
    let e = SqsConnector
        .connect(&BrokerUrl::parse(&url).unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    no_secrets(&e.to_string());
}

#[tokio::test]
async fn unreachable_endpoint_is_retryable_unavailable_without_secrets() {
    // Bind then free a port, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!(
        "sqs://?endpoint=http://127.0.0.1:{port}&region=us-east-1&access_key_id={KEY_ID}&secret_access_key={SECRET}&max_attempts=2&retry_backoff_ms=5"
    );
    let e = SqsConnector
        .connect(&BrokerUrl::parse(&url).unwrap())
        .await
        .err()
        .unwrap();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let shown = e.to_string();
    no_secrets(&shown);
    no_secrets(&format!("{e:?}"));
    assert!(shown.contains("secret_access_key=***"), "{shown}");
}

#[tokio::test]
async fn bad_urls_are_config_errors_without_secrets() {
    for (url, expect) in [
        (
            format!("sqs://?colour=red&secret_access_key={SECRET}&access_key_id={KEY_ID}"),
            "colour",
        ),
        (
            format!("sqs://?access_key_id={KEY_ID}"),
            "secret_access_key",
        ),
        ("sqs://?wait_time_secs=30".to_string(), "0 to 20"),
        ("sqs://?endpoint=ftp://x".to_string(), "http(s)"),
        ("sns://?queue_owner=1".to_string(), "sqs:// only"),
        ("sqs://localhost:4566".to_string(), "endpoint"),
    ] {
        let e = SqsConnector
            .connect(&BrokerUrl::parse(&url).unwrap())
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains(expect), "{expect}: {e}");
        no_secrets(&e.to_string());
    }
}
