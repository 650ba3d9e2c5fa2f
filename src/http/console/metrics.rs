//! A lot's metrics in charts: CDS `total_sessions`, `occupancy_percent`,
//! `average_dwell_time` per local hour and revenue per local day, the same figures
//! `GET /v1/operator/metrics` answers (and its CSV, to download).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone as _, Utc};
use chrono_tz::Tz;
use maud::html;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use uuid::Uuid;

use super::chart;
use super::{Console, Section, explain, failure, page, problem_box};
use crate::AppState;
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, FieldError};
use crate::http::operator::metrics::{CDS_CSV, Measured, lot_metrics};
use crate::store::lots;

/// The metrics form: a lot, a first local day and a number of days.
#[derive(Debug, Default, Deserialize)]
pub struct MetricsForm {
    #[serde(default)]
    lot: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    days: String,
}

/// The range the form names: whole local days from `date`'s midnight.
fn range(form: &MetricsForm, tz: Tz, now: DateTime<Utc>) -> Result<(NaiveDate, i64), ApiError> {
    let today = now.with_timezone(&tz).date_naive();
    let date = match form.date.as_str() {
        "" => today,
        text => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::validation(vec![FieldError::new("date", "must be a date (YYYY-MM-DD)")])
        })?,
    };
    let days = match form.days.as_str() {
        "" => 1,
        text => text
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=31).contains(d))
            .ok_or_else(|| {
                ApiError::validation(vec![FieldError::new("days", "must be 1 to 31")])
            })?,
    };
    Ok((date, days))
}

/// Local midnight of `date` (or the first instant of the day when midnight is skipped).
fn midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    (0..24)
        .find_map(|h| {
            tz.from_local_datetime(&date.and_time(NaiveTime::from_hms_opt(h, 0, 0)?))
                .earliest()
        })
        .map_or_else(
            || date.and_time(NaiveTime::MIN).and_utc(),
            |at| at.with_timezone(&Utc),
        )
}

async fn measure(
    state: &AppState,
    console: &Console,
    form: &MetricsForm,
) -> Result<Option<(Measured, NaiveDate, i64)>, ApiError> {
    let all = lots::list(&state.db, console.operator.operator_id).await?;
    let lot = match form.lot.as_str() {
        "" => match all.first() {
            Some(lot) => lot.clone(),
            None => return Ok(None),
        },
        text => Uuid::parse_str(text)
            .ok()
            .and_then(|id| all.iter().find(|l| l.lot_id == id))
            .cloned()
            .ok_or_else(|| ApiError::not_found("lot"))?,
    };
    let tz = TimeZone::parse(&lot.timezone)
        .map_err(ApiError::internal)?
        .tz();
    let (date, days) = range(form, tz, state.clock.now())?;
    let from = midnight(date, tz);
    let to = midnight(date + TimeDelta::days(days), tz);
    let measured = lot_metrics(state, console.operator, lot.lot_id, Some(from), Some(to)).await?;
    Ok(Some((measured, date, days)))
}

/// Basis points of a percentage (two decimals), for the bars' heights.
fn hundredths(value: Option<Decimal>) -> i64 {
    value
        .and_then(|v| (v * Decimal::from(100)).to_i64())
        .unwrap_or(0)
}

