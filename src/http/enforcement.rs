//! What city wardens call: is this space, this code or this plate paid right now; record a
//! violation; list the violations. Wardens work city-wide (every operator's lots).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::domain::audit::hex;
use crate::domain::plate::Plate;
use crate::domain::session::{EndedBy, PaidStatus};
use crate::domain::text;
use crate::http::error::{ApiError, ErrorCode, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Query, Warden, WardenOrAuditor, clamp_instants};
use crate::qr::resolve::{Lookup, resolve, token_of};
use crate::sessions::ending;
use crate::store::sessions::Session;
use crate::store::vehicles::{self, SpaceOnStreet, Violation};

/// The enforcement routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(lots))
        .routes(routes!(lot_spaces))
        .routes(routes!(record_violation, list_violations))
}

/// What a warden sees of one space.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub space_id: Uuid,
    pub space_code: String,
    pub lot_id: Uuid,
    pub lot_name: String,
    /// `paid` (an active session covers the space now) or `unpaid`.
    #[schema(value_type = String)]
    pub status: PaidStatus,
    /// While paid: the plate of the session (`null` when the driver gave none).
    pub plate: Option<String>,
    /// While paid: when the session started.
    pub started_at: Option<DateTime<Utc>>,
    /// While paid: when it stops being paid (its planned end or its maximum stay), if ever.
    pub leave_by: Option<DateTime<Utc>>,
    /// While unpaid: when the last session on the space ended, if one did.
    pub last_ended_at: Option<DateTime<Utc>>,
    /// While unpaid: how the last session ended.
    #[schema(value_type = Option<String>)]
    pub ended_by: Option<EndedBy>,
}

/// The answer of a check.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckAnswer {
    pub checked_at: DateTime<Utc>,
    pub results: Vec<CheckResult>,
}

/// Exactly one of the three.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// A space's QR token (or its whole `/q/` URL): that space.
    pub qr: Option<String>,
    /// A space's id: that space.
    pub space_id: Option<Uuid>,
    /// A plate: every active session of that plate.
    #[param(schema_with = crate::http::openapi::plate)]
    pub plate: Option<String>,
}

/// Builds the results for these spaces from their latest sessions, at `now`. A session past
/// its planned end or maximum stay is unpaid even if the scheduler has not stopped it yet.
fn results(
    spaces: Vec<SpaceOnStreet>,
    sessions: Vec<Session>,
    now: DateTime<Utc>,
) -> Vec<CheckResult> {
    let mut active: HashMap<Uuid, Session> = HashMap::new();
    let mut last: HashMap<Uuid, Session> = HashMap::new();
    for session in sessions {
        if session.is_active() {
            active.insert(session.space_id, session);
        } else {
            last.insert(session.space_id, session);
        }
    }
    spaces
        .into_iter()
        .map(|space| {
            let mut result = CheckResult {
                space_id: space.space_id,
                space_code: space.space_code,
                lot_id: space.lot_id,
                lot_name: space.lot_name,
                status: PaidStatus::Unpaid,
                plate: None,
                started_at: None,
                leave_by: None,
                last_ended_at: None,
                ended_by: None,
            };
            match active.remove(&space.space_id) {
                Some(session) if session.ends_at.is_none_or(|end| end > now) => {
                    result.status = PaidStatus::Paid;
                    result.plate = session.plate;
                    result.started_at = Some(session.started_at);
                    result.leave_by = session.ends_at;
                }
                Some(overdue) => {
                    let (at, by) = ending(&overdue, now, EndedBy::Driver);
                    result.last_ended_at = Some(at);
                    result.ended_by = Some(by);
                }
                None => {
                    if let Some(session) = last.remove(&space.space_id) {
                        result.last_ended_at = session.ended_at;
                        result.ended_by = session.ended_by;
                    }
                }
            }
            result
        })
        .collect()
}

/// The check of these spaces at the clock's now.
async fn check_spaces(state: &AppState, space_ids: &[Uuid]) -> Result<CheckAnswer, ApiError> {
    let now = state.clock.now();
    let spaces = vehicles::spaces(&state.db, space_ids).await?;
    let sessions = vehicles::latest_sessions(&state.db, space_ids).await?;
    Ok(CheckAnswer {
        checked_at: now,
        results: results(spaces, sessions, now),
    })
}

/// The space a warden names by its code or its id.
async fn named_space(
    state: &AppState,
    qr: Option<&str>,
    space_id: Option<Uuid>,
) -> Result<Uuid, ApiError> {
    match (qr, space_id) {
        (Some(qr), None) => {
            let genuine = resolve(
                &state.keys,
                Lookup::Fresh(&state.db),
                token_of(qr),
                state.clock.now(),
            )
            .await??;
            Ok(genuine.space.space_id)
        }
        (None, Some(id)) => Ok(id),
        _ => Err(ApiError::validation(vec![FieldError::new(
            "$.qr",
            "give exactly one of qr and space_id",
        )])),
    }
}

