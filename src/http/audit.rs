//! What city auditors call, with a city identity token holding the `auditor` role.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::audit::export::{self, Format, Range};
use crate::domain::currency::Currency;
use crate::domain::key_purpose::KeyPurpose;
use crate::domain::money::Money;
use crate::http::error::{ApiError, FieldError, ProblemBody};
use crate::http::extract::{Auditor, Query};
use crate::store::audit_summary;

/// The audit routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sessions))
        .routes(routes!(checkpoint))
        .routes(routes!(summary))
}

/// A range of stopped sessions (by `ended_at`) and its filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Sessions that ended at or after this instant (RFC 3339; default: the beginning).
    #[param(schema_with = crate::http::openapi::instant)]
    pub from: Option<String>,
    /// ...and before this one (default: now). A range wholly in the past exports
    /// byte-identically every time, until retention erases its plates (then `null`).
    #[param(schema_with = crate::http::openapi::instant)]
    pub to: Option<String>,
    /// Only this operator's lots.
    pub operator: Option<Uuid>,
    /// Only this lot.
    pub lot: Option<Uuid>,
    /// `jsonl` (default; records with their fee breakdown, then a signed checkpoint line) or
    /// `csv` (records; the checkpoint from `/v1/audit/checkpoint`).
    #[param(schema_with = crate::http::openapi::export_format)]
    pub format: Option<String>,
}

fn instant(
    value: Option<&str>,
    path: &str,
    default: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    let Some(text) = value else {
        return Ok(default);
    };
    crate::http::extract::rfc3339(text)
        .ok_or_else(|| FieldError::new(path, "must be an RFC 3339 instant"))
}

impl ExportQuery {
    fn range(&self, now: DateTime<Utc>) -> Result<(Range, Format), ApiError> {
        let mut errors = Vec::new();
        let from = instant(self.from.as_deref(), "$.from", DateTime::UNIX_EPOCH)
            .map_err(|e| errors.push(e))
            .ok();
        let to = instant(self.to.as_deref(), "$.to", now)
            .map_err(|e| errors.push(e))
            .ok();
        let format = match self.format.as_deref() {
            None => Some(Format::Jsonl),
            Some(text) => Format::parse(text).or_else(|| {
                errors.push(FieldError::new("$.format", "must be csv or jsonl"));
                None
            }),
        };
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            errors.push(FieldError::new("$.to", "must be after from"));
        }
        match (from, to, format) {
            (Some(from), Some(to), Some(format)) if errors.is_empty() => Ok((
                Range {
                    from,
                    to,
                    operator: self.operator,
                    lot: self.lot,
                },
                format,
            )),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// Exports and summaries hold sealed sessions only (docs/audit.md, "Sealing"): whatever
/// was committed before the request is sealed first, so that the answer holds it at once.
async fn seal_pending(state: &AppState) -> Result<(), ApiError> {
    crate::store::audit::seal_pending(&state.db).await?;
    Ok(())
}

/// Streams every stopped session of the range, chained record by record, in the order of
/// the audit chain; the same range exported twice is byte-identical.
#[utoipa::path(
    get, path = "/v1/audit/sessions", tag = "audit",
    params(ExportQuery),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The export: JSON lines (`format=jsonl`, the default) or CSV (`format=csv`)", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an auditor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn sessions(
    State(state): State<AppState>,
    Auditor(auditor): Auditor,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let (range, format) = query.range(state.clock.now())?;
    seal_pending(&state).await?;
    let key = state
        .keys
        .signing_key(KeyPurpose::Checkpoint, state.clock.now())
        .await?;
    tracing::info!(auditor = %auditor.subject, from = %range.from, to = %range.to, "audit export");
    let (sender, receiver) = mpsc::channel::<export::Chunk>(8);
    // The replica once it holds everything the primary held when the export was asked for.
    let db = state.reads.caught_up().await;
    let exported = tokio::spawn(async move {
        export::produce(&db, &range, format, &key, &sender)
            .await
            .inspect_err(|error| {
                // A client that hangs up is no fault of the server's.
                if sender.is_closed() {
                    tracing::info!("audit export abandoned by its client");
                } else {
                    tracing::error!(?error, "audit export failed midway");
                }
            })
    });
    // The chunks as they come; then, if the export failed midway, an error that breaks the
    // response off (no closing chunk), so a client never takes a cut-off export for whole.
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk.bytes), receiver))
    });
    let outcome = futures_util::stream::once(async move {
        match exported.await {
            Ok(Ok(_)) => None,
            _ => Some(Err(std::io::Error::other("the export failed midway"))),
        }
    })
    .filter_map(std::future::ready);
    let stream = chunks.chain(outcome);
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Jsonl => "application/x-ndjson",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The signed checkpoint of an export (for CSV exports, which carry none in the file).
#[utoipa::path(
    get, path = "/v1/audit/checkpoint", tag = "audit",
    params(ExportQuery),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "`{\"checkpoint\": {format, from, to, operator, lot, count, head, kid, alg, signature}}`", body = Object),
        (status = 403, description = "`forbidden`: not an auditor", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    _auditor: Auditor,
    Query(query): Query<ExportQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (range, format) = query.range(state.clock.now())?;
    seal_pending(&state).await?;
    let key = state
        .keys
        .signing_key(KeyPurpose::Checkpoint, state.clock.now())
        .await?;
    let (sender, mut receiver) = mpsc::channel::<export::Chunk>(8);
    let db = state.reads.caught_up().await;
    let producer = {
        let (range, key) = (range.clone(), key.clone());
        tokio::spawn(async move { export::produce(&db, &range, format, &key, &sender).await })
    };
    // The checkpoint needs the whole chain: read it through, keeping nothing.
    while receiver.recv().await.is_some() {}
    let (count, head) = producer.await.map_err(ApiError::internal)??;
    Ok(axum::Json(export::checkpoint(
        format, &range, count, &head, &key,
    )))
}

