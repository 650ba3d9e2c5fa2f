//! Delivers payments and refunds to the city's payment gateway
//! (`QRPARK_CITY_PAYMENTS_URL`): a signed POST each, idempotent by its key, retried with
//! exponential backoff. A 2xx settles a payment (or gives a refund back); 400, 402 and 422
//! are a definite refusal: a payment becomes `arrears` (the driver owes it), a refund
//! `failed`; any other answer, and a gateway that cannot be reached, is retried, at most
//! [`MAX_ATTEMPTS`] times, after which the delivery goes to `review` (nobody knows whether
//! the gateway acted).
//!
//! Payments: `POST {url}` with `{reference, session_id, driver, operator_id, currency,
//! amount, created_at, payment_round}` and `Idempotency-Key: {reference}` (round 1) or
//! `{reference}-{round}` (arrears paid again). Refunds: `POST {url}/refunds` with
//! `{reference, payment_reference, session_id, operator_id, currency, amount, reason,
//! created_at}` and `Idempotency-Key: {reference}`. Both carry
//! `Qrpark-Signature: kid="k1", alg="EdDSA", sig="<base64url Ed25519 over the body>"`,
//! verifiable with qrpark's `/.well-known/jwks.json`.
//!
//! The client follows no redirect (a 3xx is retried, never followed with the signed body)
//! and uses no proxy from the environment. What is logged and stored about a failure
//! (`settlement.last_error`, the audit payload) never holds the URL, which may carry
//! credentials: only the kind of failure.

use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::key_purpose::KeyPurpose;
use crate::domain::money::Money;
use crate::store::outbox::{self, Outcome, Queue};
use crate::store::{refunds, settlements};

/// After this many attempts a delivery goes to review: the 15 waits between them add up to
/// 18,494 s, about 5 hours 8 minutes.
pub const MAX_ATTEMPTS: i32 = 16;
/// How long one process may hold a delivery before another may retry it, in gateway
/// timeouts (`QRPARK_CITY_PAYMENTS_TIMEOUT_MS`): well past any answer it could still get, so
/// that a living process is never overtaken, and soon after a killed one.
const LEASE_IN_TIMEOUTS: u32 = 6;

/// How long the gateway gets to answer one delivery.
fn request_timeout(state: &AppState) -> Duration {
    Duration::from_millis(state.config.city_payments_timeout_ms)
}

/// Backoff before attempt `attempts + 1`: 2, 4, 8... seconds, at most an hour.
pub fn backoff(attempts: i32) -> TimeDelta {
    let exponent = u32::try_from(attempts.clamp(0, 11)).unwrap_or(0);
    TimeDelta::seconds((2_i64 << exponent).min(3600))
}

/// One request to the gateway.
struct Request {
    url: String,
    key: String,
    body: String,
    /// Attempts made before this one.
    attempts: i32,
    /// For the logs.
    reference: String,
}

/// Delivers every due payment and refund once; returns how many attempts were made.
pub async fn run_once(state: &AppState, client: &reqwest::Client) -> anyhow::Result<usize> {
    let Some(url) = &state.payments_url else {
        return Ok(0);
    };
    let lease = TimeDelta::from_std(request_timeout(state) * LEASE_IN_TIMEOUTS)?;
    let mut attempts = 0;
    for queue in [Queue::Payments, Queue::Refunds] {
        let now = state.clock.now();
        for (id, seen) in outbox::due(&state.db, queue, now, 32).await? {
            // The lease runs from the claim, not from the round's start: the deliveries
            // before this one may have taken a while.
            let until = state.clock.now() + lease;
            if !outbox::claim(&state.db, queue, id, seen, until).await? {
                continue;
            }
            attempts += 1;
            match queue {
                Queue::Payments => {
                    let Some(settlement) = settlements::get(&state.db, id).await? else {
                        continue;
                    };
                    let request = Request {
                        url: url.clone(),
                        key: settlement.payment_key(),
                        body: json!({
                            "reference": settlement.reference,
                            "session_id": settlement.session_id,
                            "driver": settlement.driver,
                            "operator_id": settlement.operator_id,
                            "currency": settlement.currency,
                            "amount": amount(settlement.amount_minor, &settlement.currency)?,
                            "created_at": settlement.created_at,
                            "payment_round": settlement.payment_round,
                        })
                        .to_string(),
                        attempts: settlement.attempts,
                        reference: settlement.reference.clone(),
                    };
                    let outcome = deliver(state, client, &request).await;
                    let now = state.clock.now();
                    settlements::record_delivery(&state.db, &settlement, &outcome, now).await?;
                }
                Queue::Refunds => {
                    let Some(refund) = refunds::get(&state.db, id).await? else {
                        continue;
                    };
                    let Some(paid) = settlements::get(&state.db, refund.settlement_id).await?
                    else {
                        continue;
                    };
                    let request = Request {
                        url: format!("{}/refunds", url.trim_end_matches('/')),
                        key: refund.reference.clone(),
                        body: json!({
                            "reference": refund.reference,
                            "payment_reference": paid.reference,
                            "session_id": refund.session_id,
                            "operator_id": refund.operator_id,
                            "currency": refund.currency,
                            "amount": amount(refund.amount_minor, &refund.currency)?,
                            "reason": refund.reason,
                            "created_at": refund.created_at,
                        })
                        .to_string(),
                        attempts: refund.attempts,
                        reference: refund.reference.clone(),
                    };
                    let outcome = deliver(state, client, &request).await;
                    let now = state.clock.now();
                    refunds::record_delivery(&state.db, &refund, &outcome, now).await?;
                }
            }
        }
    }
    Ok(attempts)
}

