//! The driver's phone page (`GET /q/{token}`, what a space's QR code opens), the sign-in
//! callback (`GET /q/callback`), the warden's page (`GET /warden`) and their static assets
//! (`/assets/...`). HTML for people: every outcome, a forged code included, is a page, never
//! JSON. The scripts talk to the JSON API like any other client. Contracts:
//! docs/phone-page.md and docs/enforcement.md.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Offset, TimeDelta, Timelike, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::domain::space::SpaceStatus;
use crate::domain::timezone::TimeZone;
use crate::qr::resolve::{Genuine, Lookup, Refusal, resolve};
use crate::store::sessions;

pub mod i18n;
pub mod receipt;
pub mod tariff_words;
mod view;
mod warden;
mod warden_text;

use i18n::Lang;

/// The page routes: plain HTML, not part of the OpenAPI JSON API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/q/callback", get(callback))
        .route("/q/{token}", get(scan_page))
        .route("/warden", get(warden::page))
        .route("/assets/{name}", get(asset))
}

/// A static file, served under a name that changes with its content, so it can be cached
/// for a year.
pub struct Asset {
    pub name: String,
    pub body: &'static [u8],
    pub content_type: &'static str,
}

impl Asset {
    pub(crate) fn new(
        stem: &str,
        ext: &str,
        body: &'static [u8],
        content_type: &'static str,
    ) -> Self {
        let hash = Sha256::digest(body);
        let short: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            name: format!("{stem}-{short}.{ext}"),
            body,
            content_type,
        }
    }

    /// The path the page links to.
    pub fn path(&self) -> String {
        format!("/assets/{}", self.name)
    }
}

/// The stylesheet.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "page",
        "css",
        include_bytes!("assets/page.css"),
        "text/css; charset=utf-8",
    )
});

/// The phone page's script.
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "page",
        "js",
        include_bytes!("assets/page.js"),
        "text/javascript; charset=utf-8",
    )
});

/// The warden page's script.
pub static WARDEN_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "warden",
        "js",
        include_bytes!("assets/warden.js"),
        "text/javascript; charset=utf-8",
    )
});

async fn asset(Path(name): Path<String>) -> Response {
    asset_response(&[&*CSS, &*JS, &*WARDEN_JS], &name)
}

/// The asset of `assets` named `name`, cacheable for a year; 404 when there is none.
pub(crate) fn asset_response(assets: &[&Asset], name: &str) -> Response {
    for asset in assets {
        if asset.name == name {
            return (
                [
                    (header::CONTENT_TYPE, asset.content_type),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                asset.body,
            )
                .into_response();
        }
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such asset",
    )
        .into_response()
}

/// `?lang=en|zh` switches the language and remembers it in a cookie.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub(super) lang: Option<String>,
}

/// Where the city identity provider's sign-in page is, if sign-in is set up.
pub(super) fn city_login_url(state: &AppState) -> Option<String> {
    state.config.city_login_url.clone()
}

/// Whether the space may be parked on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Free,
    Occupied,
    OutOfService,
}

/// Everything the phone page shows about a genuine code.
pub struct PageData {
    pub token: String,
    pub lot_id: Uuid,
    pub lot_name: String,
    pub lot_address: Option<String>,
    pub timezone: String,
    /// The lot's UTC offset now, in minutes (for the calculator's "leave at").
    pub offset_minutes: i32,
    pub space_id: Uuid,
    pub space_code: String,
    pub availability: Availability,
    /// The tariff in force, parsed once per process.
    pub tariff: Option<std::sync::Arc<crate::store::cache::CachedTariff>>,
    pub currency_symbol: String,
    pub kid: String,
    /// `{public_url}/q/`: what the driver's address bar must show.
    pub expected_address: String,
    pub callback_url: String,
    pub now: DateTime<Utc>,
    /// The calculator's first suggestion: the local time three hours from now with its
    /// minutes set to :00, so between two and three hours ahead.
    pub suggested_leave: String,
    pub demo: bool,
    pub login_url: Option<String>,
    pub client_id: String,
    /// Every session on this lot must name the vehicle's plate.
    pub plate_required: bool,
}

/// The warning pages, by what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    Forged,
    Revoked,
    NoSpace,
    Error,
}

