//! `POST /v1/operator/sessions/{session_id}/refunds` and its list: an operator gives back
//! part or all of a settled fee (docs/money.md).

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::domain::audit::canonical_json;
use crate::domain::currency::Currency;
use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::session::RefundStatus;
use crate::domain::text;
use crate::http::driver::RefundView;
use crate::http::error::{ApiError, ErrorCode, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Operator, parse_json};
use crate::http::idempotency::{claim, json_answer};
use crate::store::idempotency;
use crate::store::refunds::{self, Refund, RefundError};
use crate::store::sessions::{self, IdempotentAnswer, Session};

/// A refund to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// How much to give back: a decimal string with the session currency's decimals,
    /// more than zero, and with the refunds already made at most the fee.
    #[schema(example = "5.00")]
    pub amount: String,
    /// Why (1 to 500 characters, not all whitespace); shown to the driver and kept in the
    /// audit log.
    #[schema(schema_with = crate::http::openapi::note, example = "the barrier did not open")]
    pub reason: String,
}

/// A refund as its operator sees it: the driver's view of it, and its session.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorRefund {
    pub session_id: Uuid,
    #[serde(flatten)]
    pub refund: RefundView,
}

impl OperatorRefund {
    fn of(refund: &Refund) -> Result<Self, ApiError> {
        Ok(Self {
            session_id: refund.session_id,
            refund: RefundView::of(refund)?,
        })
    }
}

/// A session's refunds.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorRefundList {
    /// Oldest first.
    pub refunds: Vec<OperatorRefund>,
}

async fn own_session(
    state: &AppState,
    operator: &Operator,
    session_id: Uuid,
) -> Result<Session, ApiError> {
    sessions::get_for_operator(&state.db, session_id, operator.operator_id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))
}

