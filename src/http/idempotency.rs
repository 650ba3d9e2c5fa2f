//! The `Idempotency-Key` protocol of the routes that take one: claim the key, or answer
//! what an earlier request with it decided.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::domain::idempotency_key::IdempotencyKey;
use crate::http::error::{ApiError, ErrorCode, PROBLEM_JSON};
use crate::store::Db;
use crate::store::idempotency::{self, Begin};

/// Claims `key` of `owner` for a request with fingerprint `hash`: `Ok(None)` to go ahead,
/// `Ok(Some(answer))` to answer an earlier request's answer again, or the 409/422 problem
/// when the key is busy or was used for another request.
pub async fn claim(
    db: &Db,
    owner: &str,
    key: &IdempotencyKey,
    hash: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<Response>, ApiError> {
    decided(idempotency::begin(db, owner, key.as_str(), hash, now).await?)
}

/// How a key's state decides the answer: `Ok(None)` to go ahead, `Ok(Some(answer))` to answer
/// an earlier request's answer again, or the 409/422 problem.
pub fn decided(begun: Begin) -> Result<Option<Response>, ApiError> {
    match begun {
        Begin::Proceed => Ok(None),
        Begin::Replay { status, body } => Ok(Some(replay(status, body))),
        Begin::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request; use a fresh key",
        )),
        Begin::InFlight => Err(ApiError::new(
            ErrorCode::IdempotencyKeyInFlight,
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )),
    }
}

/// Renders a stored answer again, marked as a replay.
pub fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// A JSON answer to remember under a key and send.
pub fn json_answer(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
