//! `POST /v1/sessions`: start parking on the space a scanned code names, once per
//! `Idempotency-Key`.

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::SessionView;
use crate::AppState;
use crate::domain::audit::{canonical_json, hex};
use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::plate::Plate;
use crate::domain::session::SessionStatus;
use crate::domain::space::SpaceStatus;
use crate::http::error::{
    ApiError, ErrorCode, FieldError, Problem, ProblemBody, SPACE_OCCUPIED, TOO_MANY_ACTIVE_SESSIONS,
};
use crate::http::extract::{Driver, Json, parse_json, storable_instant};
use crate::http::idempotency::decided;
use crate::qr::resolve::{Genuine, Lookup, Refusal, resolve, token_of};
use crate::store::idempotency::{self, Answer, Begin, KeyUse};
use crate::store::sessions::{self, NewStart, Session, StartRefusal, Started};
use crate::store::tariffs;

/// The furthest a planned end may lie when the tariff has no maximum stay: the longest
/// interval a fee is priced over.
const MAX_PLANNED_STAY: TimeDelta = TimeDelta::days(31);

/// Start parking on the space a scanned code names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The token of the space's QR code (or the whole `.../q/{token}` URL).
    pub qr: String,
    /// The vehicle's plate (`沪A12345`, `B123XYZ`); normalised: upper case, no spaces, `-`,
    /// `·` or `.`. Required on lots with `plate_required`.
    #[schema(schema_with = crate::http::openapi::plate_or_null)]
    pub plate: Option<String>,
    /// A planned end: the session stops itself then (after now, not after `leave_by`).
    #[schema(schema_with = crate::http::openapi::instant_or_null)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub stop_at: Option<DateTime<Utc>>,
}

/// Starts parking. `Idempotency-Key` is required: the same key with the same body answers
/// the first answer again (a double tap starts once); with another body it is 422; while the
/// first request is still running it is 409.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "driver",
    request_body = StartRequest,
    params(("Idempotency-Key" = String, Header, description = "A fresh random value per start")),
    security(("city_identity" = [])),
    responses(
        (status = 201, description = "Parking started", body = SessionView),
        (status = 400, description = "`qr_invalid`, `idempotency_key_required`, `idempotency_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 402, description = "`arrears_outstanding`: more sessions in arrears than `QRPARK_MAX_UNPAID_SESSIONS`, listed in `arrears`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`space_occupied`, `space_out_of_service`, `no_tariff`, `too_many_active_sessions`, `idempotency_key_in_flight`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`qr_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` (another body), `plate_required`, `validation_failed` (`$.plate`, `$.stop_at`)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn start_session(
    State(state): State<AppState>,
    Driver(identity): Driver,
    key: IdempotencyKey,
    request: Request,
) -> Result<Response, ApiError> {
    let Json(body): Json<Value> = Json::from_request(request, &state).await?;
    let start: StartRequest = parse_json(body.to_string().as_bytes())?;
    let plate = start
        .plate
        .as_deref()
        .map(Plate::parse)
        .transpose()
        .map_err(|e| ApiError::validation(vec![FieldError::new("$.plate", e.to_string())]))?;
    // The request's fingerprint: its JSON in canonical form (keys sorted, no whitespace), so
    // that the same body sent with another key order or spacing is the same request.
    let hash: [u8; 32] = Sha256::digest(canonical_json(&body).as_bytes()).into();
    let driver = identity.subject;
    let now = state.clock.now();
    let used = KeyUse {
        driver: &driver,
        key: key.as_str(),
        request_hash: &hash,
        now,
    };
    // Arrears are never remembered under the key: once paid, the same start goes through.
    if let Err(owed) = arrears_allow_start(&state, &driver).await {
        return answered_before_or(&state, used, owed).await;
    }
    let planned = match plan(&state, &driver, &start, plate, now).await {
        Ok(planned) => planned,
        // A refusal is an answer too: the same key and body get it again.
        Err(ApiError::Problem(problem)) => {
            let answer = remembered(&problem);
            return match idempotency::remember(&state.db, used, &answer).await? {
                Begin::Proceed => Err(ApiError::Problem(problem)),
                earlier => answer_as_decided(earlier),
            };
        }
        // Our failure: nothing was claimed, so a retry runs again.
        Err(failure) => return answered_before_or(&state, used, failure).await,
    };
    let body = serde_json::to_string(&planned.view).map_err(ApiError::internal)?;
    let answer = Answer {
        status: StatusCode::CREATED.as_u16(),
        body,
    };
    let plate_hash = planned.plate.map(|p| hex(&p.keyed_hash(&state.plate_key)));
    let new = NewStart {
        key: used,
        session: &planned.session,
        answer: &answer,
        qr_version: planned.qr_version,
        plate_hash: plate_hash.as_deref(),
        max_active: Some(i64::from(state.config.max_active_sessions)),
    };
    // One transaction: the key's claim and answer, the session and its audit event; or the
    // key's claim with the refusal the transaction met.
    match sessions::start(&state.db, &new, |refusal| remembered(&refused(refusal))).await? {
        Started::Started => {}
        Started::Refused(refusal) => return Err(ApiError::Problem(Box::new(refused(refusal)))),
        Started::Earlier(earlier) => return answer_as_decided(earlier),
    }
    let session_id = planned.session.session_id;
    tracing::info!(%session_id, space_id = %planned.session.space_id, "session started");
    let mut response = (StatusCode::CREATED, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/sessions/{session_id}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

/// What an earlier use of the key decided, if it did; otherwise `failure`, which is not
/// remembered.
async fn answered_before_or(
    state: &AppState,
    used: KeyUse<'_>,
    failure: ApiError,
) -> Result<Response, ApiError> {
    match idempotency::earlier(&state.db, used).await {
        Ok(Some(earlier)) => answer_as_decided(earlier),
        Ok(None) | Err(_) => Err(failure),
    }
}

/// The answer an earlier use of the key decides (a replay, 409 or 422).
fn answer_as_decided(earlier: Begin) -> Result<Response, ApiError> {
    decided(earlier)?.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "a key claimed by this start was decided earlier"
        ))
    })
}

