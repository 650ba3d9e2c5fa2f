//! Signing in with an operator API key, and out.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{
    Console, SESSION_COOKIE, clear_cookie, console_cookie, cookie, failure, form, form_csrf,
    html_response, language, layout, limiter, looks_like_token, new_token, same_secret, see_other,
    set_cookie, switch, token_hash,
};
use crate::AppState;
use crate::http::pages::i18n::Lang;
use crate::identity::operator_key;
use crate::store::{console as sessions_store, operators};

/// The cookie that carries the sign-in form's CSRF token (there is no session yet).
const PRE_COOKIE: &str = "qrpark_console_pre";

/// `?ok=` on the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    ok: Option<String>,
}

/// `/console`: the lots when signed in, the sign-in page otherwise.
pub async fn home(console: Console) -> Response {
    let _ = console;
    see_other("/console/lots")
}

/// The request's language and peer, for the pages without a session.
pub struct Visitor {
    lang: Lang,
    remember: Option<Lang>,
    address: std::net::IpAddr,
    pre: Option<String>,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        let (lang, remember) = language(parts);
        Ok(Visitor {
            lang,
            remember,
            address: limiter::client_address(parts),
            pre: cookie(&parts.headers, PRE_COOKIE)
                .filter(|t| looks_like_token(t))
                .map(str::to_owned),
        })
    }
}

/// The sign-in form.
pub async fn sign_in_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<SignInQuery>,
) -> Response {
    let note = match query.ok.as_deref() {
        Some("expired") => Some(visitor.lang.t("c.signin.expired")),
        Some("signed_out") => Some(visitor.lang.t("c.signin.signed_out")),
        _ => None,
    };
    sign_in_form(&state, &visitor, StatusCode::OK, note, None)
}

/// The sign-in page, with a fresh pre-sign-in token in its form and its cookie.
fn sign_in_form(
    state: &AppState,
    visitor: &Visitor,
    status: StatusCode,
    note: Option<&str>,
    error: Option<&str>,
) -> Response {
    let lang = visitor.lang;
    let pre = new_token();
    let header = html! {
        header.top {
            span.brand { "qrpark " (lang.t("c.console")) }
            (switch(lang))
        }
    };
    let body = html! {
        @if let Some(note) = note { p.notice role="status" { (note) } }
        @if let Some(error) = error { p.alert role="alert" #signin-error { (error) } }
        p { (lang.t("c.signin.why")) }
        form.card method="post" action="/console/sign-in" {
            input type="hidden" name="csrf" value=(pre);
            label for="key" { (lang.t("c.signin.key")) }
            input #key type="password" name="key" autocomplete="off" spellcheck="false"
                required aria-describedby="key-help";
            p.help #key-help { (lang.t("c.signin.key_help")) }
            button type="submit" #signin { (lang.t("c.signin.button")) }
        }
    };
    let mut response = html_response(
        status,
        layout(lang, lang.t("c.signin.title"), header, body),
        visitor.remember,
    );
    set_cookie(&mut response, &console_cookie(state, PRE_COOKIE, &pre));
    response
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
}

/// Signs in: rate limited per address, the form's token checked against its cookie, the
/// key checked like the API checks it; a session cookie on success.
pub async fn sign_in(State(state): State<AppState>, visitor: Visitor, body: Bytes) -> Response {
    let lang = visitor.lang;
    if let Err(wait) = state.sign_in_limiter.attempt(visitor.address) {
        let mut response = sign_in_form(
            &state,
            &visitor,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some(lang.t("c.signin.too_many")),
        );
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let given = form_csrf(&body).unwrap_or_default();
    let expected = visitor.pre.clone().unwrap_or_default();
    if expected.is_empty() || !same_secret(&given, &expected) {
        return sign_in_form(
            &state,
            &visitor,
            StatusCode::FORBIDDEN,
            None,
            Some(lang.t("c.csrf_body")),
        );
    }
    let fields: SignInForm =
        serde_urlencoded::from_bytes(&body).unwrap_or(SignInForm { key: String::new() });
    let key = fields.key.trim();
    let owner = if operator_key::looks_like_key(key) {
        match operators::authenticate(&state.db, &operator_key::hash(key)).await {
            Ok(owner) => owner,
            Err(error) => return failure(lang, error.into()),
        }
    } else {
        None
    };
    let Some(owner) = owner else {
        return sign_in_form(
            &state,
            &visitor,
            StatusCode::UNAUTHORIZED,
            None,
            Some(lang.t("c.signin.wrong")),
        );
    };
    let token = new_token();
    let now = state.clock.now();
    if let Err(error) =
        sessions_store::open(&state.db, &token_hash(&token), owner, now, super::IDLE).await
    {
        return failure(lang, error.into());
    }
    let mut response = see_other("/console/lots");
    set_cookie(
        &mut response,
        &console_cookie(&state, SESSION_COOKIE, &token),
    );
    set_cookie(&mut response, &clear_cookie(PRE_COOKIE));
    response
}

/// Signs out: the session ends on the server and its cookie is cleared.
pub async fn sign_out(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let console = match Console::from_request_parts(&mut parts, &state).await {
        Ok(console) => console,
        Err(response) => return response,
    };
    let Ok(body) = axum::body::to_bytes(body, state.config.max_body_bytes).await else {
        return super::refused(console.lang);
    };
    if let Err(response) = form::<serde::de::IgnoredAny>(&console, &body) {
        return response;
    }
    let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
    if let Err(error) =
        sessions_store::close(&state.db, &token_hash(token), state.clock.now()).await
    {
        return failure(console.lang, error.into());
    }
    let mut response = see_other(&format!(
        "/console/sign-in?lang={}&ok=signed_out",
        console.lang.code()
    ));
    set_cookie(&mut response, &clear_cookie(SESSION_COOKIE));
    response
}
