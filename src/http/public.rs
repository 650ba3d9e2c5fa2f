//! Routes anyone may call: health, metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::http::error::{ApiError, ProblemBody};

/// The public operational routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// The health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// 200 when the database answers a round trip, 503 otherwise.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state
        .db
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    let database = match state.db.backend() {
        crate::config::Backend::Sqlite => "sqlite",
        crate::config::Backend::Postgres => "postgres",
    };
    Ok(axum::Json(Health {
        status: "ok",
        database,
    }))
}

/// Prometheus text: requests by route and status, latency histograms, pool gauges.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (size, idle) = state.db.pool_usage();
    let backend = match state.db.backend() {
        crate::config::Backend::Sqlite => "sqlite",
        crate::config::Backend::Postgres => "postgres",
    };
    metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "idle")
        .set(idle as f64);
    metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "in_use")
        .set(size.saturating_sub(idle as u32) as f64);
    metrics::gauge!("db_pool_max_connections", "backend" => backend)
        .set(f64::from(state.config.database_max_connections));
    if state.reads.has_replica() {
        // How old the replica's knowledge is (-1: unknown, unreachable), and whether reads
        // that may lag go there now (docs/operations.md, "Read replica").
        metrics::gauge!("db_replica_staleness_seconds")
            .set(state.reads.staleness().map_or(-1.0, |s| s.as_secs_f64()));
        metrics::gauge!("db_replica_in_use").set(if state.reads.on_replica() { 1.0 } else { 0.0 });
        let served = state.reads.served();
        metrics::counter!("db_replica_reads_total", "server" => "replica").absolute(served.replica);
        metrics::counter!("db_replica_reads_total", "server" => "primary").absolute(served.primary);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
