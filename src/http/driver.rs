//! What drivers call, with their city identity token: start, watch, stop, receipts.

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::domain::audit::canonical_json;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::space::SpaceStatus;
use crate::domain::tariff::{self, Tariff};
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{Driver, IdPath, parse_json};
use crate::http::quote::PricedFee;
use crate::store::idempotency::{self, Begin};
use crate::store::sessions::{self, IdempotentAnswer, Session, Settlement, StartError, Stop};
use crate::store::{lots, spaces, tariffs};

/// The driver routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_session))
        .routes(routes!(get_session))
        .routes(routes!(stop_session))
        .routes(routes!(receipt))
        .routes(routes!(my_sessions))
}

/// Start parking on the space a scanned code names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The token of the space's QR code (or the whole `.../q/{token}` URL).
    pub qr: String,
}

/// A settlement as drivers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    /// `pending` (on its way to the city's payment gateway), `settled` or `failed`.
    pub status: String,
    /// Quote it to the operator or the city.
    pub reference: String,
    #[schema(example = "25.00")]
    pub amount: String,
    pub settled_at: Option<DateTime<Utc>>,
}

/// A parking session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Uuid,
    pub space_code: String,
    /// `active` or `stopped`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// When the tariff's maximum stay ends, if it has one.
    pub leave_by: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The tariff version in force at the start, which prices the whole session.
    pub tariff_version: i32,
    pub currency: String,
    /// While active: the fee so far (as if stopped now); once stopped: the fee charged.
    #[schema(value_type = Option<crate::http::quote::FeeDoc>)]
    pub fee: Option<Value>,
    pub settlement: Option<SettlementView>,
}

/// A driver's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

fn money(minor: i64, currency: &str) -> Result<String, ApiError> {
    let currency = Currency::parse(currency).map_err(ApiError::internal)?;
    Ok(Money::from_minor(minor, currency).to_string())
}

/// Everything needed to price a session: its locked tariff and its lot's time zone.
struct Pricing {
    tariff: Tariff,
    timezone: TimeZone,
}

async fn pricing(state: &AppState, session: &Session) -> Result<Pricing, ApiError> {
    let stored = tariffs::get(&state.db, session.tariff_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("session's tariff is gone")))?;
    let tariff = Tariff::from_json_str(&stored.document)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored tariff is invalid: {e}")))?;
    let lot = lots::get_public(&state.db, session.lot_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("session's lot is gone")))?;
    let timezone = TimeZone::parse(&lot.timezone).map_err(ApiError::internal)?;
    Ok(Pricing { tariff, timezone })
}

fn price(pricing: &Pricing, session: &Session, end: DateTime<Utc>) -> Result<PricedFee, ApiError> {
    let fee = tariff::price(
        &pricing.tariff,
        pricing.timezone.tz(),
        session.started_at,
        end,
    )
    .map_err(ApiError::internal)?;
    Ok(PricedFee {
        fee,
        tariff_version: session.tariff_version,
    })
}

async fn view(state: &AppState, session: Session) -> Result<SessionView, ApiError> {
    let space_code = spaces::get_public(&state.db, session.space_id)
        .await?
        .map(|s| s.code)
        .unwrap_or_default();
    let fee = match &session.fee_lines {
        Some(stored) => Some(serde_json::from_str(stored).map_err(ApiError::internal)?),
        None if session.is_active() => {
            let pricing = pricing(state, &session).await?;
            let now = state.clock.now().max(session.started_at);
            Some(
                serde_json::to_value(price(&pricing, &session, now)?)
                    .map_err(ApiError::internal)?,
            )
        }
        None => None,
    };
    let settlement = match sessions::settlement(&state.db, session.session_id).await? {
        Some(s) => Some(settlement_view(&s)?),
        None => None,
    };
    Ok(SessionView {
        id: session.session_id,
        lot_id: session.lot_id,
        space_id: session.space_id,
        space_code,
        status: session.status,
        started_at: session.started_at,
        leave_by: session.leave_by,
        ended_at: session.ended_at,
        tariff_version: session.tariff_version,
        currency: session.currency,
        fee,
        settlement,
    })
}

fn settlement_view(s: &Settlement) -> Result<SettlementView, ApiError> {
    Ok(SettlementView {
        status: s.status.clone(),
        reference: s.reference.clone(),
        amount: money(s.amount_minor, &s.currency)?,
        settled_at: s.settled_at,
    })
}

