//! The phone page's HTML (maud templates): the scan page, the warning pages and the
//! sign-in callback. One stylesheet and one script, both ours; icons are inline SVG.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::i18n::Lang;
use super::tariff_words;
use super::{Availability, CSS, JS, PageData, Warning};
use crate::domain::plate::PROVINCES;

/// The frame every page shares: language, viewport, our stylesheet.
pub(super) fn layout(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href=(CSS.path());
                link rel="icon" href="data:,";
            }
            body { (body) }
        }
    }
}

/// The language switch: a plain link, so it works without the script.
pub(super) fn switch(lang: Lang) -> Markup {
    let other = lang.other();
    html! {
        nav.lang aria-label=(lang.t("language")) {
            a href={ "?lang=" (other.code()) } hreflang=(other.tag()) lang=(other.tag()) {
                (other.name())
            }
        }
    }
}

fn icon_check() -> Markup {
    PreEscaped(
        r##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="11" fill="currentColor"/><path d="M6.5 12.5l3.5 3.5 7.5-8" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>"##.to_owned(),
    )
}

pub(super) fn icon_warning() -> Markup {
    PreEscaped(
        r##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 2L1 22h22z" fill="currentColor"/><path d="M12 9v6M12 18.2v.1" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/></svg>"##.to_owned(),
    )
}

/// Messages for the script, as a JSON data block (not executed, so the CSP allows it).
fn messages(lang: Lang) -> Markup {
    script_messages(lang, "js.")
}

/// The messages whose keys start with `prefix`, as the `#msg` JSON data block.
pub(super) fn script_messages(lang: Lang, prefix: &str) -> Markup {
    let json = lang
        .script_messages(prefix)
        .to_string()
        .replace("</", "<\\/");
    html! {
        script #msg type="application/json" { (PreEscaped(json)) }
    }
}

