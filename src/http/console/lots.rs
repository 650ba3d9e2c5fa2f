//! Lots and their spaces: create and edit lots, add spaces by ranges, take spaces out of
//! service, replace a code (after a confirmation), the codes' images, the printable sheet,
//! live occupancy. Every change goes through the operator API's handler.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Console, Section, csrf_field, explain, failure, form, notice, page, page_with_status,
    problem_box, see_other, status_of,
};
use crate::AppState;
use crate::domain::space::SpaceStatus;
use crate::domain::space_range;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{IdPath, Json};
use crate::http::operator::spaces as api_spaces;
use crate::http::operator::{lots as api_lots, qr as api_qr, sessions as api_sessions};
use crate::store::{lots, spaces};

/// `?ok=` after a change.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    ok: Option<String>,
}

/// The fields of the new-lot form, kept to show them again after a problem.
#[derive(Debug, Default, Deserialize)]
pub struct LotForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    address: String,
    plate_required: Option<String>,
}

/// The operator's lots and the form for a new one.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(done): Query<Done>,
) -> Response {
    let draft = LotForm {
        timezone: "Asia/Shanghai".into(),
        currency: "CNY".into(),
        ..LotForm::default()
    };
    lots_page(&state, &console, &draft, done.ok.as_deref(), None).await
}

