//! `/console`: the lot operator's web console (docs/console.md). Server-rendered HTML, one
//! stylesheet and one small script of our own, nothing from other hosts. Signing in with an
//! operator API key opens a server-side session (stored hashed, 12 hours idle, ended by
//! signing out or by revoking the key); every form carries a CSRF token checked here. The
//! pages call the operator API's own handlers with the signed-in operator, so the console
//! and the API answer the same rules.

// Helpers here answer `Result<T, Response>`: the error is the page the handler returns at
// once, so its size never travels far, and boxing it would only add noise at every call.
#![allow(clippy::result_large_err)]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::{ApiError, FieldError};
use super::extract::Operator;
use super::pages::i18n::{self, Lang};
use super::pages::{Asset, asset_response, request_language};
use crate::AppState;
use crate::domain::audit::hex;
use crate::store::console as sessions_store;

mod auth;
mod chart;
pub mod limiter;
mod lots;
mod metrics;
mod sessions;
mod tariffs;
pub mod text;

/// How long a console session lasts without a request.
pub const IDLE: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The session cookie: 256 random bits, hex; the database holds only its SHA-256.
pub const SESSION_COOKIE: &str = "qrpark_console";

/// The console routes: plain HTML, not part of the OpenAPI JSON API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(auth::home))
        .route(
            "/console/sign-in",
            get(auth::sign_in_page).post(auth::sign_in),
        )
        .route("/console/sign-out", post(auth::sign_out))
        .route("/console/lots", get(lots::list).post(lots::create))
        .route("/console/lots/{lot_id}", get(lots::show).post(lots::edit))
        .route("/console/lots/{lot_id}/spaces", post(lots::add_spaces))
        .route("/console/lots/{lot_id}/occupancy", get(lots::occupancy))
        .route("/console/lots/{lot_id}/qr-sheet.pdf", get(lots::sheet))
        .route("/console/spaces/{space_id}/status", post(lots::set_status))
        .route(
            "/console/spaces/{space_id}/rotate",
            get(lots::rotate_page).post(lots::rotate),
        )
        .route("/console/spaces/{space_id}/qr.png", get(lots::png))
        .route("/console/spaces/{space_id}/qr.svg", get(lots::svg))
        .route("/console/lots/{lot_id}/tariff", get(tariffs::show))
        .route("/console/lots/{lot_id}/tariff/check", post(tariffs::check))
        .route(
            "/console/lots/{lot_id}/tariff/publish",
            post(tariffs::publish),
        )
        .route("/console/lots/{lot_id}/tariff/diff", get(tariffs::diff))
        .route("/console/sessions", get(sessions::list))
        .route("/console/sessions/{session_id}/stop", post(sessions::stop))
        .route(
            "/console/sessions/{session_id}/refund",
            post(sessions::refund),
        )
        .route("/console/metrics", get(metrics::page_handler))
        .route("/console/metrics.csv", get(metrics::csv))
        .route("/console/assets/{name}", get(asset))
}

/// The console's stylesheet.
static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "css",
        include_bytes!("assets/console.css"),
        "text/css; charset=utf-8",
    )
});

/// The console's one script: live occupancy on a lot's page.
static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "js",
        include_bytes!("assets/console.js"),
        "text/javascript; charset=utf-8",
    )
});

/// The console's assets, for the page weights in docs/console.md.
pub fn assets() -> [&'static Asset; 2] {
    [&*CSS, &*JS]
}

async fn asset(Path(name): Path<String>) -> Response {
    asset_response(&assets(), &name)
}

/// A signed-in operator, with what every console page needs: the language, and the CSRF
/// token its forms carry.
pub struct Console {
    pub operator: Operator,
    pub lang: Lang,
    /// The language to remember, when `?lang=` picked one.
    pub remember: Option<Lang>,
    pub csrf: String,
}

impl Console {
    /// The text for `key` in the console's language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (lang, remember) = language(parts);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| looks_like_token(t))
        else {
            return Err(to_sign_in(lang, false));
        };
        let hash = token_hash(token);
        match sessions_store::touch(&state.db, &hash, state.clock.now(), IDLE).await {
            Ok(Some(session)) => Ok(Console {
                operator: Operator {
                    operator_id: session.operator_id,
                    operator_key_id: session.operator_key_id,
                },
                lang,
                remember,
                csrf: csrf_token(token),
            }),
            Ok(None) => Err(to_sign_in(lang, true)),
            Err(error) => Err(failure(lang, ApiError::from(error))),
        }
    }
}

