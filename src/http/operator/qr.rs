//! A space's signed QR code: rotation (images and sheets come with rendering).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{IdPath, Operator};
use crate::qr::codes;
use crate::store::spaces;

/// A space's new code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedCode {
    /// What the new QR code holds.
    pub qr_url: String,
    /// The new version; tokens of every older version answer 410 `qr_revoked`.
    pub qr_version: i32,
}

/// Replaces a space's code (say, after a fake sticker was found over it): the old code
/// answers 410 `qr_revoked` from now on.
#[utoipa::path(
    post, path = "/v1/operator/spaces/{space_id}/qr/rotate", tag = "operator",
    params(("space_id" = uuid::Uuid, Path, description = "The space")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The new code", body = RotatedCode),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such space of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(space_id): IdPath,
) -> Result<axum::Json<RotatedCode>, ApiError> {
    let now = state.clock.now();
    let key = state.keys.signing_key().await?;
    let qr = spaces::rotate_code(
        &state.db,
        operator.operator_id,
        space_id,
        |version| codes::sign(&key, space_id, version, now),
        now,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("space"))?;
    tracing::info!(%space_id, version = qr.qr_version, "QR code rotated");
    Ok(axum::Json(RotatedCode {
        qr_url: codes::url(&state.config.public_url(), &qr.token),
        qr_version: qr.qr_version,
    }))
}
