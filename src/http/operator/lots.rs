//! `/v1/operator/lots`: create, list, read and rename lots.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::lot::{Address, LotName, NewLot};
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Operator};
use crate::store::lots::{self, Lot, LotChanges};

/// A lot as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
    /// IANA time zone of the lot's local wall-clock time.
    #[schema(example = "Asia/Shanghai")]
    pub timezone: String,
    /// ISO 4217 code every price of the lot is in.
    #[schema(example = "CNY")]
    pub currency: String,
    /// Decimals of the currency's minor unit (CNY 2, JPY 0, KWD 3).
    pub minor_unit: u32,
    /// Every session in the lot must name the vehicle's plate (422 `plate_required`).
    pub plate_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Lot> for LotView {
    fn from(lot: Lot) -> Self {
        let minor_unit = Currency::parse(&lot.currency)
            .map(|c| c.minor_unit())
            .unwrap_or(2);
        Self {
            id: lot.lot_id,
            name: lot.name,
            address: lot.address,
            timezone: lot.timezone,
            currency: lot.currency,
            minor_unit,
            plate_required: lot.plate_required,
            created_at: lot.created_at,
            updated_at: lot.updated_at,
        }
    }
}

/// The operator's lots.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotList {
    pub lots: Vec<LotView>,
}

/// A new lot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLot {
    /// 1 to 120 characters on one line, unique among your lots.
    #[schema(schema_with = crate::http::openapi::lot_name, example = "People's Square P2")]
    pub name: String,
    /// IANA time zone of the lot's local wall-clock time.
    #[schema(schema_with = crate::http::openapi::timezone)]
    pub timezone: String,
    /// ISO 4217 code every price of the lot is in.
    #[schema(schema_with = crate::http::openapi::currency)]
    pub currency: String,
    /// 1 to 300 characters on one line.
    #[schema(schema_with = crate::http::openapi::address_or_null)]
    pub address: Option<String>,
    /// Require the vehicle's plate on every session (default `false`).
    #[serde(default)]
    pub plate_required: bool,
}

/// Changes to a lot; time zone and currency are fixed once created.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLot {
    /// The new name; absent or `null` keeps it.
    #[schema(schema_with = crate::http::openapi::lot_name_or_null)]
    pub name: Option<String>,
    /// The new address; `null` removes it, absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::http::openapi::address_or_null)]
    pub address: Option<Option<String>>,
    /// Require the vehicle's plate on every session.
    pub plate_required: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl CreateLot {
    fn validate(self) -> Result<NewLot, ApiError> {
        let mut errors = Vec::new();
        let name = LotName::parse(&self.name)
            .map_err(|e| errors.push(FieldError::new("$.name", e.to_string())))
            .ok();
        let timezone = TimeZone::parse(&self.timezone)
            .map_err(|e| errors.push(FieldError::new("$.timezone", e.to_string())))
            .ok();
        let currency = Currency::parse(&self.currency)
            .map_err(|e| errors.push(FieldError::new("$.currency", e.to_string())))
            .ok();
        let address = match self.address.as_deref().map(Address::parse) {
            Some(Err(e)) => {
                errors.push(FieldError::new("$.address", e.to_string()));
                None
            }
            Some(Ok(address)) => Some(address),
            None => None,
        };
        match (name, timezone, currency) {
            (Some(name), Some(timezone), Some(currency)) if errors.is_empty() => Ok(NewLot {
                name,
                address,
                timezone,
                currency,
                plate_required: self.plate_required,
            }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

impl UpdateLot {
    fn validate(self) -> Result<LotChanges, ApiError> {
        let mut errors = Vec::new();
        let name = match self.name.as_deref().map(LotName::parse) {
            Some(Err(e)) => {
                errors.push(FieldError::new("$.name", e.to_string()));
                None
            }
            other => other.and_then(Result::ok),
        };
        let address = match self.address {
            Some(Some(text)) => match Address::parse(&text) {
                Ok(address) => Some(Some(address)),
                Err(e) => {
                    errors.push(FieldError::new("$.address", e.to_string()));
                    None
                }
            },
            Some(None) => Some(None),
            None => None,
        };
        if errors.is_empty() {
            Ok(LotChanges {
                name,
                address,
                plate_required: self.plate_required,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// Creates a lot.
#[utoipa::path(
    post, path = "/v1/operator/lots", tag = "operator",
    request_body = CreateLot,
    security(("operator_key" = [])),
    responses(
        (status = 201, description = "The new lot", body = LotView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`lot_name_taken`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create_lot(
    State(state): State<AppState>,
    operator: Operator,
    Json(body): Json<CreateLot>,
) -> Result<impl IntoResponse, ApiError> {
    let new_lot = body.validate()?;
    let lot = lots::create(&state.db, operator.operator_id, &new_lot, state.clock.now()).await?;
    let location = format!("/v1/operator/lots/{}", lot.lot_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(LotView::from(lot)),
    ))
}

/// Lists the operator's lots, oldest first.
#[utoipa::path(
    get, path = "/v1/operator/lots", tag = "operator",
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The operator's lots", body = LotList),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_lots(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<axum::Json<LotList>, ApiError> {
    let lots = lots::list(&state.db, operator.operator_id).await?;
    Ok(axum::Json(LotList {
        lots: lots.into_iter().map(LotView::from).collect(),
    }))
}

/// One of the operator's lots.
#[utoipa::path(
    get, path = "/v1/operator/lots/{lot_id}", tag = "operator",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The lot", body = LotView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn get_lot(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
) -> Result<axum::Json<LotView>, ApiError> {
    let lot = lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    Ok(axum::Json(lot.into()))
}

/// Renames a lot or changes its address.
#[utoipa::path(
    patch, path = "/v1/operator/lots/{lot_id}", tag = "operator",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    request_body = UpdateLot,
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The changed lot", body = LotView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`lot_name_taken`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn update_lot(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
    Json(body): Json<UpdateLot>,
) -> Result<axum::Json<LotView>, ApiError> {
    let changes = body.validate()?;
    let lot = lots::update(
        &state.db,
        operator.operator_id,
        lot_id,
        &changes,
        state.clock.now(),
    )
    .await;
    // Committed or not, this process's next public read asks what changed.
    state.cache.changed();
    let lot = lot?.ok_or_else(|| ApiError::not_found("lot"))?;
    Ok(axum::Json(lot.into()))
}