/// The request's language (`?lang=`, the language cookie, `Accept-Language`), and the one
/// to remember when `?lang=` chose it.
fn language(parts: &Parts) -> (Lang, Option<Lang>) {
    let chosen: Option<String> = parts.uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    let lang = request_language(&parts.headers, chosen.as_deref());
    (lang, chosen.as_deref().and_then(Lang::parse))
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// 64 lowercase hex digits: what this server issues as a session or pre-sign-in token.
fn looks_like_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 256 fresh random bits, hex.
fn new_token() -> String {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source is available");
    hex(&secret)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of a session: derived from its secret cookie, so a page from another
/// site can neither read nor compute it, and nothing more is stored.
fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"qrpark console csrf\0");
    hasher.update(session_token.as_bytes());
    hex(&hasher.finalize())
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `csrf` member of a form body, if any.
fn form_csrf(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

/// A POSTed form, after its CSRF token matched the session's: 403 otherwise, 400 when it
/// does not parse.
fn form<T: DeserializeOwned>(console: &Console, body: &Bytes) -> Result<T, Response> {
    let given = form_csrf(body).unwrap_or_default();
    if !same_secret(&given, &console.csrf) {
        return Err(refused(console.lang));
    }
    serde_urlencoded::from_bytes(body).map_err(|e| {
        message_page(
            console.lang,
            StatusCode::BAD_REQUEST,
            console.t("c.bad_form"),
            &e.to_string(),
        )
    })
}

/// 403: a form without the session's CSRF token.
fn refused(lang: Lang) -> Response {
    message_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.t("c.csrf_title"),
        lang.t("c.csrf_body"),
    )
}

/// Where to go without a session (`expired`: there was one).
fn to_sign_in(lang: Lang, expired: bool) -> Response {
    let to = if expired {
        format!("/console/sign-in?lang={}&ok=expired", lang.code())
    } else {
        format!("/console/sign-in?lang={}", lang.code())
    };
    let mut response = see_other(&to);
    if expired {
        set_cookie(&mut response, &clear_cookie(SESSION_COOKIE));
    }
    response
}

/// 303 to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A cookie of the console: `HttpOnly`, `SameSite=Strict`, `Secure` when the public URL is
/// https, for the console's paths only, gone when the browser closes.
fn console_cookie(state: &AppState, name: &str, value: &str) -> String {
    let secure = if state.config.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict{secure}")
}

fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Only our own origin may provide anything, and nothing may frame the console.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An HTML answer with the console's headers.
fn html_response(status: StatusCode, body: Markup, remember: Option<Lang>) -> Response {
    let mut response = (status, body.into_string()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::VARY, "Accept-Language, Cookie"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(lang) = remember {
        set_cookie(
            &mut response,
            &format!(
                "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                i18n::COOKIE,
                lang.code()
            ),
        );
    }
    response
}

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Lots,
    Sessions,
    Metrics,
}

/// A signed-in page: the navigation, the language switch, sign-out, and `body`.
fn page(console: &Console, section: Section, title: &str, body: Markup) -> Response {
    page_with_status(console, StatusCode::OK, section, title, body)
}

fn page_with_status(
    console: &Console,
    status: StatusCode,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    let lang = console.lang;
    let current = |s: Section| (s == section).then_some("page");
    let header = html! {
        header.top {
            a.brand href="/console/lots" { "qrpark " (lang.t("c.console")) }
            nav aria-label=(lang.t("c.sections")) {
                a href="/console/lots" aria-current=[current(Section::Lots)] { (lang.t("c.lots")) }
                a href="/console/sessions" aria-current=[current(Section::Sessions)] { (lang.t("c.sessions")) }
                a href="/console/metrics" aria-current=[current(Section::Metrics)] { (lang.t("c.metrics")) }
            }
            (switch(lang))
            form.signout method="post" action="/console/sign-out" {
                input type="hidden" name="csrf" value=(console.csrf);
                button type="submit" { (lang.t("c.sign_out")) }
            }
        }
    };
    html_response(status, layout(lang, title, header, body), console.remember)
}

/// The frame of every console page.
fn layout(lang: Lang, title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                meta name="referrer" content="no-referrer";
                title { (title) " · qrpark" }
                link rel="stylesheet" href={ "/console/assets/" (CSS.name) };
                link rel="icon" href="data:,";
            }
            body {
                a.skip href="#main" { (lang.t("c.skip")) }
                (header)
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                script src={ "/console/assets/" (JS.name) } defer {}
            }
        }
    }
}

