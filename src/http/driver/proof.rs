//! `GET /v1/sessions/{session_id}/proof`: a proof of parking the driver's phone shows as a
//! QR code, for a warden to verify offline.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::key_purpose::KeyPurpose;
use crate::domain::proof::ProofClaims;
use crate::http::error::{ApiError, ErrorCode, ProblemBody};
use crate::http::extract::{Driver, IdPath};
use crate::render::QrMatrix;

/// A proof of parking: a compact JWS (EdDSA, `kid` in `/.well-known/jwks.json`, `typ`
/// `qrpark-proof+jwt`) with claims `sid`, `s`, `p`, `iat` and `exp`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Proof {
    pub token: String,
    /// At most 15 minutes away, never after the session's planned end or maximum stay.
    pub expires_at: DateTime<Utc>,
    /// The token's QR code as an SVG document, for a page to show without a QR library.
    pub qr_svg: String,
}

/// A fresh proof of parking for one of the driver's active sessions; 409
/// `session_not_active` once it has stopped (or passed its planned end or maximum stay).
#[utoipa::path(
    get, path = "/v1/sessions/{session_id}/proof", tag = "driver",
    params(("session_id" = Uuid, Path, description = "The session")),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The proof", body = Proof),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such session of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`session_not_active`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn proof(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
) -> Result<Response, ApiError> {
    let session = super::own_session(&state, session_id, &identity.subject).await?;
    let now = state.clock.now();
    let claims = session
        .is_active()
        .then(|| {
            ProofClaims::issue(
                session.session_id,
                session.space_id,
                session.plate.as_deref(),
                now,
                session.ends_at,
            )
        })
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::SessionNotActive,
                "this session has ended: there is nothing left to prove",
            )
        })?;
    let key = state.keys.signing_key(KeyPurpose::Proof, now).await?;
    let token = claims.sign(&key);
    let qr_svg = QrMatrix::build(&token)
        .map_err(|e| anyhow::anyhow!("the proof of session {session_id} has no QR code: {e}"))?
        .svg();
    let body = Proof {
        token,
        expires_at: claims.expires_at(),
        qr_svg,
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
