//! `GET /v1/sessions/{session_id}`: one of the driver's sessions.

use axum::extract::State;

use super::view::{self, SessionView};
use crate::AppState;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{Driver, IdPath};

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
    let session = super::own_session(&state, session_id, &identity.subject).await?;
    Ok(axum::Json(view::one(&state, session).await?))
}
