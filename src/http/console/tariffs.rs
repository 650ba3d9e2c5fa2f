//! A lot's tariff: the editor (every problem at its JSON path, from the validate endpoint),
//! the fee preview (the draft beside the tariff in force, priced by the engine for every
//! quarter hour of a day's stay), publishing after a confirmation, and the versions with
//! what changed between two of them.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::chart::{self, Series};
use super::{
    Console, Section, csrf_field, explain, failure, form, notice, page, page_with_status, pretty,
    problem_box, see_other, status_of,
};
use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::json_diff::{self, Change};
use crate::domain::money::Money;
use crate::domain::tariff::{self, Tariff};
use crate::domain::timezone::TimeZone;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{IdPath, Json, Query as ApiQuery};
use crate::http::operator::metrics::local_hour_start;
use crate::http::operator::tariff as api_tariff;
use crate::http::operator::validate::{self as api_validate, ValidateQuery};
use crate::http::pages::tariff_words;
use crate::store::lots::{self, Lot};
use crate::store::tariffs::{self, TariffVersion};

/// The preview prices a stay of every quarter hour up to a day.
const PREVIEW_STEP_MINUTES: i64 = 15;
const PREVIEW_MINUTES: i64 = 24 * 60;

/// A starting point for a lot without a tariff.
const STARTER: &str = r#"{
  "currency": "CNY",
  "grace_minutes": 15,
  "rules": [
    { "name": "day", "from": "07:00", "to": "21:00",
      "price": { "every_minutes": 15, "amount": "2.50" } },
    { "name": "night", "from": "21:00", "to": "07:00",
      "price": { "every_minutes": 60, "amount": "1.00" } }
  ]
}"#;

/// `?ok=`.
#[derive(Debug, Deserialize)]
pub struct Done {
    ok: Option<String>,
}

/// What the page knows about the lot and its tariffs.
struct Context {
    lot: Lot,
    tz: Tz,
    current: Option<(TariffVersion, Tariff)>,
    history: Vec<TariffVersion>,
}

async fn context(state: &AppState, console: &Console, lot_id: Uuid) -> Result<Context, Response> {
    let lot = match lots::get(&state.db, console.operator.operator_id, lot_id).await {
        Ok(Some(lot)) => lot,
        Ok(None) => return Err(failure(console.lang, ApiError::not_found("lot"))),
        Err(error) => return Err(failure(console.lang, error.into())),
    };
    let tz = TimeZone::parse(&lot.timezone)
        .map_err(|e| failure(console.lang, ApiError::internal(e)))?
        .tz();
    let current = match tariffs::in_force(&state.db, lot_id, state.clock.now()).await {
        Ok(Some(stored)) => match Tariff::from_json_str(&stored.document) {
            Ok(tariff) => Some((stored, tariff)),
            Err(e) => return Err(failure(console.lang, ApiError::internal(e))),
        },
        Ok(None) => None,
        Err(error) => return Err(failure(console.lang, error.into())),
    };
    let history = tariffs::history(&state.db, lot_id)
        .await
        .map_err(|e| failure(console.lang, e.into()))?;
    Ok(Context {
        lot,
        tz,
        current,
        history,
    })
}

/// The tariff page: the version in force, the editor, the versions.
pub async fn page_handler(
    state: &AppState,
    console: &Console,
    lot_id: Uuid,
    ok: Option<&str>,
) -> Response {
    let ctx = match context(state, console, lot_id).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let document = ctx
        .current
        .as_ref()
        .and_then(|(stored, _)| serde_json::from_str::<Value>(&stored.document).ok())
        .map_or_else(|| STARTER.to_owned(), |v| pretty(&v));
    let arrival = default_arrival(state, ctx.tz);
    let body = html! {
        (notice(console, ok))
        (in_force(console, &ctx))
        (editor(console, &ctx, &document, &arrival, None))
        (versions(console, &ctx))
    };
    page(console, Section::Lots, &title(console, &ctx.lot), body)
}