/// The language switch: a plain link keeping the rest of the query.
fn switch(lang: Lang) -> Markup {
    let other = lang.other();
    html! {
        nav.lang aria-label=(lang.t("language")) {
            a href={ "?lang=" (other.code()) } hreflang=(other.tag()) lang=(other.tag()) { (other.name()) }
        }
    }
}

/// A page of its own for a message (sign-in problems, refused forms, failures).
fn message_page(lang: Lang, status: StatusCode, title: &str, detail: &str) -> Response {
    let header = html! {
        header.top {
            a.brand href="/console/lots" { "qrpark " (lang.t("c.console")) }
            (switch(lang))
        }
    };
    let body = html! {
        p.alert role="alert" { (detail) }
        p { a href="/console/lots" { (lang.t("c.back_to_console")) } }
    };
    html_response(status, layout(lang, title, header, body), None)
}

/// An error of the operator API shown as a page: its detail, and each field's path.
fn failure(lang: Lang, error: ApiError) -> Response {
    let (status, detail, errors) = explain(lang, error);
    let title = lang.t("c.failed");
    let header = html! {
        header.top {
            a.brand href="/console/lots" { "qrpark " (lang.t("c.console")) }
            (switch(lang))
        }
    };
    let body = html! {
        (problem_box(&detail, &errors))
        p { a href="/console/lots" { (lang.t("c.back_to_console")) } }
    };
    html_response(status, layout(lang, title, header, body), None)
}

/// What an API error says to people: its status, its detail and its field errors. A
/// failure on our side is logged and said without its cause.
fn explain(lang: Lang, error: ApiError) -> (StatusCode, String, Vec<FieldError>) {
    match error {
        ApiError::Problem(problem) => {
            let errors = problem
                .extensions
                .get("errors")
                .and_then(|e| serde_json::from_value::<Vec<FieldErrorIn>>(e.clone()).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|e| FieldError::new(e.path, e.message))
                .collect();
            (problem.code.status(), problem.detail, errors)
        }
        other => {
            let response = other.into_response();
            (
                response.status(),
                lang.t("c.server_error").to_owned(),
                Vec::new(),
            )
        }
    }
}

/// The status an API error answers with.
fn status_of(error: &ApiError) -> StatusCode {
    match error {
        ApiError::Problem(problem) => problem.status(),
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[derive(serde::Deserialize)]
struct FieldErrorIn {
    path: String,
    message: String,
}

/// An alert with a problem's detail and its errors, each at its JSON path.
fn problem_box(detail: &str, errors: &[FieldError]) -> Markup {
    html! {
        div.alert role="alert" {
            p { (detail) }
            @if !errors.is_empty() {
                ul.errors {
                    @for e in errors {
                        li { code { (e.path) } ": " (e.message) }
                    }
                }
            }
        }
    }
}

/// A success note for `?ok=KEY`, when KEY is one the console sets.
fn notice(console: &Console, ok: Option<&str>) -> Markup {
    let known = [
        "created",
        "saved",
        "spaces_added",
        "rotated",
        "status_set",
        "published",
        "stopped",
        "refunded",
    ];
    html! {
        @if let Some(key) = ok.filter(|k| known.contains(k)) {
            p.notice role="status" { (console.t(&format!("c.ok.{key}"))) }
        }
    }
}

/// Hidden CSRF input of a form.
fn csrf_field(console: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(console.csrf); }
}

/// Pretty JSON for an editor or a listing.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn csrf_tokens_follow_the_session() {
        let (a, b) = (new_token(), new_token());
        assert!(looks_like_token(&a));
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), a);
    }
}