/// The page a genuine code opens.
pub fn scan_page(data: &PageData, lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    let title = t("title").replace("{space}", &data.space_code);
    let words = data
        .tariff
        .as_ref()
        .map(|in_force| tariff_words::describe(&in_force.tariff, lang))
        .unwrap_or_default();
    let can_park = data.tariff.is_some() && data.availability != Availability::OutOfService;
    let body = html! {
        (switch(lang))
        main #app
            data-qr=(data.token)
            data-lot=(data.lot_id)
            data-space=(data.space_id)
            data-tz=(data.timezone)
            data-offset=(data.offset_minutes)
            data-now=(data.now.timestamp_millis())
            data-symbol=(data.currency_symbol)
            data-max-stay=[data.tariff.as_ref().and_then(|t| t.tariff.max_stay_minutes())]
            data-demo=[data.demo.then_some("1")]
            data-login=[data.login_url.as_deref()]
            data-client=(data.client_id)
            data-callback=(data.callback_url)
            data-expected=(data.expected_address)
            data-lang=(lang.tag())
            data-plate-required=[data.plate_required.then_some("1")]
        {
            header.place {
                p.lot { (data.lot_name) }
                @if let Some(address) = &data.lot_address {
                    p.address { (address) }
                }
                h1 {
                    span.label { (t("space")) " " }
                    span #space-code.code { (data.space_code) }
                }
                @match data.availability {
                    Availability::Free => p #availability.status.free { (t("status_free")) },
                    Availability::Occupied => p #availability.status.busy { (t("status_occupied")) },
                    Availability::OutOfService => p #availability.status.busy { (t("status_out")) },
                }
            }
            (enforce_card(lang))
            section #genuine.card.ok aria-labelledby="genuine-h" {
                h2 #genuine-h { (icon_check()) (t("genuine_title")) }
                p { (t("genuine_body")) }
                p { (t("genuine_address")) }
                p.address-bar { code #expected { (data.expected_address) "…" } }
                p { strong { (t("genuine_warn")) } }
                p #origin-mismatch.alert hidden { (icon_warning()) (t("genuine_warn")) }
                @if !data.kid.is_empty() {
                    p.small { "kid: " (data.kid) }
                }
            }
            p #alert.alert role="alert" hidden {}
            @if can_park {
                (arrears_card(lang))
            }
            section #park.card aria-labelledby="park-h" {
                h2 #park-h { (t("park_title")) }
                @if can_park {
                    div #signin {
                        p { (t("signin_why")) }
                        @if data.demo {
                            button #signin-btn.primary type="button" { (t("signin_demo")) }
                        } @else if data.login_url.is_some() {
                            button #signin-btn.primary type="button" { (t("signin_city")) }
                        } @else {
                            p #signin-none { (t("signin_none")) }
                        }
                    }
                    div #ready hidden {
                        p { (t("signed_in")) " " button #signout-btn.link type="button" { (t("sign_out")) } }
                        (start_form(data, lang))
                    }
                    div #live hidden {
                        div aria-live="polite" {
                            p.now { (t("parking_now")) }
                            dl.facts {
                                div { dt { (t("elapsed")) } dd #elapsed { "0:00" } }
                                div { dt { (t("fee_so_far")) } dd #fee { "…" } }
                                div #live-plate-row hidden { dt { (t("plate")) } dd #live-plate.plate {} }
                                div #leave-by-row hidden { dt { (t("leave_by")) } dd #leave-by {} }
                                div #stops-at-row hidden { dt { (t("stops_at")) } dd #stops-at {} }
                            }
                        }
                        button #stop-btn.primary.stop type="button" { (t("stop")) }
                        (proof_card(lang))
                    }
                    div #receipt hidden {
                        h3 { (t("receipt")) }
                        dl.facts {
                            div { dt { (t("started")) } dd #receipt-start {} }
                            div { dt { (t("ended")) } dd #receipt-end {} }
                            div { dt { (t("total")) } dd #receipt-total.total {} }
                            div #receipt-plate-row hidden { dt { (t("plate")) } dd #receipt-plate.plate {} }
                        }
                        p #receipt-ended-by {}
                        table #receipt-lines {
                            thead { tr { th scope="col" { (t("period")) } th scope="col".n { (t("charged")) } } }
                            tbody {}
                        }
                        p #receipt-settlement aria-live="polite" {}
                        div #receipt-refunds-box hidden {
                            h4 { (t("refunds")) }
                            table #receipt-refunds {
                                thead {
                                    tr {
                                        th scope="col" { (t("refund_date")) }
                                        th scope="col" { (t("refund_reason")) }
                                        th scope="col" { (t("refund_status")) }
                                        th scope="col".n { (t("refund_amount")) }
                                    }
                                }
                                tbody {}
                            }
                            p #receipt-refunded {}
                        }
                        p { (t("reference")) ": " strong #receipt-ref {} }
                    }
                    noscript { p { (t("noscript")) } }
                } @else if data.tariff.is_none() {
                    p { (t("no_tariff")) }
                } @else {
                    p { (t("status_out")) }
                }
            }
            section #prices.card aria-labelledby="prices-h" {
                h2 #prices-h { (t("prices")) }
                @if words.is_empty() {
                    p { (t("no_tariff")) }
                } @else {
                    ul #tariff-words {
                        @for line in &words { li { (line) } }
                    }
                }
            }
            @if data.tariff.is_some() {
                section #calc.card aria-labelledby="calc-h" hidden {
                    h2 #calc-h { (t("calc_title")) }
                    form #calc-form {
                        label for="leave" { (t("calc_label")) }
                        div.row {
                            input #leave type="time" name="leave" required value=(data.suggested_leave);
                            button type="submit" { (t("calc_button")) }
                        }
                        output #calc-out for="leave" aria-live="polite" {}
                    }
                }
            }
        }
        (messages(lang))
        script src=(JS.path()) defer {}
    };
    layout(lang, &title, body)
}

