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
}

impl RetryLayer {
    /// Applies `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
        }
    }
}

impl tower::Layer<ReceiveService> for RetryLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Retry {
            inner,
            policy: self.policy.clone(),
        }))
    }
}

struct Retry {
    inner: ReceiveService,
    policy: Arc<RetryPolicy>,
}

impl Call<Incoming, Disposition> for Retry {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        let ctx = request.context.clone();
        if ctx.attempt() > self.policy.max_attempts {
            let text = format!(
                "delivery {} is past max_attempts {}: the earlier attempts did not finish (the \
                 process crashed or the handler hung), so the handler is not run again",
                ctx.attempt(),
                self.policy.max_attempts
            );
            log(&ctx, "dead-lettering message", &text);
            let reason = DeadLetterReason::new(text).with_kind(ErrorKind::Handler);
            return Box::pin(std::future::ready(Ok(Disposition::DeadLetter(reason))));
        }
        let run = self.inner.run(request);
        Box::pin(async move {
            match run.await {
                Ok(Disposition::RetryLater) => Ok(Disposition::Retry {
                    delay: Some(self.policy.backoff.delay(ctx.attempt())),
                }),
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