/// `GET /console/lots/{lot_id}/tariff`.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    Query(done): Query<Done>,
) -> Response {
    page_handler(&state, &console, lot_id, done.ok.as_deref()).await
}

fn title(console: &Console, lot: &Lot) -> String {
    console.t("c.tariff.title").replace("{lot}", &lot.name)
}

/// The lot's local time now, on the hour, as a `datetime-local` value.
fn default_arrival(state: &AppState, tz: Tz) -> String {
    local_hour_start(state.clock.now(), tz)
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

fn in_force(console: &Console, ctx: &Context) -> Markup {
    let t = |k| console.t(k);
    html! {
        section aria-labelledby="current-h" {
            h2 #current-h { (t("c.tariff.in_force")) }
            @match &ctx.current {
                Some((stored, tariff)) => {
                    p { (t("c.tariff.version")) " " strong #current-version { (stored.version) } ", "
                        (t("c.tariff.since")) " " (local(stored.effective_from, ctx.tz)) }
                    ul { @for line in tariff_words::describe(tariff, console.lang) { li { (line) } } }
                }
                None => p #no-tariff { (t("c.tariff.none")) }
            }
        }
    }
}

/// An instant in the lot's local time.
fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The editor, with the problems of the last check when there were any.
fn editor(
    console: &Console,
    ctx: &Context,
    document: &str,
    arrival: &str,
    problems: Option<&Markup>,
) -> Markup {
    let t = |k| console.t(k);
    html! {
        section aria-labelledby="editor-h" {
            h2 #editor-h { (t("c.tariff.editor")) }
            p.help { (t("c.tariff.editor_help")) }
            @if let Some(problems) = problems { (problems) }
            form.card method="post" action={ "/console/lots/" (ctx.lot.lot_id) "/tariff/check" } {
                (csrf_field(console))
                label for="document" { (t("c.tariff.document")) }
                textarea #document name="document" rows="18" spellcheck="false" required
                    aria-invalid=[problems.map(|_| "true")]
                    aria-describedby=[problems.map(|_| "tariff-errors")] { (document) }
                label for="arrival" { (t("c.tariff.arrival")) " (" (ctx.lot.timezone) ")" }
                input #arrival type="datetime-local" name="arrival" value=(arrival) required;
                button type="submit" #check { (t("c.tariff.check")) }
            }
        }
    }
}

fn versions(console: &Console, ctx: &Context) -> Markup {
    let t = |k| console.t(k);
    html! {
        section aria-labelledby="versions-h" {
            h2 #versions-h { (t("c.tariff.versions")) }
            @if ctx.history.is_empty() {
                p { (t("c.tariff.none")) }
            } @else {
                table #versions {
                    thead { tr {
                        th scope="col" { (t("c.tariff.version")) }
                        th scope="col" { (t("c.tariff.effective")) }
                        th scope="col" { (t("c.tariff.changes")) }
                    } }
                    tbody {
                        @for v in &ctx.history {
                            tr {
                                th scope="row" { (v.version) }
                                td { (local(v.effective_from, ctx.tz)) }
                                td {
                                    @if v.version > 1 {
                                        a href={ "/console/lots/" (ctx.lot.lot_id) "/tariff/diff?a=" (v.version - 1) "&b=" (v.version) } {
                                            (t("c.tariff.what_changed")) " " (v.version - 1) " → " (v.version)
                                        }
                                    } @else { (t("c.tariff.first")) }
                                }
                            }
                        }
                    }
                }
                @if ctx.history.len() > 1 {
                    form.card.row method="get" action={ "/console/lots/" (ctx.lot.lot_id) "/tariff/diff" } {
                        label for="diff-a" { (t("c.tariff.compare")) }
                        select #diff-a name="a" {
                            @for v in &ctx.history { option value=(v.version) selected[v.version == ctx.history[1].version] { (v.version) } }
                        }
                        label for="diff-b" { (t("c.tariff.with")) }
                        select #diff-b name="b" {
                            @for v in &ctx.history { option value=(v.version) { (v.version) } }
                        }
                        button type="submit" { (t("c.tariff.compare_button")) }
                    }
                }
            }
        }
    }
}

