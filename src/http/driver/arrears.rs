//! `GET /v1/me/arrears` and `POST /v1/me/arrears/{session_id}/pay`: what the driver owes
//! because the gateway refused a payment, and paying it again (docs/money.md).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{SettlementView, money, settlement_view};
use crate::AppState;
use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::session::SettlementStatus;
use crate::http::error::{ApiError, ErrorCode, ProblemBody};
use crate::http::extract::{Driver, IdPath};
use crate::http::idempotency::{claim, json_answer};
use crate::store::idempotency;
use crate::store::sessions::{self, Settlement};
use crate::store::settlements::{self, SentBy};

/// One session's unpaid fee.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArrearsItem {
    pub session_id: Uuid,
    /// The settlement's reference: quote it to the operator or the city.
    pub reference: String,
    pub currency: String,
    #[schema(example = "25.00")]
    pub amount: String,
    /// When the gateway refused it.
    pub since: DateTime<Utc>,
}

/// A sum per currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    #[schema(example = "25.00")]
    pub amount: String,
}

/// What the driver owes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Arrears {
    /// Oldest first.
    pub items: Vec<ArrearsItem>,
    pub totals: Vec<CurrencyTotal>,
}

/// The settlement after paying again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paid {
    pub settlement: SettlementView,
}

/// A driver's arrears, oldest first, with their totals per currency.
pub async fn arrears_of(state: &AppState, driver: &str) -> Result<Arrears, ApiError> {
    let owed = settlements::arrears_of(&state.db, driver).await?;
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for s in &owed {
        let total = totals.entry(s.currency.as_str()).or_default();
        *total = total
            .checked_add(s.amount_minor)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("arrears overflow")))?;
    }
    let totals = totals
        .into_iter()
        .map(|(currency, minor)| {
            Ok(CurrencyTotal {
                currency: currency.to_owned(),
                amount: money(minor, currency)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let items = owed
        .iter()
        .map(|s| {
            Ok(ArrearsItem {
                session_id: s.session_id,
                reference: s.reference.clone(),
                currency: s.currency.clone(),
                amount: money(s.amount_minor, &s.currency)?,
                since: s.arrears_since.unwrap_or(s.updated_at),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Arrears { items, totals })
}

/// The fees the city's payment gateway refused: the driver owes them until paid again.
#[utoipa::path(
    get, path = "/v1/me/arrears", tag = "driver",
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The driver's arrears", body = Arrears),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn my_arrears(
    State(state): State<AppState>,
    Driver(identity): Driver,
) -> Result<axum::Json<Arrears>, ApiError> {
    Ok(axum::Json(arrears_of(&state, &identity.subject).await?))
}

/// Sends a refused payment to the gateway again (without a gateway it is settled at once).
/// Paying what is already pending or settled changes nothing and answers its settlement;
/// the same `Idempotency-Key` answers the first answer again.
#[utoipa::path(
    post, path = "/v1/me/arrears/{session_id}/pay", tag = "driver",
    params(
        ("session_id" = Uuid, Path, description = "The session whose fee is owed"),
        ("Idempotency-Key" = String, Header, description = "A fresh random value per payment"),
    ),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The settlement, on its way to the gateway again (or settled)", body = Paid),
        (status = 400, description = "`idempotency_key_required`, `idempotency_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`session_active` (nothing to pay yet), `settlement_in_review`, `idempotency_key_in_flight`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` (the key was used for another request)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn pay_arrears(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
    key: IdempotencyKey,
) -> Result<Response, ApiError> {
    let driver = identity.subject;
    let session = super::own_session(&state, session_id, &driver).await?;
    let now = state.clock.now();
    // The request's fingerprint: what it pays.
    let fingerprint = format!("pay arrears of session {session_id}");
    let hash: [u8; 32] = Sha256::digest(fingerprint.as_bytes()).into();
    if let Some(earlier) = claim(&state.db, &driver, &key, &hash, now).await? {
        return Ok(earlier);
    }
    match pay(&state, &session, now).await {
        Ok(paid) => {
            let body = serde_json::to_string(&paid).map_err(ApiError::internal)?;
            idempotency::finish(&state.db, &driver, key.as_str(), 200, &body).await?;
            Ok(json_answer(StatusCode::OK, body))
        }
        Err(refused) => {
            // Nothing was sent: a later request with this key may try again.
            idempotency::release(&state.db, &driver, key.as_str()).await?;
            Err(refused)
        }
    }
}

async fn pay(
    state: &AppState,
    session: &sessions::Session,
    now: DateTime<Utc>,
) -> Result<Paid, ApiError> {
    let current = sessions::settlement(&state.db, session.session_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::SessionActive,
                "the session is still active: there is nothing to pay yet",
            )
        })?;
    let deliver = state.payments_url.is_some();
    let sent = settlements::send_again(
        &state.db,
        current.settlement_id,
        deliver,
        SentBy::Driver,
        now,
    )
    .await?;
    let settlement: Settlement = match sent {
        Some(sent) => sent,
        // Not in arrears (any more): answer what it is now.
        None => settlements::get(&state.db, current.settlement_id)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a settlement went missing")))?,
    };
    if settlement.status == SettlementStatus::Review {
        return Err(ApiError::new(
            ErrorCode::SettlementInReview,
            "the city's payment office is reviewing this payment (it may have been charged): \
             it is not sent again; it will tell you the outcome",
        ));
    }
    tracing::info!(reference = %settlement.reference, status = %settlement.status, "arrears paid again");
    Ok(Paid {
        settlement: settlement_view(&settlement)?,
    })
}
