//! Sessions in an operator's lots, and live occupancy.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::pseudonym::pseudonym;
use crate::domain::session::{EndedBy, SessionStatus, SettlementStatus};
use crate::domain::text;
use crate::http::error::{ApiError, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Operator, Query, clamp_instants};
use crate::sessions::Claim;
use crate::store::lots;
use crate::store::sessions::{self, Session, SessionFilter, Settlement};

/// Filters of the operator's session list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Only this lot (one of yours).
    pub lot: Option<Uuid>,
    /// Sessions started at or after this instant (RFC 3339).
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub from: Option<DateTime<Utc>>,
    /// Sessions started before this instant.
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub to: Option<DateTime<Utc>>,
    /// `active` for the sessions still running, `stopped` for the ended ones.
    #[param(schema_with = crate::http::openapi::session_status)]
    pub status: Option<SessionStatus>,
    /// At most this many, newest first (default 100; below 1 counts as 1, above 1000 as 1000).
    pub limit: Option<i64>,
}

/// A session in one of the operator's lots.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorSessionView {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Uuid,
    /// A pseudonym of the driver (`d_` and 32 hex digits), never the city identity
    /// itself: the same driver has the same pseudonym in all your lots, and another one in
    /// every other operator's.
    pub driver: String,
    /// `active` or `stopped`.
    #[schema(value_type = String)]
    pub status: SessionStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub tariff_version: i32,
    pub currency: String,
    /// The fee charged, once stopped.
    pub fee_total: Option<String>,
    /// The vehicle's plate; `null` when none was given (or once erased).
    pub plate: Option<String>,
    /// The end the driver planned.
    pub stop_at: Option<DateTime<Utc>>,
    /// When the tariff's maximum stay ends, if it has one.
    pub leave_by: Option<DateTime<Utc>>,
    /// `driver`, `planned`, `max_stay` or `operator`; `null` while active.
    #[schema(value_type = Option<String>)]
    pub ended_by: Option<EndedBy>,
    /// Your reason, when you stopped it.
    pub stop_reason: Option<String>,
    /// Where the fee's payment is once stopped: `pending`, `settled`, `arrears` or
    /// `review` (docs/money.md); only a `settled` fee can be refunded.
    #[schema(value_type = Option<String>)]
    pub settlement_status: Option<SettlementStatus>,
    /// What your refunds give back of the fee so far, once stopped.
    pub refunded_total: Option<String>,
}

/// Sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorSessionList {
    pub sessions: Vec<OperatorSessionView>,
}

/// The session as `operator` may see it: the driver under a pseudonym.
fn operator_view(
    state: &AppState,
    operator: &Operator,
    session: Session,
    settlement: Option<&Settlement>,
) -> Result<OperatorSessionView, ApiError> {
    let currency = Currency::parse(&session.currency).map_err(ApiError::internal)?;
    let money = |minor| Money::from_minor(minor, currency).to_string();
    let fee_total = session.fee_minor.map(money);
    Ok(OperatorSessionView {
        id: session.session_id,
        lot_id: session.lot_id,
        space_id: session.space_id,
        driver: pseudonym(&state.pseudonym_key, operator.operator_id, &session.driver),
        status: session.status,
        started_at: session.started_at,
        ended_at: session.ended_at,
        tariff_version: session.tariff_version,
        currency: session.currency,
        fee_total,
        plate: session.plate,
        stop_at: session.stop_at,
        leave_by: session.leave_by,
        ended_by: session.ended_by,
        stop_reason: session.stop_reason,
        settlement_status: settlement.map(|s| s.status),
        refunded_total: settlement.map(|s| money(s.refunded_minor)),
    })
}

