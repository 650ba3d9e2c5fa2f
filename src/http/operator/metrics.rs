//! `GET /v1/operator/metrics`: a lot's Curb Data Specification metrics per local hour and
//! its revenue per local day, as JSON or as a CDS aggregate CSV (docs/console.md).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::metrics::{self, DayRevenue, Hour, HourRange, Span};
use crate::domain::money::Money;
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, FieldError, ProblemBody};
use crate::http::extract::{Operator, Query, storable_instants};
use crate::store::{lots, sessions};

/// The CSV's media type, as CDS requires of a dynamic server.
pub const CDS_CSV: &str = "application/vnd.cds+csv;version=1.0";

/// `json` (the default) or `csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

/// Which lot and hours.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// One of your lots.
    pub lot: Uuid,
    /// The start (RFC 3339, between 1970 and 9999), moved back to the start of its local
    /// hour; default 24 hours before `to`.
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub from: Option<DateTime<Utc>>,
    /// The end, exclusive, moved on to the end of its local hour; after `from` and at most
    /// 31 days after it; default the end of the current local hour.
    #[param(schema_with = crate::http::openapi::instant)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_instant")]
    pub to: Option<DateTime<Utc>>,
    /// `json` (default) or `csv` (`application/vnd.cds+csv`, CDS aggregate rows).
    #[param(schema_with = crate::http::openapi::metrics_format)]
    pub format: Option<Format>,
}

/// One local hour's CDS metrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourView {
    /// The local date (`YYYY-MM-DD`) and hour (0-23), as CDS names an aggregate's hour.
    #[schema(value_type = String, example = "2026-09-29")]
    pub date: NaiveDate,
    pub hour: u32,
    /// The hour's first instant.
    pub start: DateTime<Utc>,
    /// Sessions started in the hour.
    pub total_sessions: i64,
    /// Sessions per hour.
    #[schema(value_type = f64)]
    pub turnover: serde_json::Number,
    /// Minutes, over the hour's sessions that have ended; `null` when none has.
    #[schema(value_type = Option<f64>)]
    pub average_dwell_time: Option<serde_json::Number>,
    /// Occupied space-time over available space-time, in percent; `null` without spaces.
    #[schema(value_type = Option<f64>)]
    pub occupancy_percent: Option<serde_json::Number>,
}

/// What the lot earned on one local day.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevenueView {
    #[schema(value_type = String, example = "2026-09-29")]
    pub date: NaiveDate,
    /// Sessions that ended that day, within the range.
    pub sessions: i64,
    /// Their fees, with the currency's minor-unit decimals.
    #[schema(example = "125.50")]
    pub total: String,
}

/// A lot's metrics over a range of hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotMetrics {
    pub lot_id: Uuid,
    pub timezone: String,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Spaces in service, the capacity `occupancy_percent` is measured against.
    pub spaces: i64,
    pub hours: Vec<HourView>,
    pub revenue: Vec<RevenueView>,
}

/// A lot's CDS metrics per local hour (`total_sessions`, `turnover`, `average_dwell_time`,
/// `occupancy_percent`) and its revenue per local day.
#[utoipa::path(
    get, path = "/v1/operator/metrics", tag = "operator",
    params(MetricsQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The metrics (JSON), or CDS aggregate rows `curb_place_type,curb_place_id,metric_type,date,hour,value` with `format=csv`", content(
            (LotMetrics = "application/json"),
            (String = "application/vnd.cds+csv;version=1.0"),
        )),
        (status = 401, description = "`unauthorized`, `api_key_invalid`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`lot` is not one of yours", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: no `lot`, an unknown `format`, an instant that is not RFC 3339, a range that is empty or longer than 31 days", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    operator: Operator,
    Query(mut query): Query<MetricsQuery>,
) -> Result<Response, ApiError> {
    storable_instants([(&mut query.from, "$.from"), (&mut query.to, "$.to")])?;
    let found = lot_metrics(&state, operator, query.lot, query.from, query.to).await?;
    Ok(match query.format.unwrap_or_default() {
        Format::Json => axum::Json(found.view()).into_response(),
        Format::Csv => ([(header::CONTENT_TYPE, CDS_CSV)], found.csv()).into_response(),
    })
}

/// A lot's metrics as computed, before they are written out.
pub struct Measured {
    pub lot: lots::Lot,
    pub currency: Currency,
    pub range: HourRange,
    pub spaces: i64,
    pub hours: Vec<Hour>,
    pub revenue: Vec<DayRevenue>,
}

