//! `/v1/operator/lots/{lot_id}/tariff`: publish a new immutable tariff version, read the
//! current one and the history.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::tariff::{InvalidTariff, Tariff, TariffProblem};
use crate::http::error::{ApiError, ErrorCode, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Operator};
use crate::store::lots;
use crate::store::tariffs::{self, TariffVersion};

/// One version of a lot's tariff.
#[derive(Debug, Serialize, ToSchema)]
pub struct TariffVersionView {
    /// 1 for the first tariff of the lot, then 2, 3...
    pub version: i32,
    /// From this instant the version prices new sessions and quotes.
    pub effective_from: DateTime<Utc>,
    /// The tariff document (docs/tariffs.md), in canonical form.
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
}

/// The tariff in force and every earlier version.
#[derive(Debug, Serialize, ToSchema)]
pub struct TariffHistory {
    pub version: i32,
    pub effective_from: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
    /// Every version, newest first (the first entry is the one above).
    pub history: Vec<TariffVersionView>,
}

impl TryFrom<TariffVersion> for TariffVersionView {
    type Error = ApiError;
    fn try_from(stored: TariffVersion) -> Result<Self, ApiError> {
        Ok(Self {
            version: stored.version,
            effective_from: stored.effective_from,
            tariff: serde_json::from_str(&stored.document).map_err(ApiError::internal)?,
        })
    }
}

/// 422 `tariff_invalid` listing every problem with its JSON path.
pub fn tariff_invalid(problems: Vec<TariffProblem>) -> ApiError {
    let detail = match problems.as_slice() {
        [one] => format!("the tariff is invalid: {}: {}", one.path, one.message),
        many => format!("the tariff has {} problems", many.len()),
    };
    let errors: Vec<FieldError> = problems
        .into_iter()
        .map(|p| FieldError::new(p.path, p.message))
        .collect();
    ApiError::new(ErrorCode::TariffInvalid, detail).with("errors", json!(errors))
}

/// The tariff a document describes, checked as publishing checks it (against the lot's
/// currency when a lot is given); 422 `tariff_invalid` with every problem otherwise.
pub fn check_document(
    document: &serde_json::Value,
    lot: Option<&lots::Lot>,
) -> Result<Tariff, ApiError> {
    let tariff = Tariff::from_json(document)
        .map_err(|InvalidTariff { problems }| tariff_invalid(problems))?;
    if let Some(lot) = lot {
        let lot_currency = Currency::parse(&lot.currency).map_err(ApiError::internal)?;
        tariff
            .check_currency(lot_currency)
            .map_err(|problem| tariff_invalid(vec![problem]))?;
    }
    Ok(tariff)
}

/// Validates a tariff document and publishes it as the lot's next version, in force at once.
#[utoipa::path(
    put, path = "/v1/operator/lots/{lot_id}/tariff", tag = "operator",
    params(("lot_id" = uuid::Uuid, Path, description = "The lot")),
    request_body(content = crate::http::openapi::TariffDocument, description = "A tariff document (docs/tariffs.md)"),
    security(("operator_key" = [])),
    responses(
        (status = 201, description = "The new version", body = TariffVersionView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`tariff_invalid`, with every problem's JSON path in `errors`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn put_tariff(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
    Json(document): Json<serde_json::Value>,
) -> Result<(StatusCode, axum::Json<TariffVersionView>), ApiError> {
    let lot = lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let tariff = check_document(&document, Some(&lot))?;
    let canonical = tariff.to_json();
    let stored = tariffs::publish(
        &state.db,
        lot_id,
        &canonical.to_string(),
        tariff.currency().code(),
        state.clock.now(),
    )
    .await;
    // Committed or not, this process's next public read asks what changed.
    state.cache.changed();
    let stored = stored?;
    tracing::info!(%lot_id, version = stored.version, "tariff published");
    Ok((StatusCode::CREATED, axum::Json(stored.try_into()?)))
}

/// The tariff in force and the history of versions.
#[utoipa::path(
    get, path = "/v1/operator/lots/{lot_id}/tariff", tag = "operator",
    params(("lot_id" = uuid::Uuid, Path, description = "The lot")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The current version and the history", body = TariffHistory),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` (no such lot of yours) or `no_tariff`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn get_tariff(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
) -> Result<axum::Json<TariffHistory>, ApiError> {
    lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let current = tariffs::in_force(&state.db, lot_id, state.clock.now())
        .await?
        .ok_or_else(no_tariff_404)?;
    let current: TariffVersionView = current.try_into()?;
    let history = tariffs::history(&state.db, lot_id)
        .await?
        .into_iter()
        .map(TariffVersionView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(TariffHistory {
        version: current.version,
        effective_from: current.effective_from,
        tariff: current.tariff,
        history,
    }))
}

fn no_tariff_404() -> ApiError {
    ApiError::new(
        ErrorCode::TariffNotPublished,
        "this lot has no tariff yet: PUT one to /v1/operator/lots/{lot_id}/tariff",
    )
}
