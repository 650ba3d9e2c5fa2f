//! The driver's phone page, `GET /q/{token}`: what a scanned genuine code shows, in which
//! language, how much it weighs, and the warning pages for forged and replaced codes; the
//! plate field and the proof's QR code; the warden's page, `GET /warden`.

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, both_backends};
use crate::sessions::{parking_lot, start};
use chrono::TimeDelta;
use serde_json::json;

both_backends!(
    a_genuine_code_shows_the_space_and_its_prices,
    the_page_weighs_under_100_kb_and_loads_nothing_from_other_hosts,
    chinese_from_accept_language_and_a_switch_remembered_in_a_cookie,
    an_occupied_space_says_so,
    forged_and_replaced_codes_get_warning_pages_not_json,
    a_lot_that_requires_plates_asks_for_one_on_the_page,
    the_proof_of_parking_carries_its_qr_code,
    the_warden_page_is_html_under_the_csp_in_both_languages,
    the_receipt_shows_refunds_in_both_languages,
    the_page_has_an_arrears_panel_in_both_languages,
);

/// The page as a phone would fetch it.
async fn page(
    app: &TestApp,
    path: &str,
    accept_language: Option<&str>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if let Some(lang) = accept_language {
        request = request.header(ACCEPT_LANGUAGE, lang);
    }
    let response = request.send().await.expect("fetch page");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.expect("page body"), headers)
}

#[track_caller]
fn assert_html(
    status: StatusCode,
    expected: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) {
    assert_eq!(status, expected, "{body}");
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(body.starts_with("<!DOCTYPE html>"), "not HTML: {body}");
    assert!(serde_json::from_str::<serde_json::Value>(body).is_err());
}

/// Every `src="..."` and `href="..."` value in the page.
fn references(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in [" src=\"", " href=\""] {
        for (i, _) in body.match_indices(attr) {
            let rest = &body[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                found.push(rest[..end].to_owned());
            }
        }
    }
    found
}

