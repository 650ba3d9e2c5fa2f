//! HTTP: one module per audience, one error type, extractors per kind of caller.

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderName, Request};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;

pub mod audit;
pub mod console;
pub mod demo;
pub mod driver;
pub mod enforcement;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod openapi;
pub mod operator;
pub mod pages;
pub mod public;
pub mod quote;
pub mod scan;
pub mod server;

use error::{ApiError, ErrorCode};

/// The header carrying each request's id, on the way in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "qrpark", description = "QR-code parking payment: lots, spaces, tariffs, sessions."),
    modifiers(&SecurityAddon),
    components(schemas(error::ProblemBody, error::FieldError, error::ErrorCode)),
    tags(
        (name = "operations", description = "Health and metrics"),
        (name = "public", description = "Anyone: QR verification keys, scans, quotes"),
        (name = "driver", description = "Drivers, with a city identity token"),
        (name = "audit", description = "City auditors: a city identity with the auditor role"),
        (name = "enforcement", description = "City wardens: a city identity with the warden role"),
        (name = "demo", description = "Only under `qrpark demo`: the development identity provider"),
        (name = "operator", description = "Lot operators, with an API key"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "city_identity",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A city identity token (JWT) from the city's identity provider",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An operator API key (`qrpk_...`)"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented(false).1
}

/// The routes and their OpenAPI document, with the answers the shared extractors and the
/// limits add to every route (known only once every route is in).
fn documented(with_demo: bool) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = routes(with_demo).split_for_parts();
    utoipa::Modify::modify(&openapi::ProblemsDoc, &mut api);
    utoipa::Modify::modify(&openapi::ShapesDoc, &mut api);
    utoipa::Modify::modify(&limits::LimitsDoc, &mut api);
    (router, api)
}

fn routes(with_demo: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    // The development identity provider exists only under `qrpark demo`.
    let router = if with_demo {
        router.merge(demo::routes())
    } else {
        router
    };
    router
        .merge(public::routes())
        .merge(scan::routes())
        .merge(quote::routes())
        .merge(driver::routes())
        .merge(audit::routes())
        .merge(enforcement::routes())
        .merge(operator::routes())
}

/// The whole application, exactly as `qrpark serve` runs it.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let (router, api) = documented(state.demo_idp.is_some());
    let router = router
        .merge(pages::routes())
        .merge(console::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_by_address,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            reads_follow_changes,
        ))
        .layer(axum::middleware::from_fn(crate::telemetry::track_requests))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api));
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        let request_id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            request_id = %request_id,
                            method = %request.method(),
                            path = %request.uri().path(),
                        )
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO))
                    .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

/// Changes through the operator API and the console (lots, spaces, codes, tariffs) are what
/// public reads show: once one is answered, this process reads them from the primary until
/// the replica is known to hold it (`store::reads`), so an operator who rotates a code and
/// scans it sees the old one refused at once.
async fn reads_follow_changes(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let changes = !request.method().is_safe()
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|path| {
                let path = path.as_str();
                path.starts_with("/v1/operator/") || path.starts_with("/console/")
            });
    let response = next.run(request).await;
    if changes {
        state.reads.note_change();
    }
    response
}

async fn route_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no route matches this path; see /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this path does not accept this method; see /openapi.json",
    )
}

fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}