/// An amount in minor units as the gateway reads it: a decimal string.
fn amount(minor: i64, currency: &str) -> anyhow::Result<String> {
    Ok(Money::from_minor(minor, Currency::parse(currency)?).to_string())
}

/// Sends one request and says what became of it, with the retry's time or the give-up
/// already decided from the attempts made.
async fn deliver(state: &AppState, client: &reqwest::Client, request: &Request) -> Outcome {
    let outcome = send(state, client, request).await;
    let now = state.clock.now();
    let outcome = match outcome {
        Outcome::Retry { error, .. } if request.attempts + 1 >= MAX_ATTEMPTS => Outcome::GaveUp {
            error: format!("gave up after {MAX_ATTEMPTS} attempts: {error}"),
        },
        Outcome::Retry { error, .. } => Outcome::Retry {
            error,
            next_attempt_at: now + backoff(request.attempts),
        },
        other => other,
    };
    let reference = &request.reference;
    match &outcome {
        Outcome::Accepted => tracing::info!(%reference, "delivered to the payment gateway"),
        Outcome::Retry {
            error,
            next_attempt_at,
        } => {
            tracing::warn!(%reference, %error, %next_attempt_at, "delivery failed; will retry")
        }
        Outcome::Refused { error } => {
            tracing::warn!(%reference, %error, "the payment gateway refused it")
        }
        Outcome::GaveUp { error } => {
            tracing::error!(%reference, %error, "delivery gave up: in review")
        }
    }
    outcome
}

async fn send(state: &AppState, client: &reqwest::Client, request: &Request) -> Outcome {
    let retry = |error: String| Outcome::Retry {
        error,
        next_attempt_at: state.clock.now(),
    };
    let key = match state
        .keys
        .signing_key(KeyPurpose::Gateway, state.clock.now())
        .await
    {
        Ok(key) => key,
        Err(e) => return retry(format!("no signing key: {e}")),
    };
    let signature = format!(
        "kid=\"{}\", alg=\"EdDSA\", sig=\"{}\"",
        key.kid,
        key.sign_bytes(request.body.as_bytes())
    );
    let response = client
        .post(&request.url)
        .timeout(request_timeout(state))
        .header("content-type", "application/json")
        .header("idempotency-key", &request.key)
        .header("qrpark-signature", signature)
        .body(request.body.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Outcome::Accepted,
        Ok(r) => {
            let status = r.status();
            let error = format!("gateway answered {status}");
            // Only a gateway that read the request and declined it refuses: 400, 402 and
            // 422. Anything else (5xx, throttling, and 401, 403, 404... from a gateway that
            // did not take the request in) is tried again, and ends in review, never in
            // arrears that would block drivers for a fault of ours or the gateway's.
            if matches!(status.as_u16(), 400 | 402 | 422) {
                Outcome::Refused { error }
            } else {
                retry(error)
            }
        }
        Err(e) => retry(format!("gateway unreachable: {}", describe(&e))),
    }
}

/// The client for the gateway: no redirects followed, no proxy taken from the environment.
pub fn gateway_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// What went wrong with a request, without its URL (which may hold credentials).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect refused"
    } else if error.is_body() || error.is_decode() {
        "broken answer"
    } else if error.is_request() {
        "request failed"
    } else {
        "failed"
    };
    // The innermost I/O error says why (refused, reset...) and never names the URL.
    let mut source = std::error::Error::source(error);
    let mut io = None;
    while let Some(cause) = source {
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            io = Some(e.kind());
        }
        source = cause.source();
    }
    match io {
        Some(kind_of_io) => format!("{kind} ({kind_of_io})"),
        None => kind.to_owned(),
    }
}

/// Runs deliveries every `every` until the process ends.
pub fn spawn(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let client = match gateway_client() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot build the payment gateway client");
                return;
            }
        };
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = run_once(&state, &client).await {
                tracing::warn!(?error, "delivery round failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), TimeDelta::seconds(2));
        assert_eq!(backoff(1), TimeDelta::seconds(4));
        assert_eq!(backoff(5), TimeDelta::seconds(64));
        assert_eq!(backoff(11), TimeDelta::seconds(3600));
        assert_eq!(backoff(40), TimeDelta::seconds(3600));
    }
}
