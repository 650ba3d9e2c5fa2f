//! Delivers settlements to the city's payment gateway (`QRPARK_CITY_PAYMENTS_URL`): a
//! signed POST per settlement, idempotent by its reference, retried with exponential
//! backoff; 2xx settles it; 408, 409, 425, 429, any 5xx and a gateway that cannot be reached
//! are retried, at most [`MAX_ATTEMPTS`] times; any other answer is a definite refusal and
//! fails it, reversing its ledger postings.
//!
//! The request: `POST {url}` with a JSON body `{reference, session_id, driver, operator_id,
//! currency, amount, created_at}`, `Idempotency-Key: {reference}` and
//! `Qrpark-Signature: kid="k1", alg="EdDSA", sig="<base64url Ed25519 over the body>"`,
//! verifiable with qrpark's `/.well-known/jwks.json`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::key_purpose::KeyPurpose;
use crate::domain::money::Money;
use crate::store::outbox::{self, Outcome};
use crate::store::sessions::Settlement;

/// After this many attempts a settlement is failed: the 15 waits between them add up to
/// 18,494 s, about 5 hours 8 minutes.
pub const MAX_ATTEMPTS: i32 = 16;
/// How long one process may hold a delivery before another may retry it.
const LEASE: TimeDelta = TimeDelta::seconds(60);
/// How long the gateway gets to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Backoff before attempt `attempts + 1`: 2, 4, 8... seconds, at most an hour.
pub fn backoff(attempts: i32) -> TimeDelta {
    let exponent = u32::try_from(attempts.clamp(0, 11)).unwrap_or(0);
    TimeDelta::seconds((2_i64 << exponent).min(3600))
}

/// Delivers every due settlement once; returns how many attempts were made.
pub async fn run_once(state: &AppState, client: &reqwest::Client) -> anyhow::Result<usize> {
    let Some(url) = &state.payments_url else {
        return Ok(0);
    };
    let now = state.clock.now();
    let mut attempts = 0;
    for (settlement_id, seen) in outbox::due(&state.db, now, 32).await? {
        if !outbox::claim(&state.db, settlement_id, seen, now + LEASE).await? {
            continue;
        }
        let Some(settlement) = outbox::settlement(&state.db, settlement_id).await? else {
            continue;
        };
        attempts += 1;
        let outcome = deliver(state, client, url, &settlement).await;
        let now = state.clock.now();
        let outcome = match outcome {
            Outcome::Retry { error, .. } if settlement.attempts + 1 >= MAX_ATTEMPTS => {
                Outcome::Failed {
                    error: format!("gave up after {MAX_ATTEMPTS} attempts: {error}"),
                }
            }
            Outcome::Retry { error, .. } => Outcome::Retry {
                error,
                next_attempt_at: now + backoff(settlement.attempts),
            },
            other => other,
        };
        match &outcome {
            Outcome::Settled => {
                tracing::info!(reference = %settlement.reference, "settlement delivered")
            }
            Outcome::Retry {
                error,
                next_attempt_at,
            } => {
                tracing::warn!(reference = %settlement.reference, %error, %next_attempt_at, "settlement delivery failed; will retry")
            }
            Outcome::Failed { error } => {
                tracing::error!(reference = %settlement.reference, %error, "settlement refused; ledger reversed")
            }
        }
        outbox::record(&state.db, &settlement, &outcome, now).await?;
    }
    Ok(attempts)
}

async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    url: &str,
    settlement: &Settlement,
) -> Outcome {
    let retry = |error: String| Outcome::Retry {
        error,
        next_attempt_at: Utc::now(),
    };
    let amount = match Currency::parse(&settlement.currency) {
        Ok(currency) => Money::from_minor(settlement.amount_minor, currency).to_string(),
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
            };
        }
    };
    let body = json!({
        "reference": settlement.reference,
        "session_id": settlement.session_id,
        "driver": settlement.driver,
        "operator_id": settlement.operator_id,
        "currency": settlement.currency,
        "amount": amount,
        "created_at": settlement.created_at,
    })
    .to_string();
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
        key.sign_bytes(body.as_bytes())
    );
    let response = client
        .post(url)
        .timeout(REQUEST_TIMEOUT)
        .header("content-type", "application/json")
        .header("idempotency-key", &settlement.reference)
        .header("qrpark-signature", signature)
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Outcome::Settled,
        Ok(r) => {
            let status = r.status();
            let error = format!("gateway answered {status}");
            let retryable =
                status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 425 | 429);
            if retryable {
                retry(error)
            } else {
                Outcome::Failed { error }
            }
        }
        Err(e) => retry(format!("gateway unreachable: {e}")),
    }
}

/// Runs deliveries every `every` until the process ends.
pub fn spawn(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().build() {
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
                tracing::warn!(?error, "settlement delivery round failed");
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
