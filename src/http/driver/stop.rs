//! `POST /v1/sessions/{session_id}/stop`: end parking, price it and settle it.

use axum::extract::State;

use super::view::{self, SessionView};
use crate::AppState;
use crate::domain::session::EndedBy;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{Driver, IdPath};
use crate::sessions::{self, Claim};

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
    let now = state.clock.now();
    sessions::end(&state, &session, now, EndedBy::Driver, None, Claim::Wait).await?;
    // Whoever stopped it, the stored outcome is the answer.
    let stopped = super::own_session(&state, session_id, &driver).await?;
    Ok(axum::Json(view::one(&state, stopped).await?))
}