/// What a start on a space out of service answers.
const OUT_OF_SERVICE: (ErrorCode, &str) = (
    ErrorCode::SpaceOutOfService,
    "this space is out of service: park elsewhere",
);

/// What a start without a plate on a lot that needs one answers.
const PLATE_REQUIRED: (ErrorCode, &str) = (
    ErrorCode::PlateRequired,
    "this lot needs your vehicle's plate to start parking",
);

/// The problem a refusal met in the start's transaction answers.
fn refused(refusal: StartRefusal) -> Problem {
    let (code, detail) = match refusal {
        StartRefusal::SpaceOccupied => SPACE_OCCUPIED,
        StartRefusal::TooManyActiveSessions => TOO_MANY_ACTIVE_SESSIONS,
        StartRefusal::CodeReplaced => return Refusal::Revoked.into(),
        StartRefusal::OutOfService => OUT_OF_SERVICE,
        StartRefusal::PlateRequired => PLATE_REQUIRED,
    };
    Problem::bare(code, detail)
}

/// A problem as remembered under the key: replayed byte for byte.
fn remembered(problem: &Problem) -> Answer {
    Answer {
        status: problem.status().as_u16(),
        body: problem.body(),
    }
}

/// Refuses a start (402 `arrears_outstanding`, listing them) when the driver has more
/// sessions in arrears than `QRPARK_MAX_UNPAID_SESSIONS`.
async fn arrears_allow_start(state: &AppState, driver: &str) -> Result<(), ApiError> {
    let owed = super::arrears::arrears_of(state, driver).await?;
    let allowed = usize::try_from(state.config.max_unpaid_sessions).unwrap_or(usize::MAX);
    if owed.items.len() <= allowed {
        return Ok(());
    }
    let detail = format!(
        "you have {} unpaid parking fee(s): pay them before parking again",
        owed.items.len()
    );
    let arrears = serde_json::to_value(&owed.items).map_err(ApiError::internal)?;
    Err(ApiError::new(ErrorCode::ArrearsOutstanding, detail).with("arrears", arrears))
}

