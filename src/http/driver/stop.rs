//! `POST /v1/sessions/{session_id}/stop`: end parking, price it and settle it.

use axum::extract::State;
use uuid::Uuid;

use super::view::{self, Pricing, SessionView};
use crate::AppState;
use crate::domain::audit::canonical_json;
use crate::domain::session::SettlementStatus;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{Driver, IdPath};
use crate::store::sessions::{self, Settlement, Stop};

/// Stops parking: prices the session under the tariff version in force at its start and
/// settles the fee against the driver's city identity, in one transaction. A repeated stop
/// answers the same.
#[utoipa::path(
    post, path = "/v1/sessions/{session_id}/stop", tag = "driver",
    params(("session_id" = Uuid, Path, description = "The session")),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The stopped session with its fee and settlement", body = SessionView),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such session of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn stop_session(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
) -> Result<axum::Json<SessionView>, ApiError> {
    let driver = identity.subject;
    let session = super::own_session(&state, session_id, &driver).await?;
    if session.is_active() {
        let pricing = Pricing::of(&state.db, &session).await?;
        let now = state.clock.now().max(session.started_at);
        let priced = pricing.price(&session, now)?;
        let fee_minor = priced
            .fee
            .total
            .to_minor()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("fee out of range")))?;
        let deliver = state.payments_url.is_some();
        let settlement = Settlement {
            settlement_id: Uuid::now_v7(),
            session_id,
            reference: settlement_reference(),
            driver: driver.clone(),
            operator_id: session.operator_id,
            currency: session.currency.clone(),
            amount_minor: fee_minor,
            // Without a payment gateway the ledger is the settlement: settled at once.
            status: if deliver {
                SettlementStatus::Pending
            } else {
                SettlementStatus::Settled
            },
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            settled_at: (!deliver).then_some(now),
        };
        let stop = Stop {
            ended_at: now,
            fee_minor,
            // Stored canonical, so the export embeds it as it is and the stop event's
            // `fee_sha256` is the hash of the breakdown exactly as auditors receive it.
            fee_lines: canonical_json(&serde_json::to_value(&priced).map_err(ApiError::internal)?),
            settlement,
            deliver,
        };
        if sessions::stop(&state.db, session_id, &driver, &stop).await? {
            tracing::info!(%session_id, fee_minor, "session stopped and settled");
        }
    }
    // Whoever stopped it, the stored outcome is the answer.
    let stopped = super::own_session(&state, session_id, &driver).await?;
    Ok(axum::Json(view::one(&state, stopped).await?))
}

/// A settlement reference drivers can read out: `QRP-` and 12 characters of Crockford base32.
fn settlement_reference() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("the operating system's random source is available");
    let code: String = random
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("QRP-{code}")
}
