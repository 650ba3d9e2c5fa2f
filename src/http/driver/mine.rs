//! `GET /v1/me/sessions`: the driver's sessions.

use axum::extract::State;

use super::view::{self, SessionList};
use crate::AppState;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::Driver;
use crate::store::sessions;

/// How many sessions the list shows.
const LIMIT: i64 = 100;

/// The driver's sessions, newest first (at most 100), loaded in a fixed number of queries.
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
    let sessions = sessions::list_for_driver(&state.db, &identity.subject, LIMIT).await?;
    Ok(axum::Json(SessionList {
        sessions: view::views(&state, sessions).await?,
    }))
}