/// The plate (remembered on the device; the province row for Chinese plates, open for
/// Chinese readers), an optional planned stop, and *Start*.
fn start_form(data: &PageData, lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    let provinces: String = PROVINCES.iter().collect();
    html! {
        form #start-form novalidate data-provinces=(provinces) {
            label for="plate" {
                (t("plate")) " "
                span.small { "(" (if data.plate_required { t("plate_required") } else { t("plate_optional") }) ")" }
            }
            input #plate.plate name="plate" type="text" autocomplete="off" autocapitalize="characters"
                spellcheck="false" maxlength="20" placeholder="沪A12345"
                aria-describedby="plate-help" required[data.plate_required];
            p #plate-help.small { (t("plate_help")) }
            details #provinces open[lang == Lang::Zh] {
                summary { (t("province_pick")) }
                div.provinces role="group" aria-label=(t("province_group")) lang="zh-CN" {
                    @for province in PROVINCES {
                        button.prov type="button" data-p=(province) { (province) }
                    }
                }
            }
            label for="stop-at" { (t("stop_at_label")) }
            input #stop-at name="stop_at" type="time";
            button #start-btn.primary type="submit" { (t("start")) }
        }
    }
}

/// The driver's unpaid fees (the gateway refused them), filled by the script after sign-in
/// and when a start is refused with `arrears_outstanding`: one item per session with its
/// *Pay* button, and the totals per currency.
fn arrears_card(lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    html! {
        section #arrears.card.danger hidden aria-labelledby="arrears-h" {
            h2 #arrears-h tabindex="-1" { (icon_warning()) (t("arrears_title")) }
            p { (t("arrears_body")) }
            ul #arrears-list {}
            dl.facts {
                div { dt { (t("arrears_total")) } dd #arrears-total.total {} }
            }
            p #arrears-done aria-live="polite" {}
        }
    }
}

/// The proof of parking while a session is active: a QR code the script renews, and its
/// text for a warden to paste.
fn proof_card(lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    html! {
        section #proof aria-labelledby="proof-h" hidden {
            h3 #proof-h { (t("proof_title")) }
            p.small { (t("proof_body")) }
            img #proof-img alt=(t("proof_alt")) width="240" height="240" hidden;
            p #proof-valid aria-live="polite" {}
            details {
                summary { (t("proof_text")) }
                textarea #proof-token readonly rows="4" spellcheck="false" aria-label=(t("proof_text")) {}
                button #proof-copy type="button" { (t("copy")) }
                span #proof-copied.small aria-live="polite" {}
            }
        }
    }
}

/// What a signed-in warden sees of the space instead of the driver's controls.
fn enforce_card(lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    html! {
        section #enforce.card hidden aria-labelledby="enforce-h" {
            h2 #enforce-h { (t("enforce_title")) }
            p #enforce-status.status aria-live="polite" {}
            dl.facts {
                div { dt { (t("plate")) } dd #enforce-plate.plate {} }
                div #enforce-since-row { dt { (t("since")) } dd #enforce-since {} }
                div #enforce-left-row { dt { (t("time_left")) } dd #enforce-left {} }
            }
            p #enforce-last {}
            p { a href="/warden" { (t("enforce_open")) } }
            p { button #enforce-driver.link type="button" { (t("enforce_driver")) } }
        }
    }
}

/// A code that must not be paid through: forged, replaced, naming nothing, or our failure.
pub fn warning_page(kind: Warning, lang: Lang) -> Markup {
    let t = |key| lang.t(key);
    let (title, text) = match kind {
        Warning::Forged => (t("forged_title"), t("forged_body")),
        Warning::Revoked => (t("revoked_title"), t("revoked_body")),
        Warning::NoSpace => (t("unknown_title"), t("unknown_body")),
        Warning::Error => (t("error_title"), t("error_body")),
    };
    let class = if kind == Warning::Error {
        "card"
    } else {
        "card danger"
    };
    let body = html! {
        (switch(lang))
        main #warning {
            section class=(class) role="alert" {
                h1 { (icon_warning()) (title) }
                p.big { (text) }
            }
        }
    };
    layout(lang, title, body)
}

/// Where the city identity provider sends the driver back (the token is in the fragment,
/// which never reaches the server); the script stores it and returns to the space's page.
pub fn callback_page(lang: Lang, public_url: &str) -> Markup {
    let body = html! {
        main #callback data-lang=(lang.tag()) {
            p #alert.alert role="alert" hidden {}
            p #callback-wait { (lang.t("signing_in")) }
            p { a #callback-back href=(public_url) { (lang.t("back")) } }
        }
        (messages(lang))
        script src=(JS.path()) defer {}
    };
    layout(lang, lang.t("signing_in"), body)
}
