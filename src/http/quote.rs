//! `POST /v1/lots/{lot_id}/quote`: what parking would cost, under the lot's current tariff.

use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::domain::tariff::{self, PriceError};
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, ErrorCode, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json};

/// Longest interval a quote prices: a month. Longer questions are not parking questions,
/// and the bound keeps a public endpoint's cost small.
pub const MAX_QUOTE_DAYS: i64 = 31;

/// The quote routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(quote))
}

/// The interval to price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// RFC 3339 instant, any offset.
    #[schema(example = "2026-09-29T10:00:00+08:00")]
    #[serde(deserialize_with = "crate::http::extract::instant")]
    pub start: DateTime<Utc>,
    /// RFC 3339 instant, not before `start`, at most 31 days after it.
    #[schema(example = "2026-09-29T12:00:00+08:00")]
    #[serde(deserialize_with = "crate::http::extract::instant")]
    pub end: DateTime<Utc>,
}

pub use crate::sessions::PricedFee;

/// One line of a fee (documentation of [`Fee`]'s JSON form).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FeeLineDoc {
    /// The rule's name, or `grace` for the one line of a fee within the grace period.
    rule: String,
    /// Segment start, RFC 3339 in the lot's local offset.
    from: String,
    /// Segment end (exclusive).
    to: String,
    /// Increments charged in the segment (1 for a flat).
    increments: u64,
    /// Before caps, with exactly the currency's minor-unit decimals.
    #[schema(example = "5.00")]
    amount: String,
    /// After caps.
    #[schema(example = "5.00")]
    charged: String,
}

/// A fee (documentation of [`Fee`]'s JSON form): the lines' `charged` amounts sum to `total`.
#[derive(ToSchema)]
#[schema(as = Fee)]
#[allow(dead_code)]
pub struct FeeDoc {
    #[schema(example = "CNY")]
    currency: String,
    #[schema(example = "25.00")]
    total: String,
    lines: Vec<FeeLineDoc>,
    tariff_version: i32,
}

/// Prices `[start, end)` under the lot's current tariff, with the breakdown.
#[utoipa::path(
    post, path = "/v1/lots/{lot_id}/quote", tag = "public",
    params(("lot_id" = uuid::Uuid, Path, description = "The lot")),
    request_body = QuoteRequest,
    responses(
        (status = 200, description = "The fee", body = FeeDoc),
        (status = 404, description = "`not_found`: no such lot", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`no_tariff`: the lot has no tariff yet", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: bad instants, end before start, or longer than 31 days", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn quote(
    State(state): State<AppState>,
    IdPath(lot_id): IdPath,
    Json(body): Json<QuoteRequest>,
) -> Result<axum::Json<PricedFee>, ApiError> {
    let lot = state
        .cache
        .lot(lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    check_interval(body.start, body.end)?;
    let in_force = state
        .cache
        .tariff_in_force(lot_id, state.clock.now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoTariff,
                "this lot has no tariff yet, so nothing can be priced",
            )
        })?;
    let timezone = TimeZone::parse(&lot.timezone).map_err(ApiError::internal)?;
    let fee = tariff::price(&in_force.tariff, timezone.tz(), body.start, body.end)
        .map_err(price_error)?;
    Ok(axum::Json(PricedFee {
        fee,
        tariff_version: in_force.stored.version,
    }))
}

/// Refuses an interval that ends before it starts or spans more than [`MAX_QUOTE_DAYS`].
pub fn check_interval(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), ApiError> {
    if end < start {
        return Err(ApiError::validation(vec![FieldError::new(
            "$.end",
            "must not be before start",
        )]));
    }
    if end - start > TimeDelta::days(MAX_QUOTE_DAYS) {
        return Err(ApiError::validation(vec![FieldError::new(
            "$.end",
            format!("a quote covers at most {MAX_QUOTE_DAYS} days"),
        )]));
    }
    Ok(())
}

fn price_error(err: PriceError) -> ApiError {
    match err {
        PriceError::EndBeforeStart { .. } => {
            ApiError::validation(vec![FieldError::new("$.end", "must not be before start")])
        }
        PriceError::OutOfRange => ApiError::validation(vec![FieldError::new(
            "$.start",
            "lies outside the years the pricing engine supports",
        )]),
        PriceError::Overflow => ApiError::internal(anyhow::anyhow!("fee overflow")),
    }
}
