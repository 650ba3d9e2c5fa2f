//! `GET /v1/sessions/{session_id}/receipt`: the receipt of a stopped session, as JSON or as
//! a printable page.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{RefundView, SettlementView, settlement_view};
use crate::AppState;
use crate::http::error::{ApiError, ErrorCode, ProblemBody};
use crate::http::extract::{Driver, IdPath, Query};
use crate::http::pages::receipt::{
    self as page, ReceiptLine, ReceiptPage, ReceiptRefund, ReceiptSettlement,
};
use crate::http::pages::request_language;
use crate::store::{lots, refunds, sessions, spaces};

/// `?format=html` for the printable receipt page, `?lang=en|zh` for its language. Other
/// parameters are refused (422 `unknown_field`), as on every other route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    pub format: Option<String>,
    pub lang: Option<String>,
}

/// A receipt: the lot, the space, the times, the breakdown, the total and the settlement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub session_id: Uuid,
    pub lot_name: String,
    pub lot_address: Option<String>,
    pub timezone: String,
    pub space_code: String,
    /// The vehicle's plate; `null` when none was given (or once erased).
    pub plate: Option<String>,
    pub driver: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    #[schema(value_type = crate::http::quote::FeeDoc)]
    pub fee: Value,
    /// `settlement.refunded` is what was given back in total.
    pub settlement: Option<SettlementView>,
    /// The operator's refunds of the fee, oldest first.
    pub refunds: Vec<RefundView>,
}

/// The receipt of a stopped session, as JSON or (`?format=html` or `Accept: text/html`) as a
/// printable page in the driver's language.
#[utoipa::path(
    get, path = "/v1/sessions/{session_id}/receipt", tag = "driver",
    params(
        ("session_id" = Uuid, Path, description = "The session"),
        ("format" = Option<String>, Query, description = "`html` for the printable page"),
        ("lang" = Option<String>, Query, description = "`en` or `zh`: the page's language (otherwise `Accept-Language`)"),
    ),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The receipt: JSON, or a printable HTML page with `format=html` or `Accept: text/html`", content(
            (Receipt = "application/json"),
            (String = "text/html"),
        )),
        (status = 404, description = "No such session of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`session_active`: stop it first", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn receipt(
    State(state): State<AppState>,
    Driver(identity): Driver,
    IdPath(session_id): IdPath,
    Query(query): Query<ReceiptQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = super::own_session(&state, session_id, &identity.subject).await?;
    let (Some(ended_at), Some(fee)) = (session.ended_at, &session.fee_lines) else {
        return Err(ApiError::new(
            ErrorCode::SessionActive,
            "a receipt exists once the session is stopped",
        ));
    };
    let lot = lots::get_public(&state.db, session.lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let space_code = spaces::get_public(&state.db, session.space_id)
        .await?
        .map(|s| s.code)
        .unwrap_or_default();
    let settlement = sessions::settlement(&state.db, session_id)
        .await?
        .as_ref()
        .map(settlement_view)
        .transpose()?;
    let refunds = refunds::of_sessions(&state.db, &[session_id])
        .await?
        .iter()
        .map(RefundView::of)
        .collect::<Result<_, _>>()?;
    let receipt = Receipt {
        session_id,
        lot_name: lot.name,
        lot_address: lot.address,
        timezone: lot.timezone,
        space_code,
        plate: session.plate,
        driver: session.driver,
        started_at: session.started_at,
        ended_at,
        fee: serde_json::from_str(fee).map_err(ApiError::internal)?,
        settlement,
        refunds,
    };
    let wants_html = query.format.as_deref() == Some("html")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let lang = request_language(&headers, query.lang.as_deref());
        let page = page_of(receipt, fee)?;
        Ok(Html(page::render(&page, lang).into_string()).into_response())
    } else {
        Ok(axum::Json(receipt).into_response())
    }
}

/// The stored breakdown, as the page needs it.
#[derive(Deserialize)]
struct StoredFee {
    currency: String,
    total: String,
    tariff_version: i32,
    lines: Vec<StoredLine>,
}

#[derive(Deserialize)]
struct StoredLine {
    rule: String,
    from: String,
    to: String,
    increments: u64,
    amount: String,
    charged: String,
}

fn page_of(receipt: Receipt, stored_fee: &str) -> Result<ReceiptPage, ApiError> {
    let fee: StoredFee = serde_json::from_str(stored_fee).map_err(ApiError::internal)?;
    Ok(ReceiptPage {
        session_id: receipt.session_id,
        lot_name: receipt.lot_name,
        lot_address: receipt.lot_address,
        timezone: receipt.timezone,
        space_code: receipt.space_code,
        plate: receipt.plate,
        started_at: receipt.started_at,
        ended_at: receipt.ended_at,
        lines: fee
            .lines
            .into_iter()
            .map(|l| ReceiptLine {
                rule: l.rule,
                from: l.from,
                to: l.to,
                increments: l.increments,
                amount: l.amount,
                charged: l.charged,
            })
            .collect(),
        total: fee.total,
        currency: fee.currency,
        tariff_version: fee.tariff_version,
        settlement: receipt.settlement.map(|s| ReceiptSettlement {
            reference: s.reference,
            status: s.status.as_str().to_owned(),
            amount: s.amount,
            refunded: s.refunded,
        }),
        refunds: receipt
            .refunds
            .into_iter()
            .map(|r| ReceiptRefund {
                reference: r.reference,
                amount: r.amount,
                reason: r.reason,
                status: r.status.as_str().to_owned(),
                created_at: r.created_at,
                refunded_at: r.refunded_at,
            })
            .collect(),
    })
}