/// Views of `sessions`, with their settlements read in one query.
async fn operator_views(
    state: &AppState,
    operator: &Operator,
    sessions: Vec<Session>,
) -> Result<Vec<OperatorSessionView>, ApiError> {
    let ids: Vec<Uuid> = sessions.iter().map(|s| s.session_id).collect();
    let settlements: HashMap<Uuid, Settlement> = sessions::settlements(&state.db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.session_id, s))
        .collect();
    sessions
        .into_iter()
        .map(|session| {
            let settlement = settlements.get(&session.session_id);
            operator_view(state, operator, session, settlement)
        })
        .collect()
}

/// Sessions in the operator's lots, newest first.
#[utoipa::path(
    get, path = "/v1/operator/sessions", tag = "operator",
    params(SessionQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The sessions", body = OperatorSessionList),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`lot` is not one of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a filter that does not parse (`status` other than `active` or `stopped`, an instant that is not RFC 3339)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    operator: Operator,
    Query(mut query): Query<SessionQuery>,
) -> Result<axum::Json<OperatorSessionList>, ApiError> {
    clamp_instants([&mut query.from, &mut query.to]);
    if let Some(lot_id) = query.lot {
        lots::get(&state.db, operator.operator_id, lot_id)
            .await?
            .ok_or_else(|| ApiError::not_found("lot"))?;
    }
    let filter = SessionFilter {
        lot_id: query.lot,
        from: query.from,
        to: query.to,
        status: query.status,
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let found =
        sessions::list_for_operator(&state.db, operator.operator_id, &filter, limit).await?;
    let sessions = operator_views(&state, &operator, found).await?;
    Ok(axum::Json(OperatorSessionList { sessions }))
}

/// Why the operator ends a session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorStop {
    /// 1 to 500 characters, not all whitespace; kept in the audit log.
    #[schema(schema_with = crate::http::openapi::note, example = "vehicle towed after blocking the exit")]
    pub reason: String,
}

/// Ends a session in one of the operator's lots now, with a reason (in the audit log):
/// priced and settled like a driver's stop (`ended_by: "operator"`). A session past its
/// planned end or maximum stay has already ended there and answers so. Repeating it answers
/// the stopped session.
#[utoipa::path(
    post, path = "/v1/operator/sessions/{session_id}/stop", tag = "operator",
    params(("session_id" = Uuid, Path, description = "The session")),
    request_body = OperatorStop,
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The stopped session", body = OperatorSessionView),
        (status = 400, description = "`malformed_json`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `api_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session in your lots", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`$.reason`), `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn stop_session(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(session_id): IdPath,
    Json(body): Json<OperatorStop>,
) -> Result<axum::Json<OperatorSessionView>, ApiError> {
    let session = sessions::get_for_operator(&state.db, session_id, operator.operator_id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    text::check_note(&body.reason, 500)
        .map_err(|e| ApiError::validation(vec![FieldError::new("$.reason", e.to_string())]))?;
    let now = state.clock.now();
    crate::sessions::end(
        &state,
        &session,
        now,
        EndedBy::Operator,
        Some(body.reason),
        Claim::Wait,
    )
    .await?;
    let stopped = sessions::get_for_operator(&state.db, session_id, operator.operator_id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    let mut views = operator_views(&state, &operator, vec![stopped]).await?;
    let view = views
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a session's view went missing")))?;
    Ok(axum::Json(view))
}

/// How full a lot is right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Occupancy {
    pub lot_id: Uuid,
    /// Every space of the lot.
    pub spaces: i64,
    /// Spaces not out of service.
    pub in_service: i64,
    /// Spaces with an active session.
    pub occupied: i64,
    /// In service and not occupied.
    pub free: i64,
}

/// Live occupancy of one of the operator's lots.
#[utoipa::path(
    get, path = "/v1/operator/lots/{lot_id}/occupancy", tag = "operator",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The lot's occupancy", body = Occupancy),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn occupancy(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
) -> Result<axum::Json<Occupancy>, ApiError> {
    lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let (spaces, in_service, occupied) = sessions::occupancy(&state.db, lot_id).await?;
    Ok(axum::Json(Occupancy {
        lot_id,
        spaces,
        in_service,
        occupied,
        free: (in_service - occupied).max(0),
    }))
}