/// Measures one of the operator's lots over `[from, to)` (defaults: the 24 hours up to the
/// end of the current local hour).
pub async fn lot_metrics(
    state: &AppState,
    operator: Operator,
    lot_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Measured, ApiError> {
    let lot = lots::get(&state.db, operator.operator_id, lot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lot"))?;
    let tz = TimeZone::parse(&lot.timezone)
        .map_err(ApiError::internal)?
        .tz();
    let now = state.clock.now();
    // Hours are the lot's local hours: the range widens to whole ones.
    let to = match to {
        Some(to) if local_hour_start(to, tz) == to => to,
        Some(to) => local_hour_start(to, tz) + TimeDelta::hours(1),
        None => local_hour_start(now, tz) + TimeDelta::hours(1),
    };
    let from = local_hour_start(from.unwrap_or(to - TimeDelta::hours(24)), tz);
    let range = HourRange::new(from, to, tz).map_err(|(which, error)| {
        ApiError::validation(vec![FieldError::new(
            format!("$.{which}"),
            error.to_string(),
        )])
    })?;
    // The figures from the replica once it holds every session the primary holds now
    // (docs/operations.md, "Read replica"); whose lot it is was read on the primary above.
    let (spans, spaces) = state
        .reads
        .read_caught_up(|db| async move {
            let spans = crate::store::metrics::spans(&db, lot_id, from, to).await?;
            let (_, spaces, _) = sessions::occupancy(&db, lot_id).await?;
            Ok((spans, spaces))
        })
        .await?;
    let spans: Vec<Span> = spans
        .into_iter()
        .map(|s| Span {
            started_at: s.started_at,
            ended_at: s.ended_at,
            fee_minor: s.fee_minor,
        })
        .collect();
    let currency = Currency::parse(&lot.currency).map_err(ApiError::internal)?;
    Ok(Measured {
        hours: metrics::hours(&range, &spans, now),
        revenue: metrics::revenue(&range, &spans),
        lot,
        currency,
        range,
        spaces,
    })
}

/// The start of the local hour `at` falls in.
pub fn local_hour_start(at: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let local = at.with_timezone(&tz);
    at - TimeDelta::seconds(i64::from(local.minute() * 60 + local.second()))
        - TimeDelta::nanoseconds(i64::from(local.nanosecond()))
}

/// A figure as a JSON number (metrics are ratios, never money).
fn number(value: Decimal) -> serde_json::Number {
    value
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .unwrap_or_else(|| serde_json::Number::from(0))
}

impl Measured {
    /// The JSON answer.
    pub fn view(&self) -> LotMetrics {
        LotMetrics {
            lot_id: self.lot.lot_id,
            timezone: self.lot.timezone.clone(),
            currency: self.lot.currency.clone(),
            from: self.range.from,
            to: self.range.to,
            spaces: self.spaces,
            hours: self
                .hours
                .iter()
                .map(|h| HourView {
                    date: h.date,
                    hour: h.hour,
                    start: h.start,
                    total_sessions: h.total_sessions(),
                    turnover: number(h.turnover()),
                    average_dwell_time: h.average_dwell_time().map(number),
                    occupancy_percent: h.occupancy_percent(self.spaces).map(number),
                })
                .collect(),
            revenue: self
                .revenue
                .iter()
                .map(|d| RevenueView {
                    date: d.date,
                    sessions: d.sessions,
                    total: self.money(d.minor),
                })
                .collect(),
        }
    }

    /// An amount of the lot's currency, with its minor-unit decimals.
    pub fn money(&self, minor: i64) -> String {
        Money::from_minor(minor, self.currency).to_string()
    }

    /// CDS aggregate rows: one per metric and hour; an hour without a defined average dwell
    /// time or occupancy has no row for it.
    pub fn csv(&self) -> String {
        let mut out = String::from("curb_place_type,curb_place_id,metric_type,date,hour,value\n");
        for h in &self.hours {
            let rows = [
                ("total_sessions", Some(Decimal::from(h.total_sessions()))),
                ("turnover", Some(h.turnover())),
                ("average_dwell_time", h.average_dwell_time()),
                ("occupancy_percent", h.occupancy_percent(self.spaces)),
            ];
            for (metric, value) in rows {
                if let Some(value) = value {
                    out.push_str(&format!(
                        "zone,{},{metric},{},{},{}\n",
                        self.lot.lot_id,
                        h.date,
                        h.hour,
                        value.normalize()
                    ));
                }
            }
        }
        out
    }
}