/// A start as planned before its transaction: the session, what its answer shows, and
/// what the transaction checks again.
struct Planned {
    session: Session,
    view: SessionView,
    qr_version: i32,
    plate: Option<Plate>,
}

/// Plans the start from the scanned code (through the process's cache), the tariff in force
/// (read from the database: a start is priced under exactly the version in force) and the
/// request; a problem here is a refusal to remember under the key.
async fn plan(
    state: &AppState,
    driver: &str,
    start: &StartRequest,
    plate: Option<Plate>,
    now: DateTime<Utc>,
) -> Result<Planned, ApiError> {
    let Genuine { space, lot, .. } = resolve(
        &state.keys,
        Lookup::Cached(&state.cache),
        token_of(&start.qr),
        now,
    )
    .await??;
    if space.status != SpaceStatus::Active {
        return Err(ApiError::new(OUT_OF_SERVICE.0, OUT_OF_SERVICE.1));
    }
    let no_tariff = || {
        ApiError::new(
            ErrorCode::NoTariff,
            "this lot has no tariff yet: parking cannot start",
        )
    };
    let version = tariffs::in_force_ref(&state.db, lot.lot_id, Some(now))
        .await?
        .ok_or_else(no_tariff)?;
    let in_force = state
        .cache
        .tariff(version.tariff_id)
        .await?
        .ok_or_else(no_tariff)?;
    if lot.plate_required && plate.is_none() {
        return Err(ApiError::new(PLATE_REQUIRED.0, PLATE_REQUIRED.1));
    }
    let leave_by = in_force
        .tariff
        .max_stay_minutes()
        .map(|minutes| now + TimeDelta::minutes(i64::from(minutes)));
    let stop_at = start
        .stop_at
        .map(|at| storable_instant(at, "$.stop_at"))
        .transpose()
        .map_err(|e| ApiError::validation(vec![e]))?;
    if let Some(stop_at) = stop_at {
        let message = match leave_by {
            _ if stop_at <= now => Some("must be after the start".to_owned()),
            Some(leave_by) if stop_at > leave_by => Some(format!(
                "must not be after leave_by ({}), the tariff's maximum stay",
                leave_by.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            // Without a maximum stay, as far ahead as a fee can be priced.
            None if stop_at > now + MAX_PLANNED_STAY => {
                Some("must be at most 31 days after the start".to_owned())
            }
            _ => None,
        };
        if let Some(message) = message {
            return Err(ApiError::validation(vec![FieldError::new(
                "$.stop_at",
                message,
            )]));
        }
    }
    let ends_at = match (stop_at, leave_by) {
        (Some(planned), _) => Some(planned),
        (None, leave_by) => leave_by,
    };
    let stored = &in_force.stored;
    let session = Session {
        session_id: Uuid::now_v7(),
        lot_id: lot.lot_id,
        space_id: space.space_id,
        operator_id: lot.operator_id,
        driver: driver.to_owned(),
        tariff_id: stored.tariff_id,
        tariff_version: stored.version,
        currency: stored.currency.clone(),
        status: SessionStatus::Active,
        started_at: now,
        leave_by,
        ended_at: None,
        fee_minor: None,
        fee_lines: None,
        created_at: now,
        updated_at: now,
        plate: plate.as_ref().map(|p| p.as_str().to_owned()),
        plate_erased_at: None,
        stop_at,
        ends_at,
        ended_by: None,
        stop_reason: None,
    };
    let view = SessionView {
        id: session.session_id,
        lot_id: session.lot_id,
        space_id: session.space_id,
        space_code: space.code.clone(),
        status: SessionStatus::Active,
        started_at: now,
        leave_by,
        ended_at: None,
        tariff_version: stored.version,
        currency: stored.currency.clone(),
        fee: None,
        settlement: None,
        plate: session.plate.clone(),
        stop_at: session.stop_at,
        ended_by: None,
        refunds: Vec::new(),
    };
    Ok(Planned {
        session,
        view,
        qr_version: space.qr_version,
        plate,
    })
}
