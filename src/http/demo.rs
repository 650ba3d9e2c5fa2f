//! The development identity provider's token endpoint: mounted only under `qrpark demo`.

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::http::error::{ApiError, FieldError, ProblemBody};
use crate::http::extract::Json;

/// The demo routes (only when the state has a demo identity provider).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(demo_token))
}

/// Who to sign in as.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoTokenRequest {
    /// The demo driver's subject, 1 to 255 characters (default `demo-driver`).
    #[schema(min_length = 1, max_length = 255)]
    pub subject: Option<String>,
    /// Roles, e.g. `["auditor"]`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A city identity token signed by the demo identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemoToken {
    pub token: String,
    pub subject: String,
    pub expires_in: u64,
}

/// Signs a demo driver in: a city identity token valid for an hour. Exists only under
/// `qrpark demo`.
#[utoipa::path(
    post, path = "/v1/demo/token", tag = "demo",
    request_body = DemoTokenRequest,
    responses(
        (status = 200, description = "A token for the demo driver", body = DemoToken),
        (status = 422, description = "`validation_failed`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn demo_token(
    State(state): State<AppState>,
    Json(body): Json<DemoTokenRequest>,
) -> Result<axum::Json<DemoToken>, ApiError> {
    let Some(idp) = &state.demo_idp else {
        return Err(ApiError::not_found("route"));
    };
    let subject = body.subject.unwrap_or_else(|| "demo-driver".to_owned());
    if subject.is_empty() || subject.chars().count() > 255 {
        return Err(ApiError::validation(vec![FieldError::new(
            "$.subject",
            "must be 1 to 255 characters",
        )]));
    }
    let roles: Vec<&str> = body.roles.iter().map(String::as_str).collect();
    let ttl = Duration::from_secs(3600);
    let token = idp.issue(&subject, &roles, &state.config.city_audience, ttl);
    Ok(axum::Json(DemoToken {
        token,
        subject,
        expires_in: ttl.as_secs(),
    }))
}
