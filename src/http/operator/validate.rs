//! `POST /v1/operator/tariffs/validate`: the problems publishing would answer, without
//! publishing anything.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::tariff::check_document;
use crate::AppState;
use crate::http::error::{ApiError, ProblemBody};
use crate::http::extract::{Json, Operator, Query};
use crate::store::lots;

/// Which lot the tariff is meant for, if any.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ValidateQuery {
    /// One of your lots: the tariff's currency must then be the lot's, as when publishing.
    pub lot: Option<Uuid>,
}

/// A tariff document that would publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidTariff {
    /// Always `true`: an invalid document answers 422.
    pub valid: bool,
    /// The document in canonical form, as it would be stored.
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
}

/// Checks a tariff document exactly as publishing does and publishes nothing: 200 when it
/// is valid, 422 `tariff_invalid` with the same `errors` publishing would answer.
#[utoipa::path(
    post, path = "/v1/operator/tariffs/validate", tag = "operator",
    params(ValidateQuery),
    request_body(content = crate::http::openapi::TariffDocument, description = "A tariff document (docs/tariffs.md)"),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The document is valid", body = ValidTariff),
        (status = 400, description = "`malformed_json`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `api_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`lot` is not one of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`tariff_invalid`, with every problem's JSON path in `errors`; `validation_failed` or `unknown_field` for the query", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<ValidateQuery>,
    Json(document): Json<serde_json::Value>,
) -> Result<axum::Json<ValidTariff>, ApiError> {
    let lot = match query.lot {
        Some(lot_id) => Some(
            lots::get(&state.db, operator.operator_id, lot_id)
                .await?
                .ok_or_else(|| ApiError::not_found("lot"))?,
        ),
        None => None,
    };
    let tariff = check_document(&document, lot.as_ref())?;
    Ok(axum::Json(ValidTariff {
        valid: true,
        tariff: tariff.to_json(),
    }))
}