/// Gives back part or all of a session's collected fee, once per `Idempotency-Key`. With a
/// payment gateway the refund is delivered to it through the outbox (`pending`, then
/// `refunded`); without one it is refunded at once. The refunds of a session never add up
/// to more than its fee, however many are made at the same time.
#[utoipa::path(
    post, path = "/v1/operator/sessions/{session_id}/refunds", tag = "operator",
    params(
        ("session_id" = Uuid, Path, description = "The session"),
        ("Idempotency-Key" = String, Header, description = "A fresh random value per refund"),
    ),
    request_body = RefundRequest,
    security(("operator_key" = [])),
    responses(
        (status = 201, description = "The refund", body = OperatorRefund),
        (status = 400, description = "`malformed_json`, `idempotency_key_required`, `idempotency_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `api_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session in your lots", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`session_active` (nothing charged yet), `settlement_not_settled` (the fee is pending, in arrears or in review), `idempotency_key_in_flight`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`refund_exceeds_charge` (with `charged`, `refunded` and `refundable`), `validation_failed` (`$.amount`, `$.reason`), `unknown_field`, `idempotency_key_reused`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create_refund(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(session_id): IdPath,
    key: IdempotencyKey,
    request: Request,
) -> Result<Response, ApiError> {
    let Json(body): Json<Value> = Json::from_request(request, &state).await?;
    refund_once(&state, &operator, session_id, &key, &body).await
}

/// Makes the refund `body` asks for, once per `key` of the operator: the API's and the
/// console's way in.
pub async fn refund_once(
    state: &AppState,
    operator: &Operator,
    session_id: Uuid,
    key: &IdempotencyKey,
    body: &Value,
) -> Result<Response, ApiError> {
    let state = state.clone();
    let asked: RefundRequest = parse_json(body.to_string().as_bytes())?;
    let session = own_session(&state, operator, session_id).await?;
    let owner = format!("operator:{}", operator.operator_id);
    let fingerprint = format!("refund {session_id} {}", canonical_json(body));
    let hash: [u8; 32] = Sha256::digest(fingerprint.as_bytes()).into();
    let now = state.clock.now();
    if let Some(earlier) = claim(&state.db, &owner, key, &hash, now).await? {
        return Ok(earlier);
    }
    match refund(&state, &session, &asked, &owner, key, now).await {
        Ok(response) => Ok(response),
        Err(refused) => {
            // Nothing was refunded: the key may be used again (once the fee is collected, say).
            idempotency::release(&state.db, &owner, key.as_str()).await?;
            Err(refused)
        }
    }
}

async fn refund(
    state: &AppState,
    session: &Session,
    asked: &RefundRequest,
    owner: &str,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let currency = Currency::parse(&session.currency).map_err(ApiError::internal)?;
    let mut errors = Vec::new();
    let amount = match Money::parse(&asked.amount, currency) {
        Ok(m) if m.is_negative() || m.is_zero() => {
            errors.push(FieldError::new("$.amount", "must be more than zero"));
            None
        }
        Ok(m) => {
            let minor = m.to_minor();
            if minor.is_none() {
                errors.push(FieldError::new("$.amount", "is too large"));
            }
            minor
        }
        Err(e) => {
            errors.push(FieldError::new("$.amount", e.to_string()));
            None
        }
    };
    if let Err(e) = text::check_note(&asked.reason, 500) {
        errors.push(FieldError::new("$.reason", e.to_string()));
    }
    let Some(amount_minor) = amount.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let settlement = sessions::settlement(&state.db, session.session_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::SessionActive,
                "the session is still active: nothing was charged yet",
            )
        })?;
    // More than the whole fee never fits, whatever was refunded (and never reaches an
    // addition that could overflow).
    if amount_minor > settlement.amount_minor {
        let charged = settlement.amount_minor;
        return Err(exceeds(currency, charged, settlement.refunded_minor));
    }
    let deliver = state.payments_url.is_some();
    let record = Refund {
        refund_id: Uuid::now_v7(),
        session_id: session.session_id,
        settlement_id: settlement.settlement_id,
        operator_id: session.operator_id,
        reference: crate::sessions::reference("QRR"),
        currency: session.currency.clone(),
        amount_minor,
        reason: asked.reason.clone(),
        status: if deliver {
            RefundStatus::Pending
        } else {
            RefundStatus::Refunded
        },
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        refunded_at: (!deliver).then_some(now),
    };
    let body = serde_json::to_string(&OperatorRefund::of(&record)?).map_err(ApiError::internal)?;
    let answer = IdempotentAnswer {
        driver: owner.to_owned(),
        key: key.as_str().to_owned(),
        status: StatusCode::CREATED.as_u16(),
        body: body.clone(),
    };
    match refunds::create(&state.db, &settlement, &record, deliver, &answer).await {
        Ok(()) => {}
        Err(RefundError::NotSettled(status)) => {
            return Err(ApiError::new(
                ErrorCode::SettlementNotSettled,
                format!("the fee is {status}, not collected: nothing can be refunded yet"),
            ));
        }
        Err(RefundError::ExceedsCharge { charged, refunded }) => {
            return Err(exceeds(currency, charged, refunded));
        }
        Err(RefundError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(reference = %record.reference, session_id = %session.session_id, amount_minor, "refund made");
    Ok(json_answer(StatusCode::CREATED, body))
}

/// 422 `refund_exceeds_charge`, with what was charged, refunded and can still be.
fn exceeds(currency: Currency, charged: i64, refunded: i64) -> ApiError {
    let money = |minor| Money::from_minor(minor, currency).to_string();
    let refundable = charged.saturating_sub(refunded);
    ApiError::new(
        ErrorCode::RefundExceedsCharge,
        format!(
            "{} was charged and {} already refunded: at most {} can be refunded",
            money(charged),
            money(refunded),
            money(refundable)
        ),
    )
    .with("charged", json!(money(charged)))
    .with("refunded", json!(money(refunded)))
    .with("refundable", json!(money(refundable)))
}

/// A session's refunds, oldest first.
#[utoipa::path(
    get, path = "/v1/operator/sessions/{session_id}/refunds", tag = "operator",
    params(("session_id" = Uuid, Path, description = "The session")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The refunds", body = OperatorRefundList),
        (status = 401, description = "`unauthorized`, `api_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session in your lots", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_refunds(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(session_id): IdPath,
) -> Result<axum::Json<OperatorRefundList>, ApiError> {
    let session = own_session(&state, &operator, session_id).await?;
    let refunds = refunds::of_sessions(&state.db, &[session.session_id])
        .await?
        .iter()
        .map(OperatorRefund::of)
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(OperatorRefundList { refunds }))
}
