//! Sessions in the operator's lots: filtered by lot, status and time, a page at a time
//! (a keyset cursor), stopped with a reason through the operator API's stop.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{Console, Section, csrf_field, failure, form, notice, page, see_other};
use crate::AppState;
use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::session::{EndedBy, SessionStatus};
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{IdPath, Json};
use crate::http::operator::refunds;
use crate::http::operator::sessions::{self as api_sessions, OperatorStop};
use crate::store::lots::{self, Lot};
use crate::store::session_pages::{self, After};
use crate::store::sessions::{Session, SessionFilter};
use crate::store::spaces;

/// Sessions on one page.
const PAGE: i64 = 50;

/// The filter form, as the browser sends it (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    lot: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    ok: Option<String>,
}

impl Filters {
    /// The query string of these filters (no cursor), to link pages and come back.
    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("lot", &self.lot)
            .append_pair("status", &self.status)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

/// The cursor of the page after `session`: its start and id, opaque to the browser.
fn cursor_of(session: &Session) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        session
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        session.session_id
    ))
}

fn parse_cursor(text: &str) -> Option<After> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('|')?;
    Some(After {
        started_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        session_id: Uuid::parse_str(id).ok()?,
    })
}

/// A `datetime-local` value in `tz`.
fn parse_local(value: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

fn tz_of(lot: &Lot) -> Tz {
    TimeZone::parse(&lot.timezone).map_or(chrono_tz::UTC, |tz| tz.tz())
}

/// The sessions page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(filters): Query<Filters>,
) -> Response {
    let lots = match lots::list(&state.db, console.operator.operator_id).await {
        Ok(lots) => lots,
        Err(error) => return failure(console.lang, error.into()),
    };
    let lot = match filters.lot.as_str() {
        "" => None,
        text => match Uuid::parse_str(text)
            .ok()
            .and_then(|id| lots.iter().find(|l| l.lot_id == id))
        {
            Some(lot) => Some(lot),
            None => return failure(console.lang, ApiError::not_found("lot")),
        },
    };
    // Times are the chosen lot's local time, or UTC across lots.
    let tz = lot.map_or(chrono_tz::UTC, tz_of);
    let filter = SessionFilter {
        lot_id: lot.map(|l| l.lot_id),
        from: parse_local(&filters.from, tz),
        to: parse_local(&filters.to, tz),
        status: match filters.status.as_str() {
            "active" => Some(SessionStatus::Active),
            "stopped" => Some(SessionStatus::Stopped),
            _ => None,
        },
    };
    let after = parse_cursor(&filters.cursor);
    let mut found = match session_pages::page(
        &state.db,
        console.operator.operator_id,
        &filter,
        after,
        PAGE + 1,
    )
    .await
    {
        Ok(found) => found,
        Err(error) => return failure(console.lang, error.into()),
    };
    let more = found.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    found.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
    let mut codes: HashMap<Uuid, String> = HashMap::new();
    let mut lot_ids: Vec<Uuid> = found.iter().map(|s| s.lot_id).collect();
    lot_ids.sort();
    lot_ids.dedup();
    for lot_id in lot_ids {
        match spaces::list(&state.db, lot_id).await {
            Ok(list) => codes.extend(list.into_iter().map(|s| (s.space_id, s.code))),
            Err(error) => return failure(console.lang, error.into()),
        }
    }
    let lot_of = |id: Uuid| lots.iter().find(|l| l.lot_id == id);
    let t = |k| console.t(k);
    let back = filters.query();
    let body = html! {
        (notice(&console, filters.ok.as_deref()))
        form.card.row method="get" action="/console/sessions" aria-label=(t("c.sessions.filters")) {
            label for="f-lot" { (t("c.lot")) }
            select #f-lot name="lot" {
                option value="" { (t("c.all_lots")) }
                @for l in &lots { option value=(l.lot_id) selected[Some(l.lot_id) == filter.lot_id] { (l.name) } }
            }
            label for="f-status" { (t("c.space.status")) }
            select #f-status name="status" {
                option value="" { (t("c.sessions.any")) }
                option value="active" selected[filters.status == "active"] { (t("c.sessions.active")) }
                option value="stopped" selected[filters.status == "stopped"] { (t("c.sessions.stopped")) }
            }
            label for="f-from" { (t("c.sessions.from")) }
            input #f-from type="datetime-local" name="from" value=(filters.from);
            label for="f-to" { (t("c.sessions.to")) }
            input #f-to type="datetime-local" name="to" value=(filters.to);
            button type="submit" { (t("c.sessions.filter")) }
        }
        p.help { (if lot.is_some() { t("c.sessions.local_time") } else { t("c.sessions.utc") }) }
        @if found.is_empty() {
            p #no-sessions { (t("c.sessions.none")) }
        } @else {
            div.scroll {
            table #sessions {
                thead { tr {
                    th scope="col" { (t("c.sessions.started")) }
                    th scope="col" { (t("c.lot")) }
                    th scope="col" { (t("c.space.code")) }
                    th scope="col" { (t("c.sessions.plate")) }
                    th scope="col" { (t("c.space.status")) }
                    th scope="col" { (t("c.sessions.ended")) }
                    th scope="col" { (t("c.sessions.fee")) }
                    th scope="col" { (t("c.actions")) }
                } }
                tbody {
                    @for s in &found {
                        @let lot = lot_of(s.lot_id);
                        @let tz = lot.map_or(chrono_tz::UTC, tz_of);
                        tr data-session=(s.session_id) {
                            td { (local(s.started_at, tz)) }
                            td { (lot.map_or("", |l| l.name.as_str())) }
                            td { (codes.get(&s.space_id).map_or("", String::as_str)) }
                            td { (s.plate.as_deref().unwrap_or("—")) }
                            td { (status_text(&console, s)) }
                            td {
                                @if let Some(ended) = s.ended_at { (local(ended, tz)) }
                                @if let Some(reason) = &s.stop_reason { br; span.reason { (reason) } }
                            }
                            td { (fee(s)) }
                            td.actions {
                                @if s.is_active() {
                                    (stop_form(&console, s, &back))
                                } @else {
                                    (refund_action(&console, s))
                                }
                            }
                        }
                    }
                }
            }
            }
        }
        nav.pages aria-label=(t("c.sessions.pages")) {
            @if after.is_some() { a href={ "/console/sessions?" (back) } { (t("c.sessions.first")) } }
            @if more {
                @if let Some(last) = found.last() {
                    a #next-page href={ "/console/sessions?" (back) "&cursor=" (cursor_of(last)) } { (t("c.sessions.next")) }
                }
            }
        }
    };
    page(&console, Section::Sessions, t("c.sessions"), body)
}

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn fee(session: &Session) -> String {
    match (
        session.fee_minor,
        crate::domain::currency::Currency::parse(&session.currency),
    ) {
        (Some(minor), Ok(currency)) => format!(
            "{} {}",
            crate::domain::money::Money::from_minor(minor, currency),
            session.currency
        ),
        _ => "—".to_owned(),
    }
}

