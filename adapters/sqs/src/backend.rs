//! The connected backend: AWS clients, queue/topic resolution (created on first use where
//! allowed) and the `Backend` implementation for both schemes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use brokerkit_core::{
    dead_letter_destination, Backend, Capabilities, ConsumerBackend, ConsumerOptions, Error,
    ErrorKind, ProducerBackend, Result,
};
use tokio::sync::watch;

use crate::config::{Service, SqsConfig, DEFAULT_MAX_MESSAGE_BYTES};
use crate::consumer::SqsConsumer;
use crate::error::{from_sdk, Site};
use crate::names::{group_queue_name, queue_name, topic_name, DEFAULT_GROUP};
use crate::producer::{Producer, Target};

/// A resolved SQS queue.
#[derive(Debug)]
pub(crate) struct Queue {
    pub name: String,
    pub url: String,
    pub fifo: bool,
}

/// What the backend and everything it made share.
pub(crate) struct Inner {
    pub config: SqsConfig,
    pub capabilities: Arc<Capabilities>,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    topics: Mutex<HashMap<String, Arc<str>>>,
    subscriptions: Mutex<HashSet<(String, String)>>,
    closed: AtomicBool,
    /// Flips to `true` on close: consumers stop polling.
    pub shutdown: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Builds the AWS clients and checks that the service answers.
    pub async fn connect(config: SqsConfig) -> Result<Arc<Inner>> {
        let retry = RetryConfig::standard()
            .with_max_attempts(config.max_attempts)
            .with_initial_backoff(config.retry_backoff)
            .with_max_backoff(Duration::from_secs(5).max(config.retry_backoff));
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(r) = &config.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(e) = &config.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        if let Some(c) = &config.credentials {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
                None,
                "brokerkit-url",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::config(format!(
                "no AWS region for {}: add region=<name> to the URL or set AWS_REGION",
                config.redacted
            )));
        }
        let inner = Arc::new(Inner {
            capabilities: Arc::new(config.capabilities()),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            config,
            queues: Mutex::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            closed: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
        });
        inner.probe().await?;
        Ok(inner)
    }

    /// One cheap request, so an unreachable service or refused credentials show at connect.
    async fn probe(&self) -> Result<()> {
        let site = self.site("", "connect");
        match self.config.service {
            Service::Sqs => self
                .sqs
                .list_queues()
                .max_results(1)
                .send()
                .await
                .map(drop)
                .map_err(|e| from_sdk(e, site)),
            Service::Sns => self
                .sns
                .list_topics()
                .send()
                .await
                .map(drop)
                .map_err(|e| from_sdk(e, site)),
        }
    }

    /// The adapter name used in errors.
    pub fn name(&self) -> &'static str {
        self.config.service.name()
    }

    /// Error context for `destination` and `operation`.
    pub fn site<'a>(&'a self, destination: &'a str, operation: &'static str) -> Site<'a> {
        Site {
            broker: self.name(),
            destination,
            operation,
            address: &self.config.redacted,
        }
    }

    /// Fails with `Closed` once the backend was closed.
    pub fn check_open(&self, destination: &str, operation: &'static str) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self
                .site(destination, operation)
                .error(ErrorKind::Closed, "the broker connection was closed"));
        }
        Ok(())
    }

    /// The queue of an `sqs://` destination (created on first use when allowed).
    pub async fn destination_queue(&self, destination: &str) -> Result<Arc<Queue>> {
        let fifo = self.config.fifo;
        let name = queue_name(destination, fifo)?;
        let redrive = self.config.max_receive_count.is_some() && !destination.ends_with(".dlq");
        let redrive_to = if redrive {
            Some(queue_name(&dead_letter_destination(destination), fifo)?)
        } else {
            None
        };
        self.queue(&name, redrive_to, destination)
            .await
            .map(|q| q.0)
    }

    /// The queue called `name`: from the cache, looked up, or created (with a redrive policy
    /// to the queue `redrive_to` when `max_receive_count` is set). Also says whether it was
    /// created now.
    async fn queue(
        &self,
        name: &str,
        redrive_to: Option<String>,
        destination: &str,
    ) -> Result<(Arc<Queue>, bool)> {
        if let Some(q) = lock(&self.queues).get(name) {
            return Ok((q.clone(), false));
        }
        let site = self.site(destination, "resolve_queue");
        let looked_up = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .set_queue_owner_aws_account_id(self.config.queue_owner.clone())
            .send()
            .await;
        let (url, created) = match looked_up {
            Ok(out) => {
                let url = out.queue_url.ok_or_else(|| {
                    site.error(ErrorKind::Unexpected, "GetQueueUrl returned no queue URL")
                })?;
                self.check_queue_size(name, &url, site).await?;
                (url, false)
            }
            Err(e) => {
                let e = from_sdk(e, site);
                if e.kind() != ErrorKind::NotFound {
                    return Err(e);
                }
                if !self.config.auto_create {
                    return Err(site.error(
                        ErrorKind::NotFound,
                        format!(
                            "queue {name:?} does not exist and auto_create=false; create it, \
                             or connect with auto_create=true"
                        ),
                    ));
                }
                let dlq_arn = match redrive_to {
                    Some(dlq) => {
                        let (q, _) = Box::pin(self.queue(&dlq, None, destination)).await?;
                        Some(self.queue_arn(&q, destination).await?)
                    }
                    None => None,
                };
                (self.create_queue(name, dlq_arn, site).await?, true)
            }
        };
        let q = Arc::new(Queue {
            name: name.to_string(),
            url,
            fifo: name.ends_with(".fifo"),
        });
        lock(&self.queues).insert(name.to_string(), q.clone());
        Ok((q, created))
    }

    async fn create_queue(
        &self,
        name: &str,
        dlq_arn: Option<String>,
        site: Site<'_>,
    ) -> Result<String> {
        let c = &self.config;
        let mut req = self.sqs.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            req = req.attributes(QueueAttributeName::FifoQueue, "true");
        }
        if c.max_message_bytes != DEFAULT_MAX_MESSAGE_BYTES {
            req = req.attributes(
                QueueAttributeName::MaximumMessageSize,
                c.max_message_bytes.to_string(),
            );
        }
        if let Some(v) = c.visibility_timeout_secs {
            req = req.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let (Some(arn), Some(n)) = (dlq_arn, c.max_receive_count) {
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": n});
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        match req.send().await {
            Ok(out) => out.queue_url.ok_or_else(|| {
                site.error(ErrorKind::Unexpected, "CreateQueue returned no queue URL")
            }),
            Err(e) => {
                use aws_sdk_sqs::error::ProvideErrorMetadata;
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
                // Created meanwhile by someone else with other attributes: use it.
                if code.contains("QueueAlreadyExists") || code.contains("QueueNameExists") {
                    let out = self
                        .sqs
                        .get_queue_url()
                        .queue_name(name)
                        .send()
                        .await
                        .map_err(|e| from_sdk(e, site))?;
                    return out.queue_url.ok_or_else(|| {
                        site.error(ErrorKind::Unexpected, "GetQueueUrl returned no queue URL")
                    });
                }
                Err(from_sdk(e, site))
            }
        }
    }

    /// An existing queue must accept the message size this connection promises.
    async fn check_queue_size(&self, name: &str, url: &str, site: Site<'_>) -> Result<()> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .send()
            .await
            .map_err(|e| from_sdk(e, site))?;
        let size = out
            .attributes
            .as_ref()
            .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
            .and_then(|v| v.parse::<usize>().ok());
        match size {
            Some(size) if size < self.config.max_message_bytes => Err(site.error(
                ErrorKind::Config,
                format!(
                    "queue {name:?} accepts messages of at most {size} bytes, less than \
                     max_message_bytes={}; connect with max_message_bytes={size} or raise the \
                     queue's MaximumMessageSize",
                    self.config.max_message_bytes
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn queue_arn(&self, q: &Queue, destination: &str) -> Result<String> {
        let site = self.site(destination, "queue_arn");
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&q.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| from_sdk(e, site))?;
        out.attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| {
                site.error(
                    ErrorKind::Unexpected,
                    format!("GetQueueAttributes gave no QueueArn for queue {:?}", q.name),
                )
            })
    }

    /// The ARN of an `sns://` destination's topic (created on first use when allowed).
    pub async fn topic_arn(&self, destination: &str) -> Result<Arc<str>> {
        let name = topic_name(destination, self.config.fifo)?;
        if let Some(arn) = lock(&self.topics).get(&name) {
            return Ok(arn.clone());
        }
        let site = self.site(destination, "resolve_topic");
        let arn: Arc<str> = if self.config.auto_create {
            let mut req = self.sns.create_topic().name(&name);
            if self.config.fifo {
                req = req.attributes("FifoTopic", "true");
            }
            let out = req.send().await.map_err(|e| from_sdk(e, site))?;
            out.topic_arn
                .ok_or_else(|| site.error(ErrorKind::Unexpected, "CreateTopic returned no ARN"))?
                .into()
        } else {
            self.find_topic(&name, site).await?.into()
        };
        lock(&self.topics).insert(name, arn.clone());
        Ok(arn)
    }

    /// Looks a topic up by name (ListTopics, all pages).
    async fn find_topic(&self, name: &str, site: Site<'_>) -> Result<String> {
        let suffix = format!(":{name}");
        let mut token = None;
        loop {
            let out = self
                .sns
                .list_topics()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| from_sdk(e, site))?;
            if let Some(arn) = out
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|arn| arn.ends_with(&suffix))
            {
                return Ok(arn.to_string());
            }
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Err(site.error(
            ErrorKind::NotFound,
            format!(
                "topic {name:?} does not exist and auto_create=false; create it, or connect \
                 with auto_create=true"
            ),
        ))
    }

    /// The queue of consumer group `group` of an `sns://` destination, subscribed to its topic
    /// with raw message delivery (created and subscribed on first use when allowed).
    pub async fn group_queue(&self, destination: &str, group: &str) -> Result<Arc<Queue>> {
        let fifo = self.config.fifo;
        let topic = self.topic_arn(destination).await?;
        let name = group_queue_name(destination, group, fifo)?;
        let redrive_to = match self.config.max_receive_count {
            Some(_) if !destination.ends_with(".dlq") => {
                let dlq = dead_letter_destination(destination);
                // The broker's redrive target is the dead-letter topic's default group queue.
                let q = Box::pin(self.group_queue(&dlq, DEFAULT_GROUP)).await?;
                Some(q.name.clone())
            }
            _ => None,
        };
        let (queue, created) = self.queue(&name, redrive_to, destination).await?;
        if self.config.auto_create {
            self.subscribe(&topic, &queue, created, destination).await?;
        }
        Ok(queue)
    }

    async fn subscribe(
        &self,
        topic_arn: &str,
        queue: &Queue,
        created: bool,
        destination: &str,
    ) -> Result<()> {
        let key = (topic_arn.to_string(), queue.name.clone());
        if lock(&self.subscriptions).contains(&key) {
            return Ok(());
        }
        let site = self.site(destination, "subscribe");
        let queue_arn = self.queue_arn(queue, destination).await?;
        if created {
            // Lets the topic deliver to the queue (needed on AWS; LocalStack does not check).
            let policy = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "brokerkit-sns-delivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}
                }]
            });
            self.sqs
                .set_queue_attributes()
                .queue_url(&queue.url)
                .attributes(QueueAttributeName::Policy, policy.to_string())
                .send()
                .await
                .map_err(|e| from_sdk(e, site))?;
        }
        self.sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| from_sdk(e, site))?;
        lock(&self.subscriptions).insert(key);
        Ok(())
    }

    /// Where messages for `destination` are sent.
    pub async fn target(&self, destination: &str) -> Result<Target> {
        match self.config.service {
            Service::Sqs => Ok(Target::Queue(self.destination_queue(destination).await?)),
            Service::Sns => Ok(Target::Topic(self.topic_arn(destination).await?)),
        }
    }

    /// Where dead letters of `destination` go. On `sns://` the dead-letter topic's default
    /// group queue is created and subscribed first, so dead letters are kept even before any
    /// other group subscribes.
    pub async fn dead_letter_target(&self, destination: &str) -> Result<Target> {
        let dlq = dead_letter_destination(destination);
        if self.config.service == Service::Sns && self.config.auto_create {
            self.group_queue(&dlq, DEFAULT_GROUP).await?;
        }
        self.target(&dlq).await
    }
}

/// The backend of one `sqs://` or `sns://` connection.
pub(crate) struct SqsBackend {
    pub inner: Arc<Inner>,
}

#[async_trait]
impl Backend for SqsBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.inner.check_open(destination, "producer")?;
        let target = self.inner.target(destination).await?;
        Ok(Box::new(Producer::new(
            self.inner.clone(),
            destination,
            target,
        )))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.inner.check_open(destination, "consumer")?;
        let group = options.group.as_deref().unwrap_or(DEFAULT_GROUP);
        let queue = match self.inner.config.service {
            // SQS has no consumer groups: every consumer of a queue competes for its messages,
            // whatever group it names (the group is kept for the dead-letter envelope).
            Service::Sqs => self.inner.destination_queue(destination).await?,
            Service::Sns => self.inner.group_queue(destination, group).await?,
        };
        Ok(Box::new(SqsConsumer::start(
            self.inner.clone(),
            queue,
            destination,
            group,
            options.prefetch,
        )))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        crate::browse::browse(&self.inner, destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.inner, destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.shutdown.send_replace(true);
        Ok(())
    }
}