/// The editor's fields.
#[derive(Debug, Deserialize)]
pub struct CheckForm {
    #[serde(default)]
    document: String,
    #[serde(default)]
    arrival: String,
    confirm: Option<String>,
}

/// Checks the draft with the validate endpoint; shows every problem at its JSON path, or
/// the fee preview and the publish form.
pub async fn check(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: CheckForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    checked(&state, &console, lot_id, &fields, None).await
}

/// The draft checked (and `problem`, a failed publish, shown above it).
async fn checked(
    state: &AppState,
    console: &Console,
    lot_id: Uuid,
    fields: &CheckForm,
    problem: Option<ApiError>,
) -> Response {
    let ctx = match context(state, console, lot_id).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let t = |k| console.t(k);
    let parsed: Result<Value, ApiError> = serde_json::from_str(&fields.document).map_err(|e| {
        ApiError::new(
            crate::http::error::ErrorCode::TariffInvalid,
            format!("{}: {e}", t("c.tariff.not_json")),
        )
        .with(
            "errors",
            serde_json::json!([FieldError::new("$", e.to_string())]),
        )
    });
    let validated = match parsed {
        Ok(document) => api_validate::validate(
            State(state.clone()),
            console.operator,
            ApiQuery(ValidateQuery { lot: Some(lot_id) }),
            Json(document.clone()),
        )
        .await
        .map(|axum::Json(valid)| (document, valid.tariff)),
        Err(e) => Err(e),
    };
    let arrival = parse_arrival(&fields.arrival, ctx.tz)
        .unwrap_or_else(|| local_hour_start(state.clock.now(), ctx.tz));
    let arrival_text = arrival
        .with_timezone(&ctx.tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let title = title(console, &ctx.lot);
    match validated {
        Err(problem) => {
            let (status, detail, errors) = explain(console.lang, problem);
            let document: Option<Value> = serde_json::from_str(&fields.document).ok();
            let problems = html! {
                div #tariff-errors {
                    (problem_box(&detail, &errors))
                    @if let Some(document) = &document { (annotated(console, document, &errors)) }
                }
            };
            let body = html! {
                (editor(console, &ctx, &fields.document, &arrival_text, Some(&problems)))
                (in_force(console, &ctx))
            };
            page_with_status(console, status, Section::Lots, &title, body)
        }
        Ok((document, _canonical)) => {
            let draft = match Tariff::from_json(&document) {
                Ok(draft) => draft,
                Err(e) => return failure(console.lang, ApiError::internal(e)),
            };
            let status = problem.as_ref().map_or(StatusCode::OK, status_of);
            let problem = problem.map(|p| explain(console.lang, p));
            let next = ctx.history.first().map_or(1, |v| v.version + 1);
            let body = html! {
                (preview(console, &ctx, &draft, arrival))
                section aria-labelledby="publish-h" {
                    h2 #publish-h { (t("c.tariff.publish")) }
                    @if let Some((_, detail, errors)) = &problem { (problem_box(detail, errors)) }
                    form.card method="post" action={ "/console/lots/" (lot_id) "/tariff/publish" } {
                        (csrf_field(console))
                        input type="hidden" name="document" value=(fields.document);
                        input type="hidden" name="arrival" value=(arrival_text);
                        div.check {
                            input #confirm type="checkbox" name="confirm" value="yes" required;
                            label for="confirm" { (t("c.tariff.confirm").replace("{version}", &next.to_string())) }
                        }
                        button type="submit" #publish { (t("c.tariff.publish_button")) }
                    }
                }
                (editor(console, &ctx, &fields.document, &arrival_text, None))
            };
            page_with_status(console, status, Section::Lots, &title, body)
        }
    }
}