fn status_text(console: &Console, session: &Session) -> &'static str {
    match (session.status, session.ended_by) {
        (SessionStatus::Active, _) => console.t("c.sessions.active"),
        (_, Some(EndedBy::Operator)) => console.t("c.ended.operator"),
        (_, Some(EndedBy::Planned)) => console.t("c.ended.planned"),
        (_, Some(EndedBy::MaxStay)) => console.t("c.ended.max_stay"),
        _ => console.t("c.ended.driver"),
    }
}

fn stop_form(console: &Console, session: &Session, back: &str) -> Markup {
    let id = session.session_id;
    html! {
        form.stop method="post" action={ "/console/sessions/" (id) "/stop" } {
            (csrf_field(console))
            input type="hidden" name="back" value=(back);
            label for={ "reason-" (id) } { (console.t("c.sessions.reason")) }
            input id={ "reason-" (id) } name="reason" required maxlength="500";
            button type="submit" { (console.t("c.sessions.stop")) }
        }
    }
}

/// A stopped session's refund form: an amount and a reason, and a key drawn for this form
/// so that sending it twice refunds once.
fn refund_action(console: &Console, session: &Session) -> Markup {
    let id = session.session_id;
    let key = Uuid::new_v4();
    html! {
        form.refund method="post" action={ "/console/sessions/" (id) "/refund" } {
            (csrf_field(console))
            input type="hidden" name="key" value=(key);
            label for={ "amount-" (id) } { (console.t("c.refund.amount")) }
            input id={ "amount-" (id) } name="amount" required inputmode="decimal"
                size="8" pattern="[0-9]+([.][0-9]+)?";
            label for={ "refund-reason-" (id) } { (console.t("c.sessions.reason")) }
            input id={ "refund-reason-" (id) } name="reason" required maxlength="500";
            button type="submit" { (console.t("c.refund")) }
        }
    }
}

/// The refund form's fields.
#[derive(Debug, Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

/// Refunds through the API's own path (`POST /v1/operator/sessions/{session_id}/refunds`),
/// keyed by the form's key.
pub async fn refund(
    State(state): State<AppState>,
    console: Console,
    IdPath(session_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: RefundForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let key = match IdempotencyKey::parse(&fields.key) {
        Ok(key) => key,
        Err(e) => {
            return failure(
                console.lang,
                ApiError::new(ErrorCode::IdempotencyKeyInvalid, e.to_string()),
            );
        }
    };
    let asked = serde_json::json!({"amount": fields.amount.trim(), "reason": fields.reason});
    match refunds::refund_once(&state, &console.operator, session_id, &key, &asked).await {
        Ok(_) => see_other("/console/sessions?ok=refunded"),
        Err(problem) => failure(console.lang, problem),
    }
}

/// The stop form's fields.
#[derive(Debug, Deserialize)]
pub struct StopForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// Stops a session with a reason through `POST /v1/operator/sessions/{session_id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    console: Console,
    IdPath(session_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: StopForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    match api_sessions::stop_session(
        State(state),
        console.operator,
        IdPath(session_id),
        Json(OperatorStop {
            reason: fields.reason,
        }),
    )
    .await
    {
        Ok(_) => {
            // Back to the same filters; only a query string, never another place.
            let back: String = form_urlencoded::parse(fields.back.as_bytes())
                .filter(|(k, _)| matches!(k.as_ref(), "lot" | "status" | "from" | "to"))
                .fold(
                    form_urlencoded::Serializer::new(String::new()),
                    |mut s, (k, v)| {
                        s.append_pair(&k, &v);
                        s
                    },
                )
                .finish();
            see_other(&format!("/console/sessions?{back}&ok=stopped"))
        }
        Err(problem) => failure(console.lang, problem),
    }
}