impl From<Refusal> for Warning {
    /// How the page answers a code that must not be paid through.
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Forged => Warning::Forged,
            Refusal::Revoked => Warning::Revoked,
            Refusal::NoSpace => Warning::NoSpace,
        }
    }
}

impl Warning {
    fn status(self) -> StatusCode {
        match self {
            Warning::Forged => StatusCode::BAD_REQUEST,
            Warning::Revoked => StatusCode::GONE,
            Warning::NoSpace => StatusCode::NOT_FOUND,
            Warning::Error => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

async fn scan_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, remember) = language(&headers, &query);
    let (status, body) = match scan(&state, &token).await {
        Ok(Ok(data)) => (StatusCode::OK, view::scan_page(&data, lang)),
        Ok(Err(refusal)) => warning(Warning::from(refusal), lang),
        Err(error) => {
            tracing::error!(?error, "the phone page could not read the scanned space");
            warning(Warning::Error, lang)
        }
    };
    html(status, body.into_string(), remember)
}

fn warning(kind: Warning, lang: Lang) -> (StatusCode, maud::Markup) {
    (kind.status(), view::warning_page(kind, lang))
}

async fn callback(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, remember) = language(&headers, &query);
    let body = view::callback_page(lang, &state.config.public_url());
    html(StatusCode::OK, body.into_string(), remember)
}

/// The request's language, and the language to remember if `?lang=` picked one.
pub(super) fn language(headers: &HeaderMap, query: &PageQuery) -> (Lang, Option<Lang>) {
    let chosen = query.lang.as_deref().and_then(Lang::parse);
    (request_language(headers, query.lang.as_deref()), chosen)
}

/// The language for a page: `?lang=`, then the remembered cookie, then `Accept-Language`.
pub fn request_language(headers: &HeaderMap, query_lang: Option<&str>) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(i18n::COOKIE)?.strip_prefix('='));
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(query_lang, cookie, accept)
}

/// Only our own origin may provide anything; the token in the URL never leaves in a
/// `Referer`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn html(status: StatusCode, body: String, remember: Option<Lang>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    if let Some(lang) = remember
        && let Ok(cookie) = HeaderValue::from_str(&format!(
            "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            i18n::COOKIE,
            lang.code()
        ))
    {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Resolves the token as `GET /v1/scan/{token}` does, and gathers what the page shows.
async fn scan(state: &AppState, token: &str) -> anyhow::Result<Result<Box<PageData>, Refusal>> {
    let now = state.clock.now();
    let Genuine { space, lot, kid } =
        match resolve(&state.keys, Lookup::Cached(&state.cache), token, now).await? {
            Ok(genuine) => genuine,
            Err(refusal) => return Ok(Err(refusal)),
        };
    let tariff = state.cache.tariff_in_force(lot.lot_id, now).await?;
    let availability = if space.status != SpaceStatus::Active {
        Availability::OutOfService
    } else if sessions::space_occupied(&state.db, space.space_id).await? {
        Availability::Occupied
    } else {
        Availability::Free
    };
    let tz = TimeZone::parse(&lot.timezone)?.tz();
    let local_now = now.with_timezone(&tz);
    let offset_minutes = local_now.offset().fix().local_minus_utc() / 60;
    let leave = (local_now + TimeDelta::hours(3))
        .with_minute(0)
        .unwrap_or(local_now);
    let currency = crate::domain::currency::Currency::parse(&lot.currency)?;
    let public_url = state.config.public_url();
    Ok(Ok(Box::new(PageData {
        token: token.to_owned(),
        lot_id: lot.lot_id,
        lot_name: lot.name.clone(),
        lot_address: lot.address.clone(),
        timezone: lot.timezone.clone(),
        offset_minutes,
        space_id: space.space_id,
        space_code: space.code.clone(),
        availability,
        tariff,
        currency_symbol: tariff_words::symbol(currency),
        kid,
        expected_address: format!("{public_url}/q/"),
        callback_url: format!("{public_url}/q/callback"),
        now,
        suggested_leave: leave.format("%H:%M").to_string(),
        demo: state.demo_idp.is_some(),
        login_url: city_login_url(state),
        client_id: state.config.city_audience.clone(),
        plate_required: lot.plate_required,
    })))
}