/// A `datetime-local` value read in the lot's time zone (the earlier of a repeated hour).
fn parse_arrival(value: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// The fee of a stay of every quarter hour from 0 to 24 hours from `arrival`.
fn fees(tariff: &Tariff, tz: Tz, arrival: DateTime<Utc>) -> Vec<(i64, Option<i64>)> {
    (0..=PREVIEW_MINUTES / PREVIEW_STEP_MINUTES)
        .map(|k| {
            let minutes = k * PREVIEW_STEP_MINUTES;
            let end = arrival + chrono::TimeDelta::minutes(minutes);
            let fee = tariff::price(tariff, tz, arrival, end)
                .ok()
                .and_then(|fee| fee.total.to_minor());
            (minutes, fee)
        })
        .collect()
}

/// The preview: the chart and, for people who read numbers, the hourly figures.
fn preview(console: &Console, ctx: &Context, draft: &Tariff, arrival: DateTime<Utc>) -> Markup {
    let t = |k| console.t(k);
    let currency = draft.currency();
    let draft_fees = fees(draft, ctx.tz, arrival);
    let current_fees = ctx
        .current
        .as_ref()
        .map(|(_, tariff)| fees(tariff, ctx.tz, arrival));
    let mut series = vec![Series {
        name: t("c.tariff.draft"),
        class: "draft",
        points: draft_fees.clone(),
    }];
    if let Some(points) = &current_fees {
        series.push(Series {
            name: t("c.tariff.current"),
            class: "current",
            points: points.clone(),
        });
    }
    let money = |minor: i64| amount(minor, currency);
    let max_stay = draft.max_stay_minutes().map(i64::from);
    let marker_label = t("c.tariff.max_stay");
    let description = t("c.tariff.chart_desc").replace("{arrival}", &local(arrival, ctx.tz));
    html! {
        section aria-labelledby="preview-h" #preview {
            h2 #preview-h { (t("c.tariff.preview")) }
            p { (description) }
            (chart::steps(
                "fee-chart",
                t("c.tariff.preview"),
                &description,
                &series,
                PREVIEW_MINUTES,
                240,
                |m| format!("{}h", m / 60),
                money,
                max_stay.filter(|m| *m < PREVIEW_MINUTES).map(|m| (m, marker_label)),
            ))
            details {
                summary { (t("c.tariff.as_table")) }
                table #fee-table {
                    thead { tr {
                        th scope="col" { (t("c.tariff.stay")) }
                        th scope="col" { (t("c.tariff.draft")) }
                        @if current_fees.is_some() { th scope="col" { (t("c.tariff.current")) } }
                    } }
                    tbody {
                        @for (i, (minutes, fee)) in draft_fees.iter().enumerate() {
                            @if minutes % 60 == 0 {
                                tr {
                                    th scope="row" { (minutes / 60) " h" }
                                    td { (fee.map(money).unwrap_or_else(|| "—".into())) }
                                    @if let Some(current) = &current_fees {
                                        td { (current[i].1.map(money).unwrap_or_else(|| "—".into())) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn amount(minor: i64, currency: Currency) -> String {
    tariff_words::money(&Money::from_minor(minor, currency))
}

/// The document as its leaves, each at its JSON path, with the problems at theirs (a
/// problem about a member that is missing gets its own row).
fn annotated(console: &Console, document: &Value, errors: &[FieldError]) -> Markup {
    let leaves = json_diff::leaves(document);
    let within = |leaf: &str, path: &str| {
        leaf == path
            || leaf
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    let placed: Vec<bool> = errors
        .iter()
        .map(|e| leaves.iter().any(|(p, _)| within(p, &e.path)))
        .collect();
    html! {
        table.annotated #annotated {
            caption { (console.t("c.tariff.annotated")) }
            thead { tr {
                th scope="col" { (console.t("c.tariff.path")) }
                th scope="col" { (console.t("c.tariff.value")) }
                th scope="col" { (console.t("c.tariff.problem")) }
            } }
            tbody {
                @for (path, value) in &leaves {
                    @let here: Vec<&FieldError> = errors.iter().filter(|e| within(path, &e.path)).collect();
                    tr class=[(!here.is_empty()).then_some("bad")] {
                        th scope="row" { code { (path) } }
                        td { code { (value) } }
                        td { @for e in &here { span.problem data-path=(e.path) { (e.message) } " " } }
                    }
                }
                @for (e, _) in errors.iter().zip(&placed).filter(|(_, placed)| !**placed) {
                    tr.bad {
                        th scope="row" { code { (e.path) } }
                        td { (console.t("c.tariff.missing")) }
                        td { span.problem data-path=(e.path) { (e.message) } }
                    }
                }
            }
        }
    }
}

/// Publishes the draft through `PUT /v1/operator/lots/{lot_id}/tariff` once the operator
/// has confirmed.
pub async fn publish(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: CheckForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    if fields.confirm.as_deref() != Some("yes") {
        let problem = ApiError::validation(vec![FieldError::new(
            "confirm",
            console.t("c.tariff.confirm_missing"),
        )]);
        return checked(&state, &console, lot_id, &fields, Some(problem)).await;
    }
    let document: Value = match serde_json::from_str(&fields.document) {
        Ok(document) => document,
        Err(_) => return checked(&state, &console, lot_id, &fields, None).await,
    };
    match api_tariff::put_tariff(
        State(state.clone()),
        console.operator,
        IdPath(lot_id),
        Json(document),
    )
    .await
    {
        Ok(_) => see_other(&format!("/console/lots/{lot_id}/tariff?ok=published")),
        Err(problem) => checked(&state, &console, lot_id, &fields, Some(problem)).await,
    }
}

/// Two versions to compare.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    a: Option<i32>,
    b: Option<i32>,
}

/// What changed between two versions, path by path.
pub async fn diff(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    Query(query): Query<DiffQuery>,
) -> Response {
    let ctx = match context(&state, &console, lot_id).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let find = |v: Option<i32>| {
        v.and_then(|v| ctx.history.iter().find(|h| h.version == v))
            .and_then(|h| Some((h.version, serde_json::from_str::<Value>(&h.document).ok()?)))
    };
    let (Some((a, old)), Some((b, new))) = (find(query.a), find(query.b)) else {
        return failure(console.lang, ApiError::not_found("tariff version"));
    };
    let changes = json_diff::diff(&old, &new);
    let t = |k| console.t(k);
    let title = t("c.tariff.diff_title")
        .replace("{a}", &a.to_string())
        .replace("{b}", &b.to_string());
    let body = html! {
        p { a href={ "/console/lots/" (lot_id) "/tariff" } { (t("c.tariff.back")) } }
        @if changes.is_empty() {
            p #no-changes { (t("c.tariff.same")) }
        } @else {
            table #diff {
                thead { tr {
                    th scope="col" { (t("c.tariff.path")) }
                    th scope="col" { (t("c.tariff.change")) }
                    th scope="col" { (t("c.tariff.version")) " " (a) }
                    th scope="col" { (t("c.tariff.version")) " " (b) }
                } }
                tbody {
                    @for change in &changes {
                        tr {
                            th scope="row" { code { (change.path()) } }
                            @match change {
                                Change::Added { new, .. } => { td { (t("c.diff.added")) } td { "—" } td { code { (new) } } }
                                Change::Removed { old, .. } => { td { (t("c.diff.removed")) } td { code { (old) } } td { "—" } }
                                Change::Changed { old, new, .. } => { td { (t("c.diff.changed")) } td { code { (old) } } td { code { (new) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&console, Section::Lots, &title, body)
}
