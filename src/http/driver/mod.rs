//! What drivers call, with their city identity token: one file per action (start, show,
//! stop, receipt, their list), and the views they share.

mod arrears;
mod mine;
mod proof;
mod receipt;
mod show;
mod start;
mod stop;
mod view;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub use arrears::{Arrears, ArrearsItem, CurrencyTotal, Paid, arrears_of};
pub use receipt::{Receipt, ReceiptQuery};
pub use start::StartRequest;
pub use view::{RefundView, SessionList, SessionView, SettlementView};

use crate::AppState;
use crate::http::error::ApiError;
use crate::store::sessions::{self, Session};

/// The driver routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start::start_session))
        .routes(routes!(show::get_session))
        .routes(routes!(stop::stop_session))
        .routes(routes!(receipt::receipt))
        .routes(routes!(mine::my_sessions))
        .routes(routes!(proof::proof))
        .routes(routes!(arrears::my_arrears))
        .routes(routes!(arrears::pay_arrears))
}

/// The driver's own session; another driver's is "not found".
async fn own_session(
    state: &AppState,
    session_id: Uuid,
    driver: &str,
) -> Result<Session, ApiError> {
    sessions::get_for_driver(&state.db, session_id, driver)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))
}