async fn a_genuine_code_shows_the_space_and_its_prices(app: TestApp) {
    let op = app.operator("Pages").await;
    let (_, spaces) = parking_lot(&app, &op, &["B-07"]).await;
    let (status, body, headers) = page(&app, &format!("/q/{}", spaces[0].1), None).await;
    assert_html(status, StatusCode::OK, &headers, &body);
    assert!(body.contains(r#"<html lang="en">"#), "{body}");
    assert!(body.contains("Jing'an Temple"), "the lot's name: {body}");
    assert!(body.contains(">B-07<"), "the space code: {body}");
    assert!(body.contains("Free: you can park here"), "{body}");
    assert!(body.contains("Genuine parking code"), "{body}");
    assert!(
        body.contains(&format!("{}/q/", app.base)),
        "the address to expect: {body}"
    );
    for line in [
        "07:00–21:00: ¥2.50 per 15 min for the first hour, then ¥3.75 per 15 min",
        "21:00–07:00: ¥1.00 per 2 h, at most ¥5.00",
        "The first 15 min are free",
        "At most ¥60.00 a day.",
    ] {
        assert!(body.contains(line), "tariff line {line:?} missing: {body}");
    }
    assert!(
        body.contains(r#"data-demo="1""#),
        "tests run with the demo provider"
    );
    assert!(body.contains(r#"<label for="leave">If I leave at</label>"#));
    // The token is in the URL: it must not leak to other sites, and the page must not be
    // cached with a stale availability.
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    let (status, body, headers) = page(&app, "/q/callback", None).await;
    assert_html(status, StatusCode::OK, &headers, &body);
    let (status, _, _) = page(&app, "/assets/nothing-here.css", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_page_weighs_under_100_kb_and_loads_nothing_from_other_hosts(app: TestApp) {
    let op = app.operator("Weigh").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let (_, body, _) = page(&app, &format!("/q/{}", spaces[0].1), None).await;
    let mut total = body.len();
    let mut assets = 0;
    for reference in references(&body) {
        assert!(
            !reference.contains("//"),
            "the page references another host: {reference}"
        );
        if let Some(path) = reference.strip_prefix("/assets/") {
            let response = app
                .client
                .get(format!("{}/assets/{path}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{reference}");
            assert_eq!(
                response.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            total += response.bytes().await.unwrap().len();
            assets += 1;
        } else {
            assert!(
                reference.starts_with('?')
                    || reference.starts_with("data:")
                    || reference == "/warden",
                "unexpected reference {reference}"
            );
        }
    }
    assert_eq!(assets, 2, "one stylesheet and one script");
    eprintln!(
        "phone page weight: {total} bytes (page {} bytes)",
        body.len()
    );
    assert!(total < 100 * 1024, "the page weighs {total} bytes");
}

async fn chinese_from_accept_language_and_a_switch_remembered_in_a_cookie(app: TestApp) {
    let op = app.operator("Lang").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let path = format!("/q/{}", spaces[0].1);
    let (status, body, _) = page(&app, &path, Some("zh-CN,zh;q=0.9,en;q=0.8")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<html lang="zh-CN">"#), "{body}");
    assert!(body.contains("真实有效的停车码"), "{body}");
    assert!(
        body.contains("07:00–21:00: 前 1 小时每 15 分钟 ¥2.50，之后每 15 分钟 ¥3.75"),
        "{body}"
    );
    assert!(body.contains("每天最多 ¥60.00。"), "{body}");
    assert!(
        body.contains(r#"href="?lang=en""#),
        "a switch to English: {body}"
    );

    // The switch wins over the header and is remembered.
    let response = app
        .client
        .get(format!("{}{path}?lang=en", app.base))
        .header(ACCEPT_LANGUAGE, "zh-CN")
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("qrpark_lang=en;"), "{cookie}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(r#"<html lang="en">"#)
    );
    let body = app
        .client
        .get(format!("{}{path}", app.base))
        .header(ACCEPT_LANGUAGE, "zh-CN")
        .header("Cookie", "qrpark_lang=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(r#"<html lang="en">"#));
}

async fn an_occupied_space_says_so(app: TestApp) {
    let op = app.operator("Busy").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-pages");
    let started = start(&app, &driver, "k-pages-1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    // The page may show a start up to a second late on a read replica; not in this test.
    app.replica_caught_up().await;
    let (status, body, _) = page(&app, &format!("/q/{}", spaces[0].1), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Occupied: someone is parked here now"),
        "{body}"
    );
}

async fn forged_and_replaced_codes_get_warning_pages_not_json(app: TestApp) {
    let op = app.operator("Warn").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let (space_id, token) = &spaces[0];

    // A forged signature: the last characters of a genuine token changed.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "not-a-token", "a.b.c"] {
        let (status, body, headers) = page(&app, &format!("/q/{bad}"), None).await;
        assert_html(status, StatusCode::BAD_REQUEST, &headers, &body);
        assert!(
            body.contains("Warning: this is not a genuine parking code"),
            "{body}"
        );
        assert!(body.contains("Do not pay through it"), "{body}");
    }
    let (status, body, headers) = page(&app, &format!("/q/{forged}"), Some("zh-CN")).await;
    assert_html(status, StatusCode::BAD_REQUEST, &headers, &body);
    assert!(body.contains("警告：这不是真实的停车码"), "{body}");

    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/operator/spaces/{space_id}/qr/rotate"),
            Some(&op.key),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let (status, body, headers) = page(&app, &format!("/q/{token}"), None).await;
    assert_html(status, StatusCode::GONE, &headers, &body);
    assert!(
        body.contains("This code has been replaced: do not pay here, report it."),
        "{body}"
    );
    // The JSON API still answers JSON for the same code.
    let api = app.get(&format!("/v1/scan/{token}"), None).await;
    assert_eq!(api.problem_code(), "qr_revoked");
}

async fn a_lot_that_requires_plates_asks_for_one_on_the_page(app: TestApp) {
    let op = app.operator("Plates").await;
    let (lot, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let path = format!("/q/{}", spaces[0].1);
    let (_, body, _) = page(&app, &path, None).await;
    assert!(!body.contains("data-plate-required"), "{body}");
    assert!(body.contains("(optional)"), "{body}");
    assert_eq!(body.matches(r#"class="prov""#).count(), 31, "{body}");
    assert!(
        body.contains(r#"<details id="provinces">"#),
        "closed in English: {body}"
    );

    let patched = app
        .patch(
            &format!("/v1/operator/lots/{lot}"),
            Some(&op.key),
            serde_json::json!({"plate_required": true}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let (status, body, _) = page(&app, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-plate-required="1""#), "{body}");
    assert!(body.contains("(required here)"), "{body}");
    let input = &body[body
        .find(r#"<input class="plate" id="plate""#)
        .expect("plate input")..];
    assert!(
        input[..input.find('>').unwrap()].contains(" required"),
        "{body}"
    );
    let (_, body, _) = page(&app, &path, Some("zh-CN")).await;
    assert!(
        body.contains(r#"<details id="provinces" open>"#),
        "open for Chinese readers: {body}"
    );
    assert!(body.contains(r#"data-p="沪">沪</button>"#), "{body}");
}

async fn the_proof_of_parking_carries_its_qr_code(app: TestApp) {
    let op = app.operator("Proof").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-proof-page");
    let started = start(&app, &driver, "k-proof-page", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap();
    let proof = app
        .get(&format!("/v1/sessions/{id}/proof"), Some(&driver))
        .await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.text);
    let token = proof.body["token"].as_str().unwrap();
    let svg = proof.body["qr_svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg "), "{svg}");
    let matrix = qrpark::render::QrMatrix::build(token).unwrap();
    assert_eq!(
        svg,
        matrix.svg(),
        "the code of the token, drawn as the codes of spaces are"
    );
}

async fn the_warden_page_is_html_under_the_csp_in_both_languages(app: TestApp) {
    for (accept, tag, title) in [(None, "en", "Warden"), (Some("zh-CN"), "zh-CN", "巡查员")] {
        let (status, body, headers) = page(&app, "/warden", accept).await;
        assert_html(status, StatusCode::OK, &headers, &body);
        assert!(body.contains(&format!(r#"<html lang="{tag}">"#)), "{body}");
        assert!(body.contains(&format!("<title>{title}</title>")), "{body}");
        assert!(body.contains(r#"data-demo="1""#), "{body}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let mut scripts = 0;
        for reference in references(&body) {
            assert!(!reference.contains("//"), "another host: {reference}");
            if let Some(path) = reference.strip_prefix("/assets/") {
                let response = app
                    .client
                    .get(format!("{}/assets/{path}", app.base))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{reference}");
                scripts += usize::from(path.starts_with("warden-") && path.ends_with(".js"));
            }
        }
        assert_eq!(scripts, 1, "the warden's script: {body}");
        eprintln!("warden page ({tag}): {} bytes", body.len());
    }
    let (_, body, _) = page(&app, "/warden?lang=zh", None).await;
    assert!(body.contains("核验停车凭证"), "{body}");
    assert!(body.contains(r#"href="?lang=en""#), "{body}");
}

/// Parks two hours (25.00, settled at once without a gateway), refunds 5.00 and 2.50, and
/// reads the receipt as JSON and as the printable page in English and Chinese.
async fn the_receipt_shows_refunds_in_both_languages(app: TestApp) {
    let op = app.operator("Refunds").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-refunded");
    let started = start(&app, &driver, "k-refund", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().expect("session id").to_owned();
    app.clock.advance(TimeDelta::hours(2));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["settlement"]["status"], "settled");
    for (key, amount, reason) in [
        ("r-1", "5.00", "Barrier <stuck>"),
        ("r-2", "2.50", "Goodwill"),
    ] {
        app.clock.advance(TimeDelta::minutes(10));
        let refund = app
            .call_raw_with(
                Method::POST,
                &format!("/v1/operator/sessions/{id}/refunds"),
                &op.key,
                &[("Idempotency-Key", key)],
                json!({"amount": amount, "reason": reason})
                    .to_string()
                    .into_bytes(),
            )
            .await;
        assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text);
        assert_eq!(refund.body["status"], "refunded");
    }

    let receipt = app
        .get(&format!("/v1/sessions/{id}/receipt"), Some(&driver))
        .await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.text);
    assert_eq!(receipt.body["settlement"]["refunded"], "7.50");
    let refunds = receipt.body["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 2, "{}", receipt.text);
    assert_eq!(refunds[0]["amount"], "5.00");
    assert_eq!(refunds[0]["reason"], "Barrier <stuck>");
    assert_eq!(refunds[0]["status"], "refunded");
    assert!(
        refunds[0]["reference"]
            .as_str()
            .unwrap()
            .starts_with("QRR-")
    );
    assert_eq!(refunds[1]["amount"], "2.50");

    let html_path = |lang: &str| format!("/v1/sessions/{id}/receipt?format=html&lang={lang}");
    let en = app.get(&html_path("en"), Some(&driver)).await;
    assert_eq!(en.status, StatusCode::OK);
    let reference = refunds[0]["reference"].as_str().unwrap();
    for expected in [
        "<h2>Refunds</h2>",
        "Barrier &lt;stuck&gt;",
        "Goodwill",
        reference,
        "given back",
        "5.00 CNY",
        "2.50 CNY",
        "Refunded in total 7.50 CNY",
        ": paid 25.00 CNY.",
    ] {
        assert!(
            en.text.contains(expected),
            "{expected:?} missing: {}",
            en.text
        );
    }
    // The refund's date, on the lot's clock (UTC+8): the stop was at start + 2 h, the
    // first refund 10 min later.
    let refunded_at: chrono::DateTime<chrono::Utc> = refunds[0]["refunded_at"]
        .as_str()
        .expect("refunded_at")
        .parse()
        .expect("a time");
    let local = refunded_at
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .format("%Y-%m-%d %H:%M:%S +08:00")
        .to_string();
    assert!(en.text.contains(&local), "{local} missing: {}", en.text);
    let zh = app.get(&html_path("zh"), Some(&driver)).await;
    assert_eq!(zh.status, StatusCode::OK);
    for expected in [
        "<h2>退款</h2>",
        "已退款合计 7.50 CNY",
        "已退款",
        "Goodwill",
        "已支付 25.00 CNY",
    ] {
        assert!(
            zh.text.contains(expected),
            "{expected:?} missing: {}",
            zh.text
        );
    }
    assert!(!zh.text.contains("Refunded in total"), "{}", zh.text);
}

async fn the_page_has_an_arrears_panel_in_both_languages(app: TestApp) {
    let op = app.operator("Arrears page").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let path = format!("/q/{}", spaces[0].1);
    let (status, en, headers) = page(&app, &path, Some("en")).await;
    assert_html(status, StatusCode::OK, &headers, &en);
    assert!(en.contains(r#"id="arrears""#), "{en}");
    assert!(en.contains(r#"<ul id="arrears-list">"#), "{en}");
    assert!(en.contains("Unpaid parking fees"), "{en}");
    assert!(
        en.contains(r#""err_arrears":"You have unpaid parking fees"#),
        "{en}"
    );
    assert!(en.contains(r#""err_in_review":"#), "{en}");
    let (_, zh, _) = page(&app, &path, Some("zh-CN")).await;
    assert!(zh.contains("未付停车费"), "{zh}");
    assert!(zh.contains(r#""err_arrears":"您有未付的停车费"#), "{zh}");
}