/// Is it paid? By a space's code (`qr`) or id (`space_id`): exactly one result. By `plate`:
/// one result per active session of that plate (none: an empty list).
#[utoipa::path(
    get, path = "/v1/enforcement/check", tag = "enforcement",
    params(CheckQuery),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "What is on the space(s) now", body = CheckAnswer),
        (status = 400, description = "`qr_invalid`: not a genuine code", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not a warden", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such space", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`qr_revoked`: a replaced code", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: not exactly one of qr, space_id and plate, or a plate that is not one", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn check(
    State(state): State<AppState>,
    _warden: Warden,
    Query(query): Query<CheckQuery>,
) -> Result<axum::Json<CheckAnswer>, ApiError> {
    let answer = match (&query.qr, query.space_id, &query.plate) {
        (None, None, Some(plate)) => {
            let plate = Plate::parse(plate).map_err(|e| {
                ApiError::validation(vec![FieldError::new("$.plate", e.to_string())])
            })?;
            let sessions = vehicles::active_by_plate(&state.db, plate.as_str()).await?;
            let space_ids: Vec<Uuid> = sessions.iter().map(|s| s.space_id).collect();
            let now = state.clock.now();
            let spaces = vehicles::spaces(&state.db, &space_ids).await?;
            CheckAnswer {
                checked_at: now,
                results: results(spaces, sessions, now),
            }
        }
        (qr, space_id, None) => {
            let space_id = named_space(&state, qr.as_deref(), space_id).await?;
            let answer = check_spaces(&state, &[space_id]).await?;
            if answer.results.is_empty() {
                return Err(ApiError::not_found("space"));
            }
            answer
        }
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "$.plate",
                "give exactly one of qr, space_id and plate",
            )]));
        }
    };
    Ok(axum::Json(answer))
}

/// A lot, as wardens pick one.
#[derive(Debug, Serialize, ToSchema)]
pub struct WardenLot {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
}

/// Every lot of the city.
#[derive(Debug, Serialize, ToSchema)]
pub struct WardenLots {
    pub lots: Vec<WardenLot>,
}

/// Every lot of every operator, by name: where wardens walk.
#[utoipa::path(
    get, path = "/v1/enforcement/lots", tag = "enforcement",
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The lots", body = WardenLots),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not a warden", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn lots(
    State(state): State<AppState>,
    _warden: Warden,
) -> Result<axum::Json<WardenLots>, ApiError> {
    let lots = vehicles::lots(&state.db)
        .await?
        .into_iter()
        .map(|(id, name, address)| WardenLot { id, name, address })
        .collect();
    Ok(axum::Json(WardenLots { lots }))
}

/// Every space of a lot, paid or unpaid now: the warden's walk along the street.
#[utoipa::path(
    get, path = "/v1/enforcement/lots/{lot_id}/spaces", tag = "enforcement",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "One result per space, in code order", body = CheckAnswer),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not a warden", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such lot", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn lot_spaces(
    State(state): State<AppState>,
    _warden: Warden,
    IdPath(lot_id): IdPath,
) -> Result<axum::Json<CheckAnswer>, ApiError> {
    let spaces = vehicles::lot_spaces(&state.db, lot_id).await?;
    if spaces.is_empty()
        && crate::store::lots::get_public(&state.db, lot_id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("lot"));
    }
    let ids: Vec<Uuid> = spaces.iter().map(|s| s.space_id).collect();
    Ok(axum::Json(check_spaces(&state, &ids).await?))
}

/// A violation to record: the space (by its code or id) and the vehicle on it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewViolation {
    /// The space's QR token (or its whole `/q/` URL); or give `space_id`.
    pub qr: Option<String>,
    pub space_id: Option<Uuid>,
    /// The plate of the vehicle on the space.
    #[schema(schema_with = crate::http::openapi::plate)]
    pub plate: String,
    /// What the warden saw (1 to 500 characters, not all whitespace).
    #[schema(schema_with = crate::http::openapi::note_or_null)]
    pub note: Option<String>,
}

/// A recorded violation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationView {
    pub id: Uuid,
    pub space_id: Uuid,
    pub space_code: Option<String>,
    pub lot_id: Uuid,
    pub plate: String,
    pub note: Option<String>,
    pub observed_at: DateTime<Utc>,
    /// What the space showed: `unpaid`, or `paid` (for another vehicle).
    #[schema(value_type = String)]
    pub status_at_observation: PaidStatus,
    /// The warden's city identity subject.
    pub warden: String,
}