/// The QR token, whether the driver's app sent the token or the whole URL.
fn token_of(qr: &str) -> &str {
    qr.rsplit_once("/q/").map_or(qr, |(_, token)| token).trim()
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::problem(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "Idempotency-Key required",
            "send an `Idempotency-Key` header (a fresh random value per tap of Start)",
        )
    })?;
    let key = value.to_str().ok().map(str::trim).unwrap_or("");
    // Structured-header strings are quoted; accept a quoted or a bare value.
    let key = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(key);
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::problem(
            StatusCode::BAD_REQUEST,
            "idempotency_key_invalid",
            "Idempotency-Key invalid",
            "the key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// Renders a stored answer again, marked as a replay.
fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        crate::http::error::PROBLEM_JSON
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
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
        (status = 409, description = "`space_occupied`, `space_out_of_service`, `no_tariff`, `idempotency_key_in_flight`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`qr_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` (another body), `validation_failed`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn start_session(
    State(state): State<AppState>,
    Driver(identity): Driver,
    request: Request,
) -> Result<Response, ApiError> {
    let key = idempotency_key(request.headers())?;
    let crate::http::extract::Json(body): crate::http::extract::Json<Value> =
        crate::http::extract::Json::from_request(request, &state).await?;
    let start: StartRequest = parse_json(body.to_string().as_bytes())?;
    // The request's fingerprint: its JSON in canonical form (keys sorted, no whitespace), so
    // that the same body sent with another key order or spacing is the same request.
    let hash: [u8; 32] =
        Sha256::digest(crate::domain::audit::canonical_json(&body).as_bytes()).into();
    let driver = identity.subject;
    let now = state.clock.now();
    match idempotency::begin(&state.db, &driver, &key, &hash, now).await? {
        Begin::Replay { status, body } => return Ok(replay(status, body)),
        Begin::Mismatch => {
            return Err(ApiError::problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request; use a fresh key",
            ));
        }
        Begin::InFlight => {
            return Err(ApiError::problem(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
        Begin::Proceed => {}
    }
    match begin_session(&state, &driver, &key, &start, now).await {
        Ok(response) => Ok(response),
        Err(ApiError::Problem(problem)) => {
            // A refusal is an answer too: the same key and body get it again.
            idempotency::finish(
                &state.db,
                &driver,
                &key,
                problem.status.as_u16(),
                &problem.body(),
            )
            .await?;
            Err(ApiError::Problem(problem))
        }
        Err(other) => {
            // Our failure: forget the claim so that a retry runs again.
            idempotency::release(&state.db, &driver, &key).await?;
            Err(other)
        }
    }
}

fn conflict(code: &'static str, title: &'static str, detail: &str) -> ApiError {
    ApiError::problem(StatusCode::CONFLICT, code, title, detail)
}

async fn begin_session(
    state: &AppState,
    driver: &str,
    key: &str,
    start: &StartRequest,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let claims = match state.keys.verify(token_of(&start.qr)).await? {
        Ok(claims) => claims,
        Err(reason) => {
            tracing::info!(%reason, "refused a QR token at session start");
            return Err(ApiError::problem(
                StatusCode::BAD_REQUEST,
                "qr_invalid",
                "QR code invalid",
                "this is not a genuine qrpark code: do not pay through it, and tell the operator",
            ));
        }
    };
    let space = spaces::get_public(&state.db, claims.space_id)
        .await?
        .ok_or_else(|| ApiError::not_found("space"))?;
    if i64::from(claims.version) < i64::from(space.qr_version) {
        return Err(ApiError::problem(
            StatusCode::GONE,
            "qr_revoked",
            "QR code revoked",
            "this code has been replaced: do not pay here, and report it to the operator",
        ));
    }
    if i64::from(claims.version) != i64::from(space.qr_version) {
        return Err(ApiError::problem(
            StatusCode::BAD_REQUEST,
            "qr_invalid",
            "QR code invalid",
            "this code names a version that was never issued",
        ));
    }
    if space.status() != SpaceStatus::Active {
        return Err(conflict(
            "space_out_of_service",
            "Space out of service",
            "this space is out of service: park elsewhere",
        ));
    }
    let lot = lots::get_public(&state.db, space.lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let stored = tariffs::in_force(&state.db, lot.lot_id, now)
        .await?
        .ok_or_else(|| {
            conflict(
                "no_tariff",
                "No tariff",
                "this lot has no tariff yet: parking cannot start",
            )
        })?;
    let tariff = Tariff::from_json_str(&stored.document)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored tariff is invalid: {e}")))?;
    let leave_by = tariff
        .max_stay_minutes()
        .map(|minutes| now + TimeDelta::minutes(i64::from(minutes)));
    let session = Session {
        session_id: Uuid::now_v7(),
        lot_id: lot.lot_id,
        space_id: space.space_id,
        operator_id: lot.operator_id,
        driver: driver.to_owned(),
        tariff_id: stored.tariff_id,
        tariff_version: stored.version,
        currency: stored.currency.clone(),
        status: "active".into(),
        started_at: now,
        leave_by,
        ended_at: None,
        fee_minor: None,
        fee_lines: None,
        created_at: now,
        updated_at: now,
    };
    let started = SessionView {
        id: session.session_id,
        lot_id: session.lot_id,
        space_id: session.space_id,
        space_code: space.code.clone(),
        status: "active".into(),
        started_at: now,
        leave_by,
        ended_at: None,
        tariff_version: stored.version,
        currency: stored.currency.clone(),
        fee: None,
        settlement: None,
    };
    let body = serde_json::to_string(&started).map_err(ApiError::internal)?;
    let answer = IdempotentAnswer {
        driver: driver.to_owned(),
        key: key.to_owned(),
        status: StatusCode::CREATED.as_u16(),
        body: body.clone(),
    };
    match sessions::start(&state.db, &session, &answer).await {
        Ok(()) => {}
        Err(StartError::SpaceOccupied) => {
            return Err(conflict(
                "space_occupied",
                "Space occupied",
                "someone is already parked on this space",
            ));
        }
        Err(StartError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(session_id = %session.session_id, space_id = %space.space_id, "session started");
    let mut response = (StatusCode::CREATED, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/sessions/{}", session.session_id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn own_session(
    state: &AppState,
    session_id: Uuid,
    driver: &str,
) -> Result<Session, ApiError> {
    sessions::get_for_driver(&state.db, session_id, driver)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))
}

/// One of the driver's sessions; while active, with the fee so far.
#[utoipa::path(
    get, path = "/v1/sessions/{session_id}", tag = "driver",
    params(("session_id" = Uuid, Path, description = "The session")),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such session of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn get_session(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
) -> Result<axum::Json<SessionView>, ApiError> {
    let session = own_session(&state, session_id, &identity.subject).await?;
    Ok(axum::Json(view(&state, session).await?))
}

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
    let session = own_session(&state, session_id, &driver).await?;
    if session.is_active() {
        let pricing = pricing(&state, &session).await?;
        let now = state.clock.now().max(session.started_at);
        let priced = price(&pricing, &session, now)?;
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
            status: if deliver { "pending" } else { "settled" }.into(),
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
    let stopped = own_session(&state, session_id, &driver).await?;
    Ok(axum::Json(view(&state, stopped).await?))
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

/// The driver's sessions, newest first (at most 100).
#[utoipa::path(
    get, path = "/v1/me/sessions", tag = "driver",
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The driver's sessions", body = SessionList),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn my_sessions(
    State(state): State<AppState>,
    Driver(identity): Driver,
) -> Result<axum::Json<SessionList>, ApiError> {
    let mut views = Vec::new();
    for session in sessions::list_for_driver(&state.db, &identity.subject, 100).await? {
        views.push(view(&state, session).await?);
    }
    Ok(axum::Json(SessionList { sessions: views }))
}

/// `?format=html` for the printable receipt page.
#[derive(Debug, Deserialize)]
pub struct ReceiptQuery {
    pub format: Option<String>,
}

/// A receipt: the lot, the space, the times, the breakdown, the total and the settlement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub session_id: Uuid,
    pub lot_name: String,
    pub lot_address: Option<String>,
    pub timezone: String,
    pub space_code: String,
    pub driver: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    #[schema(value_type = crate::http::quote::FeeDoc)]
    pub fee: Value,
    pub settlement: Option<SettlementView>,
}

/// The receipt of a stopped session, as JSON or (`?format=html` or `Accept: text/html`) as a
/// printable page.
#[utoipa::path(
    get, path = "/v1/sessions/{session_id}/receipt", tag = "driver",
    params(
        ("session_id" = Uuid, Path, description = "The session"),
        ("format" = Option<String>, Query, description = "`html` for the printable page"),
    ),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The receipt", body = Receipt),
        (status = 404, description = "No such session of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`session_active`: stop it first", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn receipt(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
    Query(query): Query<ReceiptQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = own_session(&state, session_id, &identity.subject).await?;
    let (Some(ended_at), Some(fee)) = (session.ended_at, &session.fee_lines) else {
        return Err(conflict(
            "session_active",
            "Session active",
            "a receipt exists once the session is stopped",
        ));
    };
    let lot = lots::get_public(&state.db, session.lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let space_code = spaces::get_public(&state.db, session.space_id)
        .await?
        .map(|s| s.code)
        .unwrap_or_default();
    let settlement = match sessions::settlement(&state.db, session_id).await? {
        Some(s) => Some(settlement_view(&s)?),
        None => None,
    };
    let receipt = Receipt {
        session_id,
        lot_name: lot.name,
        lot_address: lot.address,
        timezone: lot.timezone,
        space_code,
        driver: session.driver,
        started_at: session.started_at,
        ended_at,
        fee: serde_json::from_str(fee).map_err(ApiError::internal)?,
        settlement,
    };
    let wants_html = query.format.as_deref() == Some("html")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        Ok(Html(crate::http::receipt_page::render(&receipt)).into_response())
    } else {
        Ok(axum::Json(receipt).into_response())
    }
}
