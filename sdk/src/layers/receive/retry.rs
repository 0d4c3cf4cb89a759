//! `retry`: turns a failure of the inner layers or the handler into what happens next, by the
//! [`RetryPolicy`]: deliver again after the backoff, dead-letter (now, or once the attempts
//! run out) with the reason, error kind and schema violations, or drop. Logs one `warn` line
//! per dead-letter and per drop.
//!
//! A delivery whose attempt is already past `max_attempts` is dead-lettered **without
//! running** the inner layers: its earlier attempts did not finish (the process crashed or
//! was killed mid-handler, or the handler hung past the broker's lease), so no failure was
//! ever decided for them, and running it again could crash the next process too. This holds
//! the limit on brokers whose attempt count survives a crash
//! ([`Capabilities::crash_safe_attempts`](brokerkit_core::Capabilities::crash_safe_attempts)).
//! Deliveries deferred by an inner layer (`RetryLater`: idempotency store unavailable, key
//! busy) do not use up the limit, yet brokers count them; so this layer remembers, per
//! message (its `message-id`, else payload and key; the last 10,000), the attempt it deferred,
//! and a delivery right after a deferral it made runs normally. A deferral made by another
//! instance is not known here: during a long store outage across instances, a message may be
//! dead-lettered with this reason (redrive it).

use std::sync::Arc;

use brokerkit_core::{DeadLetterReason, Error, ErrorKind, Result, ValidationIssue};

use super::decode::ValidationFailed;
use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::context::Context;
use crate::retry::{Action, RetryPolicy};

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
    deferred: Deferred,
}

impl RetryLayer {
    /// Applies `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
            deferred: Deferred::default(),
        }
    }
}

impl tower::Layer<ReceiveService> for RetryLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Retry {
            inner,
            policy: self.policy.clone(),
            deferred: self.deferred.clone(),
        }))
    }
}

struct Retry {
    inner: ReceiveService,
    policy: Arc<RetryPolicy>,
    deferred: Deferred,
}

/// Attempts this layer deferred (`RetryLater`), per message fingerprint.
type Deferred = Arc<std::sync::Mutex<std::collections::HashMap<u64, u32>>>;

/// Most deferrals remembered; beyond it they are forgotten all at once.
const REMEMBERED_DEFERRALS: usize = 10_000;

/// Which message: its `message-id`, else its payload and key.
fn fingerprint(id: Option<&str>, payload: &[u8], key: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match id {
        Some(id) => (0u8, id).hash(&mut h),
        None => (1u8, payload, key).hash(&mut h),
    }
    h.finish()
}

impl Call<Incoming, Disposition> for Retry {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        let ctx = request.context.clone();
        let attempt = ctx.attempt();
        let mut print = None;
        if attempt > self.policy.max_attempts {
            let m = &request.message;
            let fp = fingerprint(ctx.message_id(), &m.payload, m.key.as_deref());
            print = Some(fp);
            let after_deferral = self
                .deferred
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&fp)
                .is_some_and(|deferred| deferred.saturating_add(1) >= attempt);
            if !after_deferral {
                let text = format!(
                    "delivery {attempt} is past max_attempts {}: the earlier attempts did not \
                     finish (the process crashed or the handler hung), so the handler is not \
                     run again",
                    self.policy.max_attempts
                );
                log(&ctx, "dead-lettering message", &text);
                let reason = DeadLetterReason::new(text).with_kind(ErrorKind::Handler);
                return Box::pin(std::future::ready(Ok(Disposition::DeadLetter(reason))));
            }
        }
        // Kept cheaply for a deferral's fingerprint (the id is in the context).
        let payload = request.message.payload.clone();
        let key = match ctx.message_id() {
            Some(_) => None,
            None => request.message.key.clone(),
        };
        let run = self.inner.run(request);
        Box::pin(async move {
            match run.await {
                Ok(Disposition::RetryLater) => {
                    let fp = print
                        .unwrap_or_else(|| fingerprint(ctx.message_id(), &payload, key.as_deref()));
                    let mut deferred = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
                    if deferred.len() >= REMEMBERED_DEFERRALS {
                        deferred.clear();
                    }
                    deferred.insert(fp, attempt);
                    drop(deferred);
                    Ok(Disposition::Retry {
                        delay: Some(self.policy.backoff.delay(attempt)),
                    })
                }
                Ok(d) => Ok(d),
                Err(error) => Ok(decide(&self.policy, &ctx, error)),
            }
        })
    }
}

fn decide(policy: &RetryPolicy, ctx: &Context, error: Error) -> Disposition {
    match policy.decide(&error, ctx.attempt()) {
        Action::Retry(delay) => Disposition::Retry {
            delay: (!delay.is_zero()).then_some(delay),
        },
        Action::Drop => {
            log(ctx, "dropping message by policy", &error.to_string());
            Disposition::Drop
        }
        Action::DeadLetter { exhausted } => {
            let text = if exhausted {
                format!("gave up after {} attempts: {error}", ctx.attempt())
            } else {
                error.to_string()
            };
            log(ctx, "dead-lettering message", &text);
            let issues = validation_issues(&error);
            Disposition::DeadLetter(
                DeadLetterReason::new(text)
                    .with_kind(error.kind())
                    .with_validation_errors(issues),
            )
        }
    }
}

fn log(ctx: &Context, what: &str, reason: &str) {
    tracing::warn!(
        destination = ctx.destination(),
        group = ctx.group().unwrap_or("default"),
        message_id = ctx.message_id().unwrap_or(""),
        correlation_id = ctx.correlation_id().unwrap_or(""),
        attempt = ctx.attempt(),
        reason,
        "{what}"
    );
}

fn validation_issues(error: &Error) -> Vec<ValidationIssue> {
    error
        .source_ref()
        .and_then(|s| s.downcast_ref::<ValidationFailed>())
        .map(|v| v.issues.clone())
        .unwrap_or_default()
}
