//! A space's signed QR code: rotation, PNG and SVG images, the lot's printable sheet.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::key_purpose::KeyPurpose;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{IdPath, Operator};
use crate::qr::codes;
use crate::store::{lots, spaces};

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
    let key = state.keys.signing_key(KeyPurpose::Qr, now).await?;
    let qr = spaces::rotate_code(
        &state.db,
        operator.operator_id,
        space_id,
        |version| codes::sign(&key, space_id, version, now),
        now,
    )
    .await;
    // Committed or not, this process's next public read asks what changed.
    state.cache.changed();
    let qr = qr?.ok_or_else(|| ApiError::not_found("space"))?;
    tracing::info!(%space_id, version = qr.qr_version, "QR code rotated");
    Ok(axum::Json(RotatedCode {
        qr_url: codes::url(&state.config.public_url(), &qr.token),
        qr_version: qr.qr_version,
    }))
}

/// The current code of one of the operator's spaces and its built matrix (cached per code
/// version): what both image formats draw.
async fn own_code(
    state: &AppState,
    operator: Operator,
    space_id: uuid::Uuid,
) -> Result<(crate::store::space_qr::SpaceQr, crate::render::QrMatrix), ApiError> {
    spaces::get(&state.db, operator.operator_id, space_id)
        .await?
        .ok_or_else(|| ApiError::not_found("space"))?;
    let qr = crate::store::space_qr::get(&state.db, space_id)
        .await?
        .ok_or_else(|| ApiError::not_found("space"))?;
    let matrix = codes::matrix(&state.db, &qr, &state.config.public_url()).await?;
    Ok((qr, matrix))
}

/// Headers of a code image: it changes only when the code is rotated.
fn image_headers(
    content_type: &'static str,
    qr: &crate::store::space_qr::SpaceQr,
) -> [(header::HeaderName, String); 3] {
    [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
        (header::ETAG, format!("\"{}-v{}\"", qr.kid, qr.qr_version)),
    ]
}

/// The space's signed QR code as a PNG (level Q, quiet zone, 10 px per module).
#[utoipa::path(
    get, path = "/v1/operator/spaces/{space_id}/qr.png", tag = "operator",
    params(("space_id" = uuid::Uuid, Path, description = "The space")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The code", content_type = "image/png"),
        (status = 404, description = "No such space of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn png(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(space_id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    let (qr, matrix) = own_code(&state, operator, space_id).await?;
    Ok((image_headers("image/png", &qr), matrix.png(10)))
}

/// The space's signed QR code as SVG (crisp at any size).
#[utoipa::path(
    get, path = "/v1/operator/spaces/{space_id}/qr.svg", tag = "operator",
    params(("space_id" = uuid::Uuid, Path, description = "The space")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The code", content_type = "image/svg+xml"),
        (status = 404, description = "No such space of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn svg(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(space_id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    let (qr, matrix) = own_code(&state, operator, space_id).await?;
    Ok((image_headers("image/svg+xml", &qr), matrix.svg()))
}

/// A printable A4 sheet of every space's code in the lot, each labelled with the lot, the
/// space and a line telling drivers to check the web address before paying.
#[utoipa::path(
    get, path = "/v1/operator/lots/{lot_id}/qr-sheet.pdf", tag = "operator",
    params(("lot_id" = uuid::Uuid, Path, description = "The lot")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The sheet", content_type = "application/pdf"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn sheet(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    let lot = lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let pdf = codes::lot_sheet(&state.db, lot_id, &lot.name, &state.config.public_url()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"qr-sheet-{lot_id}.pdf\""),
            ),
        ],
        pdf,
    ))
}
