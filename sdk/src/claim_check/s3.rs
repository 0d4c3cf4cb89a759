//! S3 (and any S3-compatible service, LocalStack included) as the object store.
//!
//! Why aws-sdk-s3 and not the `object_store` crate: with an AWS adapter compiled in (the
//! brokers whose small payload limit makes claim-check matter most), aws-sdk-s3 adds 17
//! crates and reuses the same aws-config credential chain, smithy runtime and hyper/rustls
//! client; `object_store` (aws feature) adds 23, among them reqwest, a second HTTP client
//! with its own TLS set-up. Without an AWS adapter the balance turns (object_store 71
//! crates, aws-sdk-s3 123), see the issue note. Its types stay inside this file.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use brokerkit_core::{BrokerUrl, Bytes, Error, ErrorKind, Result};

use super::store::{check_key, ObjectStore};

/// Query keys of an `s3://bucket` store URL.
pub const S3_KEYS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "path_style",
    "create_bucket",
    "expire_after_days",
    "timeout_ms",
];

/// Objects in an S3 bucket.
///
/// `s3://bucket?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test`
///
/// | key | meaning |
/// |---|---|
/// | `endpoint` | S3-compatible endpoint (LocalStack, MinIO); path-style addressing then |
/// | `region` | AWS region (else `AWS_REGION` / the profile) |
/// | `access_key_id`, `secret_access_key`, `session_token` | static credentials (else the default chain); redacted in output |
/// | `path_style` | force path-style addressing (default: true with `endpoint`) |
/// | `create_bucket` | create the bucket when it is missing (default false) |
/// | `expire_after_days` | install the expiry rule on `brokerkit-claim-check/` (see [`S3Store::expire_after`]) |
/// | `timeout_ms` | per-request timeout (default 30000) |
///
/// SHA-256 verification is brokerkit's (the reference carries the digest), so the SDK's own
/// request and response checksums are left to when S3 requires them.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Connects from an `s3://bucket?…` URL (keys above) and checks the bucket answers.
    pub async fn connect(url: &BrokerUrl) -> Result<Self> {
        let p = url.params(S3_KEYS)?;
        let bucket = url
            .expose()
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::config("s3:// store needs a bucket: s3://<bucket>?…"))?
            .to_string();
        let timeout = p.millis("timeout_ms")?.unwrap_or(Duration::from_secs(30));
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .build(),
        );
        if let Some(r) = p.get("region") {
            loader = loader.region(Region::new(r.to_string()));
        }
        let endpoint = p.get("endpoint").map(str::to_string);
        if let Some(e) = &endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        match (p.get("access_key_id"), p.get("secret_access_key")) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                    id,
                    secret,
                    p.get("session_token").map(str::to_string),
                    None,
                    "brokerkit-url",
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Error::config(
                    "s3:// store: give both access_key_id and secret_access_key, or neither",
                ))
            }
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::config(format!(
                "no AWS region for {}: add region=<name> or set AWS_REGION",
                url.redacted()
            )));
        }
        let path_style = p.flag("path_style")?.unwrap_or(endpoint.is_some());
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let store = S3Store {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
        };
        store
            .check_bucket(p.flag("create_bucket")?.unwrap_or(false))
            .await?;
        if let Some(days) = p.parse::<u32>("expire_after_days", "a number of days")? {
            store.expire_after(super::DEFAULT_PREFIX, days).await?;
        }
        Ok(store)
    }

    async fn check_bucket(&self, create: bool) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if create && status(&e) == Some(404) => {
                match self
                    .client
                    .create_bucket()
                    .bucket(&self.bucket)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
                    Err(e) => Err(map(e, "create bucket", &self.bucket)),
                }
            }
            Err(e) => Err(map(e, "head bucket", &self.bucket)),
        }
    }

    /// Installs a rule that expires objects under `prefix` `days` after they were written
    /// (the bucket's other lifecycle rules are kept; an earlier rule of ours for the prefix is
    /// replaced): the clean-up for destinations with fan-out, where no single consumer knows
    /// when every group is done. Choose `days` longer than dead letters may wait for a redrive.
    pub async fn expire_after(&self, prefix: &str, days: u32) -> Result<()> {
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
            LifecycleRuleFilter,
        };
        if days == 0 {
            return Err(Error::config("expire_after_days must be at least 1"));
        }
        let prefix = prefix.trim_end_matches('/');
        let id = format!("brokerkit-claim-check-expiry-{prefix}");
        let mut rules: Vec<LifecycleRule> = self
            .lifecycle_rules()
            .await?
            .into_iter()
            .filter(|r| r.id() != Some(id.as_str()))
            .collect();
        let built = |e: aws_sdk_s3::error::BuildError| {
            Error::new(ErrorKind::Unexpected, format!("lifecycle rule: {e}"))
        };
        rules.push(
            LifecycleRule::builder()
                .id(id)
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .prefix(format!("{prefix}/"))
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(days as i32).build())
                .build()
                .map_err(built)?,
        );
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(built)?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| map(e, "put lifecycle rules on", &self.bucket))?;
        Ok(())
    }

    async fn lifecycle_rules(&self) -> Result<Vec<aws_sdk_s3::types::LifecycleRule>> {
        match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out.rules.unwrap_or_default()),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
            Err(e) => Err(map(e, "get lifecycle rules of", &self.bucket)),
        }
    }

    /// The expiry in days of the bucket's rule for `prefix`, if one is installed.
    pub async fn expiry_days(&self, prefix: &str) -> Result<Option<u32>> {
        let want = format!("{}/", prefix.trim_end_matches('/'));
        Ok(self
            .lifecycle_rules()
            .await?
            .iter()
            .filter(|r| r.filter().and_then(|f| f.prefix()) == Some(want.as_str()))
            .find_map(|r| r.expiration().and_then(|e| e.days()))
            .map(|d| d.max(0) as u32))
    }
}

fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status)
}

trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The one mapping from the S3 client's errors to brokerkit's kinds.
fn map<E>(e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>, what: &str, bucket: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &e {
        SdkError::TimeoutError(_) => ErrorKind::Timeout,
        SdkError::DispatchFailure(_) => ErrorKind::Unavailable,
        _ => match (status(&e), e.code()) {
            (Some(401 | 403), _) => ErrorKind::PermissionDenied,
            (Some(404), _) | (_, Some("NoSuchBucket")) => ErrorKind::NotFound,
            (Some(429), _) | (_, Some("SlowDown")) => ErrorKind::Throttled,
            (Some(s), _) if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Unexpected,
        },
    };
    let detail = e.message().map(str::to_string).unwrap_or_else(|| {
        brokerkit_core::config::redact_text(&aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
    });
    Error::new(
        kind,
        format!(
            "claim-check s3 store: cannot {what} bucket {bucket:?}: {}{detail}",
            e.code().map(|c| format!("{c}: ")).unwrap_or_default()
        ),
    )
    .retryable(kind.default_retryable())
    .with_source(e)
}

#[async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    /// 5 GiB: S3's largest single `PutObject`.
    fn max_object_bytes(&self) -> u64 {
        5 << 30
    }

    async fn put(&self, key: &str, bytes: Bytes, content_type: Option<&str>) -> Result<()> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type.map(str::to_string))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| map(e, "put an object into", &self.bucket))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(map(e, "get an object from", &self.bucket)),
        };
        let body = out.body.collect().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("claim-check s3 store: reading object {key} failed: {e}"),
            )
            .with_source(e)
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map(e, "delete an object from", &self.bucket))?;
        Ok(())
    }
}
