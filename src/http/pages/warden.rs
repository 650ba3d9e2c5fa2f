//! The warden's page, `GET /warden`: sign in with the city identity, walk a lot's spaces
//! live, find a plate, record a violation, and check a proof of parking offline. The page is
//! a shell: everything it shows comes from the enforcement API through `warden.js`, which
//! also verifies proofs in the browser against the JWKS it keeps. Contract:
//! docs/enforcement.md, "The warden's page".

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::i18n::Lang;
use super::view::{icon_warning, layout, script_messages, switch};
use super::{PageQuery, WARDEN_JS, city_login_url, html, language};
use crate::AppState;

/// `GET /warden`.
pub async fn page(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, remember) = language(&headers, &query);
    let public_url = state.config.public_url();
    let setup = SignIn {
        demo: state.demo_idp.is_some(),
        login_url: city_login_url(&state),
        client_id: state.config.city_audience.clone(),
        callback_url: format!("{public_url}/q/callback"),
    };
    let now = state.clock.now().timestamp_millis();
    html(
        StatusCode::OK,
        view(&setup, now, lang).into_string(),
        remember,
    )
}

/// How a warden signs in on this server.
struct SignIn {
    demo: bool,
    login_url: Option<String>,
    client_id: String,
    callback_url: String,
}

fn view(setup: &SignIn, now_ms: i64, lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    let body = html! {
        (switch(lang))
        main #warden
            data-demo=[setup.demo.then_some("1")]
            data-login=[setup.login_url.as_deref()]
            data-client=(setup.client_id)
            data-callback=(setup.callback_url)
            data-lang=(lang.tag())
            data-now=(now_ms)
        {
            header.place {
                h1 { (t("w.title")) }
                p { (t("w.intro")) }
            }
            p #alert.alert role="alert" hidden {}
            section #w-signin.card aria-labelledby="w-signin-h" {
                h2 #w-signin-h { (t("w.signin_title")) }
                p { (t("w.signin_why")) }
                @if setup.demo {
                    button #w-signin-btn.primary type="button" { (t("w.signin_demo")) }
                } @else if setup.login_url.is_some() {
                    button #w-signin-btn.primary type="button" { (t("w.signin_city")) }
                } @else {
                    p { (t("w.signin_none")) }
                }
            }
            p #w-who hidden {
                (t("w.signed_in")) " " strong #w-subject {} " "
                button #w-signout.link type="button" { (t("w.sign_out")) }
            }
            section #w-lot.card aria-labelledby="w-lot-h" hidden {
                h2 #w-lot-h { (t("w.spaces_title")) }
                label for="lot-select" { (t("w.lot")) }
                select #lot-select {}
                p #spaces-updated.small aria-live="polite" {}
                table #spaces {
                    thead { tr {
                        th scope="col" { (t("w.space")) }
                        th scope="col" { (t("w.status")) }
                        th scope="col" { span.sr { (t("w.action")) } }
                    } }
                    tbody {}
                }
            }
            section #w-search.card aria-labelledby="w-search-h" hidden {
                h2 #w-search-h { (t("w.search_title")) }
                form #search-form {
                    label for="search-plate" { (t("w.search_label")) }
                    div.row {
                        input #search-plate.plate type="text" autocomplete="off"
                            autocapitalize="characters" spellcheck="false" required;
                        button type="submit" { (t("w.search_button")) }
                    }
                    output #search-out for="search-plate" aria-live="polite" {}
                }
            }
            section #w-violation.card aria-labelledby="w-violation-h" hidden {
                h2 #w-violation-h { (t("w.violation_title")) }
                form #violation-form {
                    label for="v-space" { (t("w.space")) }
                    select #v-space required {}
                    label for="v-plate" { (t("w.violation_plate")) }
                    input #v-plate.plate type="text" autocomplete="off" autocapitalize="characters"
                        spellcheck="false" required;
                    label for="v-note" { (t("w.violation_note")) }
                    textarea #v-note maxlength="500" rows="2" {}
                    button.primary type="submit" { (t("w.violation_button")) }
                    output #v-out aria-live="polite" {}
                }
            }
            section #w-verify.card aria-labelledby="w-verify-h" {
                h2 #w-verify-h { (t("w.verify_title")) }
                p { (t("w.verify_body")) }
                p #keys-state.small {}
                p #needs-https.alert hidden { (icon_warning()) (lang.t("wjs.needs_https")) }
                form #verify-form {
                    label for="proof-in" { (t("w.verify_label")) }
                    textarea #proof-in rows="4" spellcheck="false" autocomplete="off" {}
                    button.primary type="submit" { (t("w.verify_button")) }
                    button #camera-btn type="button" hidden { (t("w.camera")) }
                }
                video #camera hidden muted playsinline {}
                div #verify-out role="status" aria-live="polite" hidden {
                    p #verify-verdict.verdict {}
                    dl #verify-facts.facts {}
                }
            }
            noscript { p { (t("w.noscript")) } }
        }
        (script_messages(lang, "wjs."))
        script src=(WARDEN_JS.path()) defer {}
    };
    layout(lang, t("w.title"), body)
}