fn two_decimals(hundredths: i64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The metrics page.
pub async fn page_handler(
    State(state): State<AppState>,
    console: Console,
    Query(form): Query<MetricsForm>,
) -> Response {
    let lots = match lots::list(&state.db, console.operator.operator_id).await {
        Ok(lots) => lots,
        Err(error) => return failure(console.lang, error.into()),
    };
    let measured = measure(&state, &console, &form).await;
    let t = |k| console.t(k);
    let chosen = match &measured {
        Ok(Some((m, _, _))) => Some(m.lot.lot_id),
        _ => None,
    };
    let (date_value, days_value) = match &measured {
        Ok(Some((_, date, days))) => (date.to_string(), days.to_string()),
        _ => (form.date.clone(), form.days.clone()),
    };
    let body = html! {
        form.card.row method="get" action="/console/metrics" aria-label=(t("c.metrics.choose")) {
            label for="m-lot" { (t("c.lot")) }
            select #m-lot name="lot" {
                @for l in &lots { option value=(l.lot_id) selected[Some(l.lot_id) == chosen] { (l.name) } }
            }
            label for="m-date" { (t("c.metrics.date")) }
            input #m-date type="date" name="date" value=(date_value);
            label for="m-days" { (t("c.metrics.days")) }
            input #m-days type="number" name="days" min="1" max="31" value=(days_value);
            button type="submit" { (t("c.metrics.show")) }
        }
        @match measured {
            Ok(None) => p { (t("c.lots.none")) },
            Err(problem) => {
                @let (_, detail, errors) = explain(console.lang, problem);
                (problem_box(&detail, &errors))
            },
            Ok(Some((m, _, _))) => {
                @let hours = &m.hours;
                @let label_every = (hours.len() / 12).max(1);
                @let hour_label = |h: &crate::domain::metrics::Hour| {
                    if hours.len() > 24 { format!("{} {:02}h", h.date.format("%m-%d"), h.hour) } else { format!("{:02}h", h.hour) }
                };
                p.links {
                    a href={ "/console/metrics.csv?lot=" (m.lot.lot_id) "&date=" (date_value) "&days=" (days_value) } download { (t("c.metrics.csv")) }
                }
                p.help { (t("c.metrics.cds")) " " (t("c.metrics.spaces").replace("{spaces}", &m.spaces.to_string())) }
                section aria-labelledby="m-sessions-h" {
                    h2 #m-sessions-h { "total_sessions" }
                    (chart::bars("sessions-chart", t("c.metrics.sessions"), t("c.metrics.sessions_desc"),
                        &hours.iter().map(|h| (hour_label(h), h.total_sessions())).collect::<Vec<_>>(),
                        label_every, |v| v.to_string()))
                }
                section aria-labelledby="m-occupancy-h" {
                    h2 #m-occupancy-h { "occupancy_percent" }
                    (chart::bars("occupancy-chart", t("c.metrics.occupancy"), t("c.metrics.occupancy_desc"),
                        &hours.iter().map(|h| (hour_label(h), hundredths(h.occupancy_percent(m.spaces)))).collect::<Vec<_>>(),
                        label_every, |v| format!("{} %", two_decimals(v))))
                }
                section aria-labelledby="m-dwell-h" {
                    h2 #m-dwell-h { "average_dwell_time" }
                    (chart::bars("dwell-chart", t("c.metrics.dwell"), t("c.metrics.dwell_desc"),
                        &hours.iter().map(|h| (hour_label(h), hundredths(h.average_dwell_time()))).collect::<Vec<_>>(),
                        label_every, |v| format!("{} min", two_decimals(v))))
                }
                section aria-labelledby="m-revenue-h" {
                    h2 #m-revenue-h { (t("c.metrics.revenue")) }
                    (chart::bars("revenue-chart", t("c.metrics.revenue"), t("c.metrics.revenue_desc"),
                        &m.revenue.iter().map(|d| (d.date.format("%m-%d").to_string(), d.minor)).collect::<Vec<_>>(),
                        (m.revenue.len() / 10).max(1), |v| m.money(v)))
                }
                details {
                    summary { (t("c.metrics.as_table")) }
                    div.scroll {
                    table #metrics-table {
                        thead { tr {
                            th scope="col" { (t("c.metrics.hour")) }
                            th scope="col" { "total_sessions" }
                            th scope="col" { "turnover" }
                            th scope="col" { "average_dwell_time" }
                            th scope="col" { "occupancy_percent" }
                        } }
                        tbody {
                            @for h in hours {
                                tr {
                                    th scope="row" { (h.date) " " (format!("{:02}", h.hour)) ":00" }
                                    td { (h.total_sessions()) }
                                    td { (h.turnover()) }
                                    td { (h.average_dwell_time().map_or("—".to_owned(), |v| v.to_string())) }
                                    td { (h.occupancy_percent(m.spaces).map_or("—".to_owned(), |v| v.to_string())) }
                                }
                            }
                        }
                    }
                    table #revenue-table {
                        thead { tr {
                            th scope="col" { (t("c.metrics.day")) }
                            th scope="col" { (t("c.metrics.stopped")) }
                            th scope="col" { (t("c.metrics.revenue")) " (" (m.lot.currency) ")" }
                        } }
                        tbody {
                            @for d in &m.revenue {
                                tr { th scope="row" { (d.date) } td { (d.sessions) } td { (m.money(d.minor)) } }
                            }
                        }
                    }
                    }
                }
            },
        }
    };
    page(&console, Section::Metrics, t("c.metrics"), body)
}

/// The same figures as CDS aggregate CSV.
pub async fn csv(
    State(state): State<AppState>,
    console: Console,
    Query(form): Query<MetricsForm>,
) -> Response {
    match measure(&state, &console, &form).await {
        Ok(Some((m, date, _))) => (
            [
                (header::CONTENT_TYPE, CDS_CSV.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"metrics-{}-{date}.csv\"",
                        m.lot.lot_id
                    ),
                ),
            ],
            m.csv(),
        )
            .into_response(),
        Ok(None) => failure(console.lang, ApiError::not_found("lot")),
        Err(problem) => failure(console.lang, problem),
    }
}