impl ViolationView {
    fn new(v: Violation, space_code: Option<String>) -> Self {
        Self {
            id: v.violation_id,
            space_id: v.space_id,
            space_code,
            lot_id: v.lot_id,
            plate: v.plate,
            note: v.note,
            observed_at: v.observed_at,
            status_at_observation: v.status_at_observation,
            warden: v.warden,
        }
    }
}

/// Records that a vehicle is on a space it has not paid for, in the audit chain. Refused
/// with 409 `space_paid` when the space holds an active session for that plate.
#[utoipa::path(
    post, path = "/v1/enforcement/violations", tag = "enforcement",
    request_body = NewViolation,
    security(("city_identity" = [])),
    responses(
        (status = 201, description = "Recorded", body = ViolationView),
        (status = 400, description = "`qr_invalid`, `malformed_json`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not a warden", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such space", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`space_paid`: this plate has paid for this space", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`qr_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`$.plate`, `$.note`, `$.qr`), `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn record_violation(
    State(state): State<AppState>,
    Warden(warden): Warden,
    Json(body): Json<NewViolation>,
) -> Result<(StatusCode, axum::Json<ViolationView>), ApiError> {
    let mut errors = Vec::new();
    let plate = Plate::parse(&body.plate)
        .map_err(|e| errors.push(FieldError::new("$.plate", e.to_string())))
        .ok();
    if let Some(Err(e)) = body.note.as_deref().map(|n| text::check_note(n, 500)) {
        errors.push(FieldError::new("$.note", e.to_string()));
    }
    let note = body.note;
    let Some(plate) = plate.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let space_id = named_space(&state, body.qr.as_deref(), body.space_id).await?;
    // The space and its lot only: what the space shows is read inside the record's
    // transaction, where nothing can change it between the check and the write.
    let Some(space) = vehicles::spaces(&state.db, &[space_id]).await?.pop() else {
        return Err(ApiError::not_found("space"));
    };
    let now = state.clock.now();
    let violation = Violation {
        violation_id: Uuid::now_v7(),
        space_id,
        lot_id: space.lot_id,
        operator_id: space.operator_id,
        plate: plate.as_str().to_owned(),
        note,
        warden: warden.subject,
        observed_at: now,
        // Set by the store from the session on the space, if any.
        status_at_observation: PaidStatus::Unpaid,
        session_id: None,
        created_at: now,
    };
    let plate_hmac = hex(&plate.keyed_hash(&state.plate_key));
    let Some(violation) = vehicles::record_violation(&state.db, violation, &plate_hmac).await?
    else {
        return Err(ApiError::new(
            ErrorCode::SpacePaid,
            "this space is paid for this vehicle (or for any, by a session without a \
             plate): no violation",
        ));
    };
    tracing::info!(violation_id = %violation.violation_id, %space_id, "violation recorded");
    Ok((
        StatusCode::CREATED,
        axum::Json(ViolationView::new(violation, Some(space.space_code))),
    ))
}

/// A range of violations.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ViolationQuery {
    /// Observed at or after this instant (RFC 3339; default: the beginning).
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub from: Option<DateTime<Utc>>,
    /// Observed before this instant, which must be after `from` (default: now).
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub to: Option<DateTime<Utc>>,
    /// Only this lot.
    pub lot: Option<Uuid>,
}

/// The violations recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationList {
    pub violations: Vec<ViolationView>,
}

/// How many violations one answer lists at most.
const VIOLATION_LIMIT: i64 = 1000;

/// The violations recorded in a range, newest first (at most 1,000).
#[utoipa::path(
    get, path = "/v1/enforcement/violations", tag = "enforcement",
    params(ViolationQuery),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "Newest first", body = ViolationList),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: neither a warden nor an auditor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: an instant that is not RFC 3339, `to` not after `from`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_violations(
    State(state): State<AppState>,
    _reader: WardenOrAuditor,
    Query(mut query): Query<ViolationQuery>,
) -> Result<axum::Json<ViolationList>, ApiError> {
    clamp_instants([&mut query.from, &mut query.to]);
    let from = query.from.unwrap_or(DateTime::UNIX_EPOCH);
    let to = query
        .to
        .unwrap_or_else(|| state.clock.now() + chrono::TimeDelta::seconds(1));
    if to <= from {
        return Err(ApiError::validation(vec![FieldError::new(
            "$.to",
            "must be after from",
        )]));
    }
    let found = vehicles::violations(&state.db, from, to, query.lot, VIOLATION_LIMIT).await?;
    let space_ids: Vec<Uuid> = found.iter().map(|v| v.space_id).collect();
    let codes = crate::store::spaces::codes(&state.db, &space_ids).await?;
    let violations = found
        .into_iter()
        .map(|v| {
            let code = codes.get(&v.space_id).cloned();
            ViolationView::new(v, code)
        })
        .collect();
    Ok(axum::Json(ViolationList { violations }))
}