/// Totals of one operator's lot on one local day.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryRow {
    pub operator_id: Uuid,
    pub lot_id: Uuid,
    /// The lot's local date the sessions ended on.
    pub day: NaiveDate,
    pub currency: String,
    pub sessions: u64,
    /// The sum of the fees: `settled + pending + arrears + review`.
    pub fees: String,
    /// Collected by the gateway (or by the ledger, without one).
    pub settled: String,
    /// On their way to the gateway.
    pub pending: String,
    /// Refused by the gateway: the drivers owe them.
    pub arrears: String,
    /// Delivery gave up: the city's payment office decides.
    pub review: String,
    /// Given back to drivers, or being given back (refunds not failed); never above `fees`.
    pub refunded: String,
}

/// Reconciliation totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
}

/// Sessions, fees and settled, pending, arrears, review and refunded totals per operator,
/// lot and local day, over the same range and filters as the export (their sums match the
/// export's). Every row reconciles: `fees = settled + pending + arrears + review`.
#[utoipa::path(
    get, path = "/v1/audit/summary", tag = "audit",
    params(ExportQuery),
    security(("city_identity" = [])),
    responses(
        (status = 200, description = "The totals", body = Summary),
        (status = 401, description = "`token_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an auditor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    _auditor: Auditor,
    Query(query): Query<ExportQuery>,
) -> Result<axum::Json<Summary>, ApiError> {
    let (range, _) = query.range(state.clock.now())?;
    seal_pending(&state).await?;
    let range = &range;
    let totals = state
        .reads
        .read_caught_up(|db| async move { audit_summary::per_lot_day(&db, range).await })
        .await?;
    let mut out = Vec::with_capacity(totals.len());
    for t in totals {
        if !t.reconciles() {
            return Err(ApiError::internal(anyhow::anyhow!(
                "the audit summary does not reconcile: {t:?}"
            )));
        }
        let unit = Currency::parse(&t.currency).map_err(ApiError::internal)?;
        let money = |minor: i64| Money::from_minor(minor, unit).to_string();
        out.push(SummaryRow {
            operator_id: t.operator_id,
            lot_id: t.lot_id,
            day: t.day,
            sessions: t.sessions,
            fees: money(t.fees),
            settled: money(t.settled),
            pending: money(t.pending),
            arrears: money(t.arrears),
            review: money(t.review),
            refunded: money(t.refunded),
            currency: t.currency,
        });
    }
    Ok(axum::Json(Summary { rows: out }))
}
