//! Spaces of an operator's lots: bulk creation, listing and status.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::space::{MAX_BULK, SpaceCode, SpaceStatus};
use crate::http::error::{ApiError, ErrorCode, FieldError, ProblemBody};
use crate::http::extract::{IdPath, Json, Operator};
use crate::store::lots;
use crate::store::spaces::{self, CreateSpacesError, Space};
use crate::{AppState, qr};

/// A space as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpaceView {
    pub id: Uuid,
    pub lot_id: Uuid,
    #[schema(example = "A-012")]
    pub code: String,
    #[schema(value_type = String, example = "active")]
    pub status: SpaceStatus,
    /// What the space's QR code holds: `{public_url}/q/{token}`.
    pub qr_url: Option<String>,
    /// The code's version; rotation increments it and revokes the older ones.
    pub qr_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SpaceView {
    /// The view of a stored space, its code's URL under `public_url`.
    pub fn new(space: Space, public_url: &str) -> Self {
        Self {
            status: space.status,
            qr_url: space
                .qr_token
                .as_deref()
                .map(|t| qr::codes::url(public_url, t)),
            qr_version: space.qr_version,
            id: space.space_id,
            lot_id: space.lot_id,
            code: space.code,
            created_at: space.created_at,
            updated_at: space.updated_at,
        }
    }

    fn list(spaces: Vec<Space>, public_url: &str) -> SpaceList {
        SpaceList {
            spaces: spaces
                .into_iter()
                .map(|s| SpaceView::new(s, public_url))
                .collect(),
        }
    }
}

/// Spaces of a lot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpaceList {
    pub spaces: Vec<SpaceView>,
}

/// Codes of the spaces to create, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpaces {
    /// 1 to 1000 distinct codes.
    #[schema(schema_with = codes_schema, example = json!(["A-001", "A-002"]))]
    pub codes: Vec<String>,
}

/// 1 to [`MAX_BULK`] distinct space codes.
fn codes_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::http::openapi::space_code())
        .min_items(Some(1))
        .max_items(Some(MAX_BULK))
        .unique_items(true)
        .build()
}

/// A space's new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpace {
    #[schema(schema_with = crate::http::openapi::space_status, example = "out_of_service")]
    pub status: SpaceStatus,
}

impl CreateSpaces {
    fn validate(self) -> Result<Vec<SpaceCode>, ApiError> {
        let mut errors = Vec::new();
        if self.codes.is_empty() {
            errors.push(FieldError::new("$.codes", "give at least one code"));
        }
        if self.codes.len() > MAX_BULK {
            errors.push(FieldError::new(
                "$.codes",
                format!("at most {MAX_BULK} codes per request"),
            ));
        }
        let mut seen = HashSet::new();
        let mut codes = Vec::with_capacity(self.codes.len());
        for (i, raw) in self.codes.iter().enumerate() {
            let path = format!("$.codes[{i}]");
            match SpaceCode::parse(raw) {
                Ok(code) if !seen.insert(raw.as_str()) => {
                    errors.push(FieldError::new(path, format!("`{code}` is listed twice")));
                }
                Ok(code) => codes.push(code),
                Err(e) => errors.push(FieldError::new(path, e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(codes)
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// Creates spaces in one of the operator's lots, all or none.
#[utoipa::path(
    post, path = "/v1/operator/lots/{lot_id}/spaces", tag = "operator",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    request_body = CreateSpaces,
    security(("operator_key" = [])),
    responses(
        (status = 201, description = "The new spaces", body = SpaceList),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`space_code_taken`, with the taken `codes`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create_spaces(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
    Json(body): Json<CreateSpaces>,
) -> Result<(StatusCode, axum::Json<SpaceList>), ApiError> {
    lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let codes = body.validate()?;
    let now = state.clock.now();
    let new = crate::qr::codes::new_spaces(&state.keys, codes, now).await?;
    match spaces::create_many(&state.db, lot_id, &new, now).await {
        Ok(created) => Ok((
            StatusCode::CREATED,
            axum::Json(SpaceView::list(created, &state.config.public_url())),
        )),
        Err(CreateSpacesError::CodesTaken(taken)) => Err(ApiError::new(
            ErrorCode::SpaceCodeTaken,
            format!(
                "these codes are already used in this lot: {}",
                taken.join(", ")
            ),
        )
        .with("codes", json!(taken))),
        Err(CreateSpacesError::Store(err)) => Err(err.into()),
    }
}

/// Lists the spaces of one of the operator's lots, by code.
#[utoipa::path(
    get, path = "/v1/operator/lots/{lot_id}/spaces", tag = "operator",
    params(("lot_id" = Uuid, Path, description = "The lot")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The lot's spaces", body = SpaceList),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such lot of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_spaces(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(lot_id): IdPath,
) -> Result<axum::Json<SpaceList>, ApiError> {
    lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let spaces = spaces::list(&state.db, lot_id).await?;
    Ok(axum::Json(SpaceView::list(
        spaces,
        &state.config.public_url(),
    )))
}

/// One space of the operator's lots.
#[utoipa::path(
    get, path = "/v1/operator/spaces/{space_id}", tag = "operator",
    params(("space_id" = Uuid, Path, description = "The space")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The space", body = SpaceView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such space of yours", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn get_space(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(space_id): IdPath,
) -> Result<axum::Json<SpaceView>, ApiError> {
    let space = spaces::get(&state.db, operator.operator_id, space_id)
        .await?
        .ok_or_else(|| ApiError::not_found("space"))?;
    Ok(axum::Json(SpaceView::new(
        space,
        &state.config.public_url(),
    )))
}

/// Takes a space out of service or back into it.
#[utoipa::path(
    patch, path = "/v1/operator/spaces/{space_id}", tag = "operator",
    params(("space_id" = Uuid, Path, description = "The space")),
    request_body = UpdateSpace,
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The changed space", body = SpaceView),
        (status = 401, description = "No or bad API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such space of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `unknown_field`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn update_space(
    State(state): State<AppState>,
    operator: Operator,
    IdPath(space_id): IdPath,
    Json(body): Json<UpdateSpace>,
) -> Result<axum::Json<SpaceView>, ApiError> {
    let space = spaces::set_status(
        &state.db,
        operator.operator_id,
        space_id,
        body.status,
        state.clock.now(),
    )
    .await;
    // Committed or not, this process's next public read asks what changed.
    state.cache.changed();
    let space = space?.ok_or_else(|| ApiError::not_found("space"))?;
    Ok(axum::Json(SpaceView::new(
        space,
        &state.config.public_url(),
    )))
}
