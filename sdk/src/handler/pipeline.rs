//! One delivery through the layers, in the documented order: trace context → correlation →
//! decode and schema validation → idempotency → handler → retry/dead-letter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{DeadLetterReason, Delivery, Error, Result};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::catch_panic::CatchPanic;
use super::decode::{Decoder, Rejection};
use super::report::Outcome;
use crate::context::Context;
use crate::idempotency::{Claim, ClaimToken, Idempotency};
use crate::layers::trace_context;
use crate::retry::{Action, RetryPolicy};

/// What every delivery of one handler shares.
pub(crate) struct Shared<D, F> {
    pub decoder: D,
    pub handler: F,
    pub retry: RetryPolicy,
    pub idempotency: Option<Idempotency>,
    pub group: Option<String>,
}

/// Delay before looking again at a message whose key another consumer is handling.
const IN_PROGRESS_DELAY: Duration = Duration::from_millis(200);

pub(crate) async fn process<D, F, Fut>(
    shared: Arc<Shared<D, F>>,
    delivery: Delivery,
    mut cancel: watch::Receiver<bool>,
) -> Outcome
where
    D: Decoder,
    F: Fn(Context, D::Output) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let message = delivery.message();
    let ctx = Context::new(
        message.headers.clone(),
        delivery.destination(),
        shared.group.as_deref(),
        delivery.attempt(),
    );
    let span = tracing::info_span!(
        "brokerkit.handle",
        destination = delivery.destination(),
        group = shared.group.as_deref().unwrap_or("default"),
        message_id = ctx.message_id().unwrap_or(""),
        correlation_id = ctx.correlation_id().unwrap_or(""),
        attempt = delivery.attempt(),
    );
    let _ = span.set_parent(trace_context::extract(&message.headers));

    let input = match shared.decoder.decode(message) {
        Ok(input) => input,
        Err(rejection) => return reject(&shared.retry, delivery, rejection).await,
    };

    let mut claim = None;
    if let Some(idem) = &shared.idempotency {
        let key = match idem.key_of(message) {
            Ok(k) => scoped_key(&delivery, shared.group.as_deref(), &k),
            Err(e) => return reject(&shared.retry, delivery, e.into()).await,
        };
        match idem.store.claim(&key, idem.lease).await {
            Ok(Claim::Acquired(token)) => claim = Some((idem, key, token)),
            Ok(Claim::Done) => return settle(delivery.ack().await, Outcome::Duplicate),
            Ok(Claim::InProgress) => {
                return settle(
                    delivery.nack(Some(IN_PROGRESS_DELAY)).await,
                    Outcome::Retried,
                )
            }
            // Fail safe: the store is down, so the message must not count as handled.
            Err(e) => {
                tracing::warn!(error = %e, "idempotency store unavailable; message goes back");
                return retry_later(&shared.retry, delivery).await;
            }
        }
    }

    let handler = CatchPanic(Box::pin((shared.handler)(ctx.clone(), input)));
    let run = ctx.scope(handler).instrument(span);
    let result = tokio::select! {
        r = run => Some(r),
        _ = cancel.wait_for(|stop| *stop) => None,
    };
    match result {
        None => {
            release(claim).await;
            settle(delivery.nack(None).await, Outcome::Cancelled)
        }
        Some(Ok(())) => {
            if let Some((idem, key, token)) = claim {
                if let Err(e) = idem.store.complete(&key, &token, idem.ttl).await {
                    tracing::warn!(error = %e, key, "handled, but the idempotency store did not record it");
                }
            }
            settle(delivery.ack().await, Outcome::Acked)
        }
        Some(Err(e)) => {
            release(claim).await;
            fail(&shared.retry, delivery, e, Vec::new()).await
        }
    }
}

/// Keys are per destination and group: billing and email each handle an event once.
fn scoped_key(d: &Delivery, group: Option<&str>, key: &str) -> String {
    format!("{}/{}/{key}", d.destination(), group.unwrap_or("default"))
}

async fn release(claim: Option<(&Idempotency, String, ClaimToken)>) {
    if let Some((idem, key, token)) = claim {
        if let Err(e) = idem.store.release(&key, &token).await {
            tracing::warn!(error = %e, key, "could not release idempotency claim; it expires with its lease");
        }
    }
}

fn settle(result: Result<()>, outcome: Outcome) -> Outcome {
    match result {
        Ok(()) => outcome,
        Err(e) => {
            tracing::warn!(error = %e, "settling the delivery failed; the broker will redeliver it");
            Outcome::SettleFailed
        }
    }
}

async fn reject(policy: &RetryPolicy, delivery: Delivery, r: Rejection) -> Outcome {
    fail(policy, delivery, r.error, r.issues).await
}

/// Back to the broker after the policy's backoff, without counting as a handler failure.
async fn retry_later(policy: &RetryPolicy, delivery: Delivery) -> Outcome {
    let delay = policy.backoff.delay(delivery.attempt());
    let delay = delivery
        .capabilities()
        .delayed_redelivery
        .is_available()
        .then_some(delay);
    settle(delivery.nack(delay).await, Outcome::Retried)
}

async fn fail(
    policy: &RetryPolicy,
    delivery: Delivery,
    error: Error,
    issues: Vec<brokerkit_core::ValidationIssue>,
) -> Outcome {
    match policy.decide(&error, delivery.attempt()) {
        Action::Retry(delay) => {
            let delay = (!delay.is_zero()).then_some(delay);
            settle(delivery.nack(delay).await, Outcome::Retried)
        }
        Action::Drop => {
            tracing::warn!(error = %error, "dropping message by policy");
            settle(delivery.ack().await, Outcome::Dropped)
        }
        Action::DeadLetter { exhausted } => {
            let text = if exhausted {
                format!("gave up after {} attempts: {error}", delivery.attempt())
            } else {
                error.to_string()
            };
            let reason = DeadLetterReason::new(text)
                .with_kind(error.kind())
                .with_validation_errors(issues);
            if !delivery.capabilities().dead_letter.is_available() {
                tracing::error!(error = %error, "cannot dead-letter on this broker; message goes back");
                return settle(delivery.nack(None).await, Outcome::Retried);
            }
            settle(delivery.dead_letter(reason).await, Outcome::DeadLettered)
        }
    }
}
