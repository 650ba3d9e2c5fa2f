//! What lot operators call, with an API key: their lots and spaces, nobody else's.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod lots;
pub mod metrics;
pub mod qr;
pub mod refunds;
pub mod sessions;
pub mod spaces;
pub mod tariff;
pub mod validate;

/// The operator routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lots::create_lot, lots::list_lots))
        .routes(routes!(lots::get_lot, lots::update_lot))
        .routes(routes!(spaces::create_spaces, spaces::list_spaces))
        .routes(routes!(spaces::get_space, spaces::update_space))
        .routes(routes!(qr::rotate))
        .routes(routes!(qr::png))
        .routes(routes!(qr::svg))
        .routes(routes!(qr::sheet))
        .routes(routes!(tariff::put_tariff, tariff::get_tariff))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::stop_session))
        .routes(routes!(sessions::occupancy))
        .routes(routes!(refunds::create_refund, refunds::list_refunds))
        .routes(routes!(validate::validate))
        .routes(routes!(metrics::metrics))
}