async fn lots_page(
    state: &AppState,
    console: &Console,
    draft: &LotForm,
    ok: Option<&str>,
    problem: Option<ApiError>,
) -> Response {
    let all = match lots::list(&state.db, console.operator.operator_id).await {
        Ok(all) => all,
        Err(error) => return failure(console.lang, error.into()),
    };
    let status = problem.as_ref().map_or(StatusCode::OK, status_of);
    let problem = problem.map(|p| explain(console.lang, p));
    let t = |k| console.t(k);
    let body = html! {
        (notice(console, ok))
        @if all.is_empty() {
            p { (t("c.lots.none")) }
        } @else {
            table {
                caption { (t("c.lots.yours")) }
                thead { tr {
                    th scope="col" { (t("c.lot.name")) }
                    th scope="col" { (t("c.lot.timezone")) }
                    th scope="col" { (t("c.lot.currency")) }
                    th scope="col" { (t("c.lot.plate_required")) }
                } }
                tbody {
                    @for lot in &all {
                        tr {
                            td { a href={ "/console/lots/" (lot.lot_id) } { (lot.name) } }
                            td { (lot.timezone) }
                            td { (lot.currency) }
                            td { (if lot.plate_required { t("c.yes") } else { t("c.no") }) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="new-lot-h" {
            h2 #new-lot-h { (t("c.lots.new")) }
            @if let Some((_, detail, errors)) = &problem { (problem_box(detail, errors)) }
            form.card method="post" action="/console/lots" {
                (csrf_field(console))
                label for="lot-name" { (t("c.lot.name")) }
                input #lot-name name="name" required maxlength="120" value=(draft.name);
                label for="lot-tz" { (t("c.lot.timezone")) }
                input #lot-tz name="timezone" required value=(draft.timezone) aria-describedby="lot-tz-help";
                p.help #lot-tz-help { (t("c.lot.timezone_help")) }
                label for="lot-currency" { (t("c.lot.currency")) }
                input #lot-currency name="currency" required maxlength="3" value=(draft.currency);
                label for="lot-address" { (t("c.lot.address")) }
                input #lot-address name="address" maxlength="300" value=(draft.address);
                div.check {
                    input #lot-plate type="checkbox" name="plate_required" value="on" checked[draft.plate_required.is_some()];
                    label for="lot-plate" { (t("c.lot.plate_required_long")) }
                }
                button type="submit" #create-lot { (t("c.lots.create")) }
            }
        }
    };
    page_with_status(console, status, Section::Lots, t("c.lots"), body)
}

/// Creates a lot through `POST /v1/operator/lots`.
pub async fn create(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let draft: LotForm = match form(&console, &body) {
        Ok(draft) => draft,
        Err(response) => return response,
    };
    let request = api_lots::CreateLot {
        name: draft.name.trim().to_owned(),
        timezone: draft.timezone.trim().to_owned(),
        currency: draft.currency.trim().to_ascii_uppercase(),
        address: Some(draft.address.trim().to_owned()).filter(|a| !a.is_empty()),
        plate_required: draft.plate_required.is_some(),
    };
    match api_lots::create_lot(State(state.clone()), console.operator, Json(request)).await {
        Ok(created) => {
            let created = created.into_response();
            let location = created
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .unwrap_or_default()
                .to_owned();
            see_other(&format!("/console/lots/{location}?ok=created"))
        }
        Err(problem) => lots_page(&state, &console, &draft, None, Some(problem)).await,
    }
}

/// One lot: occupancy, its settings, its spaces.
pub async fn page_of(
    state: &AppState,
    console: &Console,
    lot_id: Uuid,
    ok: Option<&str>,
    problem: Option<(&str, ApiError)>,
    codes: &str,
) -> Response {
    let lot = match lots::get(&state.db, console.operator.operator_id, lot_id).await {
        Ok(Some(lot)) => lot,
        Ok(None) => return failure(console.lang, ApiError::not_found("lot")),
        Err(error) => return failure(console.lang, error.into()),
    };
    let all = match spaces::list(&state.db, lot_id).await {
        Ok(all) => all,
        Err(error) => return failure(console.lang, error.into()),
    };
    let occupancy =
        match api_sessions::occupancy(State(state.clone()), console.operator, IdPath(lot_id)).await
        {
            Ok(axum::Json(o)) => o,
            Err(error) => return failure(console.lang, error),
        };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, |(_, p)| status_of(p));
    let problem = problem.map(|(form, p)| (form, explain(console.lang, p)));
    let problem_for = |which: &str| -> Markup {
        html! {
            @if let Some((form, (_, detail, errors))) = &problem {
                @if *form == which { (problem_box(detail, errors)) }
            }
        }
    };
    let t = |k| console.t(k);
    let body = html! {
        (notice(console, ok))
        p.links {
            a href={ "/console/lots/" (lot_id) "/tariff" } #tariff-link { (t("c.tariff")) }
            a href={ "/console/sessions?lot=" (lot_id) } { (t("c.sessions")) }
            a href={ "/console/metrics?lot=" (lot_id) } { (t("c.metrics")) }
            a href={ "/console/lots/" (lot_id) "/qr-sheet.pdf" } download { (t("c.lot.sheet")) }
        }
        section aria-labelledby="occ-h" data-poll={ "/console/lots/" (lot_id) "/occupancy" } {
            h2 #occ-h { (t("c.occ.title")) }
            dl.occupancy aria-live="polite" {
                div { dt { (t("c.occ.spaces")) } dd #occ-spaces { (occupancy.spaces) } }
                div { dt { (t("c.occ.in_service")) } dd #occ-in_service { (occupancy.in_service) } }
                div { dt { (t("c.occ.occupied")) } dd #occ-occupied { (occupancy.occupied) } }
                div { dt { (t("c.occ.free")) } dd #occ-free { (occupancy.free) } }
            }
            p.help { (t("c.occ.live")) " " span #occ-updated {} }
        }
        section aria-labelledby="edit-h" {
            h2 #edit-h { (t("c.lot.edit")) }
            (problem_for("edit"))
            form.card method="post" action={ "/console/lots/" (lot_id) } {
                (csrf_field(console))
                label for="edit-name" { (t("c.lot.name")) }
                input #edit-name name="name" required maxlength="120" value=(lot.name);
                label for="edit-address" { (t("c.lot.address")) }
                input #edit-address name="address" maxlength="300" value=(lot.address.clone().unwrap_or_default());
                div.check {
                    input #edit-plate type="checkbox" name="plate_required" value="on" checked[lot.plate_required];
                    label for="edit-plate" { (t("c.lot.plate_required_long")) }
                }
                p.help { (t("c.lot.fixed")) " " (lot.timezone) ", " (lot.currency) }
                button type="submit" { (t("c.save")) }
            }
        }
        section aria-labelledby="add-h" {
            h2 #add-h { (t("c.spaces.add")) }
            (problem_for("spaces"))
            form.card method="post" action={ "/console/lots/" (lot_id) "/spaces" } {
                (csrf_field(console))
                label for="codes" { (t("c.spaces.codes")) }
                input #codes name="codes" required value=(codes) aria-describedby="codes-help" placeholder="A-001..A-120";
                p.help #codes-help { (t("c.spaces.codes_help")) }
                button type="submit" #add-spaces { (t("c.spaces.add_button")) }
            }
        }
        section aria-labelledby="spaces-h" {
            h2 #spaces-h { (t("c.spaces.title")) " (" (all.len()) ")" }
            @if all.is_empty() {
                p { (t("c.spaces.none")) }
            } @else {
                // One form carries the CSRF token for every row's status button.
                form #space-actions method="post" action={ "/console/lots/" (lot_id) } { (csrf_field(console)) }
                div.scroll {
                table #spaces {
                    thead { tr {
                        th scope="col" { (t("c.space.code")) }
                        th scope="col" { (t("c.space.status")) }
                        th scope="col" { (t("c.space.version")) }
                        th scope="col" { (t("c.space.code_image")) }
                        th scope="col" { (t("c.actions")) }
                    } }
                    tbody {
                        @for space in &all {
                            @let active = space.status == SpaceStatus::Active;
                            tr {
                                th scope="row" { (space.code) }
                                td { (if active { t("c.space.active") } else { t("c.space.out") }) }
                                td { (space.qr_version) }
                                td {
                                    a href={ "/console/spaces/" (space.space_id) "/qr.png" } download
                                        aria-label={ (space.code) " PNG" } { "PNG" }
                                    " "
                                    a href={ "/console/spaces/" (space.space_id) "/qr.svg" } download
                                        aria-label={ (space.code) " SVG" } { "SVG" }
                                }
                                td.actions {
                                    button type="submit" form="space-actions"
                                        formaction={ "/console/spaces/" (space.space_id) "/status" }
                                        name="status" value=(if active { "out_of_service" } else { "active" })
                                        aria-label={ (if active { t("c.space.take_out") } else { t("c.space.bring_back") }) " " (space.code) } {
                                        (if active { t("c.space.take_out") } else { t("c.space.bring_back") })
                                    }
                                    a href={ "/console/spaces/" (space.space_id) "/rotate" }
                                        aria-label={ (t("c.space.rotate")) " " (space.code) } { (t("c.space.rotate")) }
                                }
                            }
                        }
                    }
                }
                }
            }
        }
    };
    page_with_status(console, status, Section::Lots, &lot.name, body)
}

/// A lot's page.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    Query(done): Query<Done>,
) -> Response {
    page_of(&state, &console, lot_id, done.ok.as_deref(), None, "").await
}

/// Live occupancy for the page's script: `{spaces, in_service, occupied, free}`.
pub async fn occupancy(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
) -> Response {
    api_sessions::occupancy(State(state), console.operator, IdPath(lot_id))
        .await
        .into_response()
}

/// The lot-edit form's fields.
#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    plate_required: Option<String>,
}

/// Changes a lot through `PATCH /v1/operator/lots/{lot_id}`.
pub async fn edit(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: EditForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let address = fields.address.trim();
    let request = api_lots::UpdateLot {
        name: Some(fields.name.trim().to_owned()),
        address: Some((!address.is_empty()).then(|| address.to_owned())),
        plate_required: Some(fields.plate_required.is_some()),
    };
    match api_lots::update_lot(
        State(state.clone()),
        console.operator,
        IdPath(lot_id),
        Json(request),
    )
    .await
    {
        Ok(_) => see_other(&format!("/console/lots/{lot_id}?ok=saved")),
        Err(problem) => page_of(&state, &console, lot_id, None, Some(("edit", problem)), "").await,
    }
}

/// The add-spaces form.
#[derive(Debug, Deserialize)]
pub struct SpacesForm {
    #[serde(default)]
    codes: String,
}

/// Adds the spaces a list of ranges names, all or none, through
/// `POST /v1/operator/lots/{lot_id}/spaces`.
pub async fn add_spaces(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: SpacesForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let outcome = match space_range::expand(&fields.codes) {
        Ok(codes) => api_spaces::create_spaces(
            State(state.clone()),
            console.operator,
            IdPath(lot_id),
            Json(api_spaces::CreateSpaces { codes }),
        )
        .await
        .map(|_| ()),
        Err(error) => Err(ApiError::validation(vec![FieldError::new(
            "codes",
            error.to_string(),
        )])),
    };
    match outcome {
        Ok(()) => see_other(&format!("/console/lots/{lot_id}?ok=spaces_added")),
        Err(problem) => {
            page_of(
                &state,
                &console,
                lot_id,
                None,
                Some(("spaces", problem)),
                &fields.codes,
            )
            .await
        }
    }
}

/// The status form.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    status: SpaceStatus,
}

/// Takes a space out of service or back, through `PATCH /v1/operator/spaces/{space_id}`.
pub async fn set_status(
    State(state): State<AppState>,
    console: Console,
    IdPath(space_id): IdPath,
    body: Bytes,
) -> Response {
    let fields: StatusForm = match form(&console, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    match api_spaces::update_space(
        State(state),
        console.operator,
        IdPath(space_id),
        Json(api_spaces::UpdateSpace {
            status: fields.status,
        }),
    )
    .await
    {
        Ok(axum::Json(space)) => see_other(&format!(
            "/console/lots/{}?ok=status_set#spaces",
            space.lot_id
        )),
        Err(problem) => failure(console.lang, problem),
    }
}

/// The confirmation before a code is replaced: the printed sticker stops working.
pub async fn rotate_page(
    State(state): State<AppState>,
    console: Console,
    IdPath(space_id): IdPath,
) -> Response {
    let space = match spaces::get(&state.db, console.operator.operator_id, space_id).await {
        Ok(Some(space)) => space,
        Ok(None) => return failure(console.lang, ApiError::not_found("space")),
        Err(error) => return failure(console.lang, error.into()),
    };
    let t = |k| console.t(k);
    let title = t("c.rotate.title").replace("{space}", &space.code);
    let body = html! {
        p.alert role="alert" #rotate-warning { (t("c.rotate.warning").replace("{space}", &space.code)) }
        p { (t("c.rotate.then")) }
        form.card method="post" action={ "/console/spaces/" (space_id) "/rotate" } {
            (csrf_field(&console))
            button.danger type="submit" #rotate-confirm { (t("c.rotate.confirm")) }
            " "
            a href={ "/console/lots/" (space.lot_id) } { (t("c.cancel")) }
        }
    };
    page(&console, Section::Lots, &title, body)
}

/// Replaces a space's code through `POST /v1/operator/spaces/{space_id}/qr/rotate`.
pub async fn rotate(
    State(state): State<AppState>,
    console: Console,
    IdPath(space_id): IdPath,
    body: Bytes,
) -> Response {
    if let Err(response) = form::<serde::de::IgnoredAny>(&console, &body) {
        return response;
    }
    let lot_id = match spaces::get(&state.db, console.operator.operator_id, space_id).await {
        Ok(Some(space)) => space.lot_id,
        Ok(None) => return failure(console.lang, ApiError::not_found("space")),
        Err(error) => return failure(console.lang, error.into()),
    };
    match api_qr::rotate(State(state), console.operator, IdPath(space_id)).await {
        Ok(_) => see_other(&format!("/console/lots/{lot_id}?ok=rotated#spaces")),
        Err(problem) => failure(console.lang, problem),
    }
}

/// A space's code as PNG, through the operator API's handler.
pub async fn png(
    State(state): State<AppState>,
    console: Console,
    IdPath(space_id): IdPath,
) -> Response {
    match api_qr::png(State(state), console.operator, IdPath(space_id)).await {
        Ok(image) => image.into_response(),
        Err(problem) => failure(console.lang, problem),
    }
}

/// A space's code as SVG.
pub async fn svg(
    State(state): State<AppState>,
    console: Console,
    IdPath(space_id): IdPath,
) -> Response {
    match api_qr::svg(State(state), console.operator, IdPath(space_id)).await {
        Ok(image) => image.into_response(),
        Err(problem) => failure(console.lang, problem),
    }
}

/// The lot's printable sheet.
pub async fn sheet(
    State(state): State<AppState>,
    console: Console,
    IdPath(lot_id): IdPath,
) -> Response {
    match api_qr::sheet(State(state), console.operator, IdPath(lot_id)).await {
        Ok(pdf) => pdf.into_response(),
        Err(problem) => failure(console.lang, problem),
    }
}
