//! The operator console (`/console`): sign-in and its session rules (hashed, cookie flags,
//! CSRF, idle expiry, revocation, sign-out, rate limit, audit), operator isolation, the pages
//! driving the operator API, `POST /v1/operator/tariffs/validate` and
//! `GET /v1/operator/metrics` against hand-computed figures.

use std::sync::Arc;

use chrono::TimeDelta;
use qrpark::identity::operator_key;
use qrpark::store::{Db, operators};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, TestOperator, both_backends, qr_token, spec_tariff};
use crate::sessions::{parking_lot, start};

both_backends!(
    signing_in_opens_a_hashed_session_with_strict_cookies,
    wrong_keys_and_forged_sign_in_forms_are_refused,
    forms_without_the_csrf_token_are_refused,
    sessions_end_after_12_hours_idle,
    revoking_the_key_ends_its_sessions,
    signing_out_ends_the_session,
    the_cookie_is_secure_behind_https,
    sign_in_attempts_are_rate_limited,
    operators_see_only_their_own_in_the_console,
    the_console_runs_a_lot,
    validate_answers_the_problems_publishing_would,
    metrics_follow_the_cds_definitions,
    metrics_ranges_are_bounded,
    sessions_are_paged_with_a_cursor,
    a_stopped_session_is_refunded_once_from_its_row,
);

/// A stopped session's row offers a refund; the form's key makes a second send of the same
/// form refund nothing more, and too much is refused with the API's problem.
async fn a_stopped_session_is_refunded_once_from_its_row(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let (lot, spaces) = parking_lot(&app, &op, &["A"]).await;
    let driver = app.driver_token("driver-1");
    let started = start(&app, &driver, "k", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.body["fee"]["total"], "10.00", "{}", stopped.text);
    let mut browser = Browser::new(&app.base);
    let csrf = browser.sign_in(&op.key).await;
    let list = browser
        .get(&format!("/console/sessions?lot={lot}&status=stopped"))
        .await;
    let action = format!("/console/sessions/{id}/refund");
    assert!(list.text.contains(&action), "{}", list.text);
    let key = list
        .text
        .split("name=\"key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries its key")
        .to_owned();
    let fields = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("amount", "4.00"),
        ("reason", "the barrier was stuck"),
    ];
    for _ in 0..2 {
        let refunded = browser.post(&action, &fields).await;
        assert_eq!(refunded.status, StatusCode::SEE_OTHER, "{}", refunded.text);
        assert!(refunded.location().contains("ok=refunded"));
    }
    let too_much = browser
        .post(
            &action,
            &[
                ("csrf", csrf.as_str()),
                ("key", "another-form"),
                ("amount", "7.00"),
                ("reason", "again"),
            ],
        )
        .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refunds = app
        .get(
            &format!("/v1/operator/sessions/{id}/refunds"),
            Some(&op.key),
        )
        .await;
    assert_eq!(refunds.status, StatusCode::OK, "{}", refunds.text);
    let made: Vec<&Value> = refunds.body["refunds"].as_array().unwrap().iter().collect();
    assert_eq!(made.len(), 1, "one form, one refund: {}", refunds.text);
    assert_eq!(made[0]["amount"], "4.00");
    assert_eq!(made[0]["reason"], "the barrier was stuck");
}

/// A browser without JavaScript: keeps the console's cookies, follows nothing by itself.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

/// A page as answered.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Page {
    /// Where a redirect points.
    #[track_caller]
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location: {} {}", self.status, self.text))
    }

    /// The `Set-Cookie` header that sets `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The CSRF token the page's forms carry.
    #[track_caller]
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self
            .text
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field: {}", self.text));
        self.text[at + marker.len()..]
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE).iter() {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .fold(
                form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(k, v);
                    s
                },
            )
            .finish();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        Page {
            status,
            headers,
            text: response.text().await.unwrap(),
        }
    }

    /// Signs in with `key`, asserting it works; returns the CSRF token of the lots page.
    async fn sign_in(&mut self, key: &str) -> String {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text);
        let answer = self
            .post("/console/sign-in", &[("csrf", &form.csrf()), ("key", key)])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        assert_eq!(answer.location(), "/console/lots");
        let lots = self.get("/console/lots").await;
        assert_eq!(lots.status, StatusCode::OK, "{}", lots.text);
        lots.csrf()
    }
}

async fn session_rows(db: &Db) -> Vec<Vec<u8>> {
    let sql = "select token_hash from console_session";
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .unwrap()
}

async fn signing_in_opens_a_hashed_session_with_strict_cookies(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    let form = browser.get("/console/sign-in").await;
    let pre = form
        .set_cookie("qrpark_console_pre")
        .expect("pre-sign-in cookie");
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let answer = browser
        .post(
            "/console/sign-in",
            &[("csrf", &form.csrf()), ("key", &op.key)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let cookie = answer.set_cookie("qrpark_console").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // The database holds the token's hash, never the token.
    let token = browser.cookie("qrpark_console").unwrap();
    let rows = session_rows(&app.db).await;
    assert_eq!(rows, vec![Sha256::digest(token.as_bytes()).to_vec()]);
    assert_ne!(rows[0], token.as_bytes());
    // Signed in: the console answers with the operator's pages.
    let lots = browser.get("/console/lots").await;
    assert_eq!(lots.status, StatusCode::OK);
    assert!(lots.text.contains("New lot"), "{}", lots.text);
    assert!(
        lots.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let events = app.audit_payloads("console.signed_in").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["operator_id"], op.id.to_string());
    assert!(
        !events[0].to_string().contains(&token),
        "no token in the log"
    );
    // Without a session, every console page sends to the sign-in page.
    let mut stranger = Browser::new(&app.base);
    let away = stranger.get("/console/lots").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert!(away.location().starts_with("/console/sign-in"));
}

async fn wrong_keys_and_forged_sign_in_forms_are_refused(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    for key in [
        "nonsense".to_owned(),
        operator_key::generate().plaintext,
        String::new(),
    ] {
        let form = browser.get("/console/sign-in").await;
        let answer = browser
            .post("/console/sign-in", &[("csrf", &form.csrf()), ("key", &key)])
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(
            answer.text.contains("unknown or revoked"),
            "{}",
            answer.text
        );
        assert!(answer.set_cookie("qrpark_console").is_none());
    }
    // A sign-in form posted without the token of its own page (login CSRF) is refused.
    let mut forged = Browser::new(&app.base);
    let answer = forged
        .post(
            "/console/sign-in",
            &[("csrf", &"a".repeat(64)), ("key", &op.key)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie("qrpark_console").is_none());
    let form = forged.get("/console/sign-in").await;
    let wrong = form.csrf().replace(|c: char| c != '0', "0");
    let answer = forged
        .post("/console/sign-in", &[("csrf", &wrong), ("key", &op.key)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(session_rows(&app.db).await.is_empty());
}

async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    let csrf = browser.sign_in(&op.key).await;
    let lot = [
        ("name", "North"),
        ("timezone", "Asia/Shanghai"),
        ("currency", "CNY"),
    ];
    let wrong = "0".repeat(64);
    for token in [None, Some(wrong.as_str()), Some("")] {
        let mut fields = lot.to_vec();
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let answer = browser.post("/console/lots", &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{token:?}");
    }
    let none = app.get("/v1/operator/lots", Some(&op.key)).await;
    assert_eq!(none.body["lots"], json!([]), "nothing was created");
    // Sign-out is a form too.
    let answer = browser.post("/console/sign-out", &[("csrf", &wrong)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // With the session's token the same form works.
    let mut fields = lot.to_vec();
    fields.push(("csrf", &csrf));
    let answer = browser.post("/console/lots", &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let created = app.get("/v1/operator/lots", Some(&op.key)).await;
    assert_eq!(created.body["lots"][0]["name"], "North");
    assert_eq!(
        answer.location(),
        format!(
            "/console/lots/{}?ok=created",
            created.body["lots"][0]["id"].as_str().unwrap()
        )
    );
}

async fn sessions_end_after_12_hours_idle(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&op.key).await;
    // Each request moves the idle clock: 11 hours, twice, keeps the session.
    for _ in 0..2 {
        app.clock.advance(TimeDelta::hours(11));
        let page = browser.get("/console/lots").await;
        assert_eq!(page.status, StatusCode::OK, "still signed in");
    }
    app.clock.advance(TimeDelta::hours(12));
    let page = browser.get("/console/lots").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location().contains("ok=expired"),
        "{}",
        page.location()
    );
    let again = browser.get("/console/sessions").await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "the cookie was cleared"
    );
}

async fn revoking_the_key_ends_its_sessions(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let owner = operators::authenticate(&app.db, &operator_key::hash(&op.key))
        .await
        .unwrap()
        .unwrap();
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&op.key).await;
    // Another key of the same operator keeps its own session.
    let other_key = operator_key::generate();
    operators::add_key(&app.db, op.id, &other_key.hash, app.now())
        .await
        .unwrap();
    let mut other = Browser::new(&app.base);
    other.sign_in(&other_key.plaintext).await;

    operators::revoke_key(&app.db, op.id, owner.operator_key_id, app.now())
        .await
        .unwrap()
        .expect("the key exists");
    let page = browser.get("/console/lots").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert!(page.location().starts_with("/console/sign-in"));
    assert_eq!(session_rows(&app.db).await.len(), 1, "only the other key's");
    assert_eq!(other.get("/console/lots").await.status, StatusCode::OK);
    // And the revoked key cannot sign in again.
    let form = browser.get("/console/sign-in").await;
    let answer = browser
        .post(
            "/console/sign-in",
            &[("csrf", &form.csrf()), ("key", &op.key)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

async fn signing_out_ends_the_session(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    let csrf = browser.sign_in(&op.key).await;
    let token = browser.cookie("qrpark_console").unwrap();
    let answer = browser.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.location().contains("ok=signed_out"));
    let cleared = answer.set_cookie("qrpark_console").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(session_rows(&app.db).await.is_empty());
    // The old cookie, replayed, opens nothing.
    browser.cookies.push(("qrpark_console".into(), token));
    let page = browser.get("/console/lots").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let events = app.audit_payloads("console.signed_out").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["operator_id"], op.id.to_string());
}

async fn the_cookie_is_secure_behind_https(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut config = (*app.state.config).clone();
    config.public_url = Some("https://park.example".into());
    let state = qrpark::AppState {
        config: Arc::new(config),
        ..app.state.clone()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, qrpark::app(state)).await.unwrap() });
    let mut browser = Browser::new(&base);
    let form = browser.get("/console/sign-in").await;
    assert!(
        form.set_cookie("qrpark_console_pre")
            .unwrap()
            .contains("; Secure")
    );
    let answer = browser
        .post(
            "/console/sign-in",
            &[("csrf", &form.csrf()), ("key", &op.key)],
        )
        .await;
    let cookie = answer.set_cookie("qrpark_console").expect("session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

async fn sign_in_attempts_are_rate_limited(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    let burst = qrpark::http::console::limiter::BURST;
    for _ in 0..burst {
        let form = browser.get("/console/sign-in").await;
        let answer = browser
            .post(
                "/console/sign-in",
                &[("csrf", &form.csrf()), ("key", "qrpk_wrong")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    // Over the budget, even the right key waits.
    let form = browser.get("/console/sign-in").await;
    let answer = browser
        .post(
            "/console/sign-in",
            &[("csrf", &form.csrf()), ("key", &op.key)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=qrpark::http::console::limiter::REFILL_SECONDS).contains(&wait));
    assert!(answer.set_cookie("qrpark_console").is_none());
}

/// Operator A's lot with a tariff, two spaces and an active session.
async fn other_operators_lot(
    app: &TestApp,
    a: &TestOperator,
) -> (String, Vec<(String, String)>, String) {
    let (lot, spaces) = parking_lot(app, a, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-a");
    let started = start(app, &driver, "k1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let session = started.body["id"].as_str().unwrap().to_owned();
    (lot, spaces, session)
}

async fn operators_see_only_their_own_in_the_console(app: TestApp) {
    let a = app.operator("Alpha").await;
    let b = app.operator("Beta").await;
    let (lot, spaces, session) = other_operators_lot(&app, &a).await;
    let space = &spaces[0].0;
    let mut browser = Browser::new(&app.base);
    let csrf = browser.sign_in(&b.key).await;
    for path in [
        format!("/console/lots/{lot}"),
        format!("/console/lots/{lot}/tariff"),
        format!("/console/lots/{lot}/occupancy"),
        format!("/console/lots/{lot}/qr-sheet.pdf"),
        format!("/console/spaces/{space}/rotate"),
        format!("/console/spaces/{space}/qr.png"),
        format!("/console/spaces/{space}/qr.svg"),
        format!("/console/sessions?lot={lot}"),
        format!("/console/metrics.csv?lot={lot}"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
        assert!(!page.text.contains("Jing"), "{path} shows A's lot");
    }
    for (path, fields) in [
        (
            format!("/console/lots/{lot}/spaces"),
            vec![("codes", "X-1")],
        ),
        (format!("/console/lots/{lot}"), vec![("name", "Mine now")]),
        (format!("/console/spaces/{space}/rotate"), vec![]),
        (
            format!("/console/spaces/{space}/status"),
            vec![("status", "out_of_service")],
        ),
        (
            format!("/console/sessions/{session}/stop"),
            vec![("reason", "mine")],
        ),
        (
            format!("/console/lots/{lot}/tariff/publish"),
            vec![("document", "{}"), ("confirm", "yes")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let page = browser.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
    }
    // A's things are untouched.
    let space_now = app
        .get(&format!("/v1/operator/spaces/{space}"), Some(&a.key))
        .await;
    assert_eq!(space_now.body["status"], "active");
    assert_eq!(space_now.body["qr_version"], 1);
    let sessions = app
        .get("/v1/operator/sessions?status=active", Some(&a.key))
        .await;
    assert_eq!(sessions.body["sessions"].as_array().unwrap().len(), 1);
    // B's own lists show nothing of A's.
    let list = browser.get("/console/sessions").await;
    assert!(!list.text.contains(&session), "{}", list.text);
    // The JSON API answers the same.
    let metrics = app
        .get(&format!("/v1/operator/metrics?lot={lot}"), Some(&b.key))
        .await;
    assert_eq!(metrics.status, StatusCode::NOT_FOUND);
    assert_eq!(metrics.problem_code(), "not_found");
    let validate = app
        .post(
            &format!("/v1/operator/tariffs/validate?lot={lot}"),
            Some(&b.key),
            spec_tariff(),
        )
        .await;
    assert_eq!(validate.status, StatusCode::NOT_FOUND);
}

async fn the_console_runs_a_lot(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let mut browser = Browser::new(&app.base);
    let csrf = browser.sign_in(&op.key).await;
    let created = browser
        .post(
            "/console/lots",
            &[
                ("csrf", &csrf),
                ("name", "People's Square"),
                ("timezone", "Asia/Shanghai"),
                ("currency", "CNY"),
                ("plate_required", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let lot_path = created.location().split('?').next().unwrap().to_owned();
    let lot = lot_path.rsplit('/').next().unwrap().to_owned();
    let api_lot = app
        .get(&format!("/v1/operator/lots/{lot}"), Some(&op.key))
        .await;
    assert_eq!(api_lot.body["plate_required"], true);

    // A bad range: an error on the page, nothing created.
    let bad = browser
        .post(
            &format!("{lot_path}/spaces"),
            &[("csrf", &csrf), ("codes", "A-009..A-001")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text.contains("must not be larger than the last"),
        "{}",
        bad.text
    );
    let added = browser
        .post(
            &format!("{lot_path}/spaces"),
            &[("csrf", &csrf), ("codes", "A-001..A-005")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    // All or nothing: a range overlapping existing codes adds none.
    let overlap = browser
        .post(
            &format!("{lot_path}/spaces"),
            &[("csrf", &csrf), ("codes", "A-004..A-007")],
        )
        .await;
    assert_eq!(overlap.status, StatusCode::CONFLICT);
    assert!(overlap.text.contains("A-004"), "{}", overlap.text);
    let spaces = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    let spaces = spaces.body["spaces"].as_array().unwrap().clone();
    let codes: Vec<&str> = spaces.iter().map(|s| s["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["A-001", "A-002", "A-003", "A-004", "A-005"]);
    let space = spaces[0]["id"].as_str().unwrap().to_owned();
    let old_token = qr_token(spaces[0]["qr_url"].as_str().unwrap()).to_owned();

    // The lot page: occupancy, the spaces and their codes.
    let page = browser.get(&lot_path).await;
    assert!(page.text.contains("id=\"occ-spaces\">5<"), "{}", page.text);
    let occupancy = browser.get(&format!("{lot_path}/occupancy")).await;
    let occupancy: Value = serde_json::from_str(&occupancy.text).unwrap();
    assert_eq!(occupancy["free"], 5);
    let png = browser
        .get(&format!("/console/spaces/{space}/qr.png"))
        .await;
    assert_eq!(png.headers["content-type"], "image/png");
    let sheet = browser.get(&format!("{lot_path}/qr-sheet.pdf")).await;
    assert_eq!(sheet.headers["content-type"], "application/pdf");

    // Out of service, and back.
    let out = browser
        .post(
            &format!("/console/spaces/{space}/status"),
            &[("csrf", &csrf), ("status", "out_of_service")],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let api_space = app
        .get(&format!("/v1/operator/spaces/{space}"), Some(&op.key))
        .await;
    assert_eq!(api_space.body["status"], "out_of_service");

    // Replacing a code asks first, saying the sticker stops working; then the old one is 410.
    let confirm = browser
        .get(&format!("/console/spaces/{space}/rotate"))
        .await;
    assert!(confirm.text.contains("stops working"), "{}", confirm.text);
    let rotated = browser
        .post(
            &format!("/console/spaces/{space}/rotate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let scan = app.get(&format!("/v1/scan/{old_token}"), None).await;
    assert_eq!(scan.status, StatusCode::GONE);

    // A tariff with a problem: shown at its path, nothing published.
    let mut broken = spec_tariff();
    broken["rules"][1]["price"]["steps"][0]["amount"] = json!("2.505");
    let check = browser
        .post(
            &format!("{lot_path}/tariff/check"),
            &[
                ("csrf", &csrf),
                ("document", &broken.to_string()),
                ("arrival", "2026-09-29T10:00"),
            ],
        )
        .await;
    assert_eq!(check.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        check.text.contains("$.rules[1].price.steps[0].amount"),
        "{}",
        check.text
    );
    let not_json = browser
        .post(
            &format!("{lot_path}/tariff/check"),
            &[("csrf", &csrf), ("document", "{\"rules\": [")],
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Fixed: the preview, then publishing only once confirmed.
    let fixed = spec_tariff().to_string();
    let preview = browser
        .post(
            &format!("{lot_path}/tariff/check"),
            &[
                ("csrf", &csrf),
                ("document", &fixed),
                ("arrival", "2026-09-29T10:00"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    assert!(
        preview
            .text
            .contains("<svg class=\"chart\" id=\"fee-chart\""),
        "{}",
        preview.text
    );
    // Two hours from 10:00 under the spec tariff: 4 x 2.50 + 4 x 3.75 = 25.00.
    assert!(
        preview
            .text
            .contains("<th scope=\"row\">2 h</th><td>¥25.00</td>"),
        "{}",
        preview.text
    );
    let unconfirmed = browser
        .post(
            &format!("{lot_path}/tariff/publish"),
            &[("csrf", &csrf), ("document", &fixed)],
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let none = app
        .get(&format!("/v1/operator/lots/{lot}/tariff"), Some(&op.key))
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let published = browser
        .post(
            &format!("{lot_path}/tariff/publish"),
            &[("csrf", &csrf), ("document", &fixed), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.text
    );
    let mut second = spec_tariff();
    second["grace_minutes"] = json!(10);
    let published = browser
        .post(
            &format!("{lot_path}/tariff/publish"),
            &[
                ("csrf", &csrf),
                ("document", &second.to_string()),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(published.status, StatusCode::SEE_OTHER);
    let tariff = app
        .get(&format!("/v1/operator/lots/{lot}/tariff"), Some(&op.key))
        .await;
    assert_eq!(tariff.body["version"], 2);
    let diff = browser
        .get(&format!("{lot_path}/tariff/diff?a=1&b=2"))
        .await;
    assert!(
        diff.text.contains("<code>$.grace_minutes</code>"),
        "{}",
        diff.text
    );
    assert!(diff.text.contains("<code>15</code>") && diff.text.contains("<code>10</code>"));

    // A session appears in the list, and is stopped with a reason.
    let code = &spaces[1];
    let driver = app.driver_token("driver-1");
    let response = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .bearer_auth(&driver)
        .header("Idempotency-Key", "k1")
        .json(&json!({"qr": qr_token(code["qr_url"].as_str().unwrap()), "plate": "沪A12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let session: Value = response.json().await.unwrap();
    let session = session["id"].as_str().unwrap().to_owned();
    let list = browser
        .get(&format!("/console/sessions?lot={lot}&status=active"))
        .await;
    assert!(list.text.contains(&session), "{}", list.text);
    assert!(list.text.contains("沪A12345"));
    let stopped = browser
        .post(
            &format!("/console/sessions/{session}/stop"),
            &[
                ("csrf", &csrf),
                ("reason", "blocking the exit"),
                ("back", &format!("lot={lot}")),
            ],
        )
        .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.text);
    assert!(
        stopped
            .location()
            .starts_with(&format!("/console/sessions?lot={lot}"))
    );
    let ended = app.get("/v1/operator/sessions", Some(&op.key)).await;
    assert_eq!(ended.body["sessions"][0]["ended_by"], "operator");
    assert_eq!(
        ended.body["sessions"][0]["stop_reason"],
        "blocking the exit"
    );

    // Metrics: charts of the same figures the API gives.
    let metrics = browser
        .get(&format!(
            "/console/metrics?lot={lot}&date=2026-09-29&days=1"
        ))
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    for chart in [
        "sessions-chart",
        "occupancy-chart",
        "dwell-chart",
        "revenue-chart",
    ] {
        assert!(metrics.text.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    // Chinese, by the switch.
    let zh = browser.get("/console/lots?lang=zh").await;
    assert!(
        zh.text.contains("lang=\"zh-CN\"") && zh.text.contains("新建停车场"),
        "{}",
        zh.text
    );
}

async fn sessions_are_paged_with_a_cursor(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let (lot, spaces) = parking_lot(&app, &op, &["A"]).await;
    let driver = app.driver_token("driver-1");
    let mut ids = Vec::new();
    for i in 0..55 {
        let started = start(&app, &driver, &format!("k{i}"), &spaces[0].1).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        let id = started.body["id"].as_str().unwrap().to_owned();
        app.clock.advance(TimeDelta::minutes(1));
        assert_eq!(app.stop(&driver, &id).await.status, StatusCode::OK);
        ids.push(id);
    }
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&op.key).await;
    let first = browser
        .get(&format!("/console/sessions?lot={lot}&status=stopped"))
        .await;
    let rows = |page: &Page| page.text.matches("data-session=").count();
    assert_eq!(rows(&first), 50);
    assert!(
        first.text.contains(&ids[54]) && !first.text.contains(&ids[4]),
        "newest first"
    );
    let marker = "id=\"next-page\" href=\"";
    let at = first.text.find(marker).expect("a next page") + marker.len();
    let next = first.text[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    // A session started meanwhile does not shift the next page.
    let late = start(&app, &driver, "late", &spaces[0].1).await;
    assert_eq!(late.status, StatusCode::CREATED);
    let second = browser.get(&next).await;
    assert_eq!(rows(&second), 5, "{}", second.text);
    for id in &ids[..5] {
        assert!(second.text.contains(id.as_str()));
    }
    assert!(!second.text.contains("id=\"next-page\""));
    // Filters: the active one only; a time window in the lot's local time.
    let active = browser
        .get(&format!("/console/sessions?lot={lot}&status=active"))
        .await;
    assert_eq!(rows(&active), 1);
    let window = browser
        .get(&format!(
            "/console/sessions?lot={lot}&from=2026-09-29T10:00&to=2026-09-29T10:03"
        ))
        .await;
    assert_eq!(rows(&window), 3, "10:00, 10:01 and 10:02 local");
}

async fn validate_answers_the_problems_publishing_would(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let lot = app.lot(&op, "West", "Asia/Shanghai", "CNY").await;
    let path = format!("/v1/operator/tariffs/validate?lot={lot}");
    let valid = app.post(&path, Some(&op.key), spec_tariff()).await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.text);
    assert_eq!(valid.body["valid"], true);
    assert_eq!(valid.body["tariff"]["currency"], "CNY");
    // Without a lot, the document alone is checked.
    let alone = app
        .post(
            "/v1/operator/tariffs/validate",
            Some(&op.key),
            spec_tariff(),
        )
        .await;
    assert_eq!(alone.status, StatusCode::OK);
    let mut broken = spec_tariff();
    broken["grace_minutes"] = json!(-1);
    broken["rules"][2]["price"]["every_minutes"] = json!(0);
    let checked = app.post(&path, Some(&op.key), broken.clone()).await;
    let published = app
        .put(
            &format!("/v1/operator/lots/{lot}/tariff"),
            Some(&op.key),
            broken,
        )
        .await;
    assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(checked.problem_code(), "tariff_invalid");
    assert_eq!(published.problem_code(), "tariff_invalid");
    assert_eq!(
        checked.body["errors"], published.body["errors"],
        "the same problems"
    );
    assert!(checked.error_paths().len() >= 2, "{}", checked.text);
    // The lot's currency is checked like publishing checks it.
    let mut euros = spec_tariff();
    euros["currency"] = json!("EUR");
    let euros = app.post(&path, Some(&op.key), euros).await;
    assert_eq!(euros.problem_code(), "tariff_invalid");
    assert_eq!(euros.error_paths(), ["$.currency"]);
    // Nothing was published by checking.
    let tariff = app
        .get(&format!("/v1/operator/lots/{lot}/tariff"), Some(&op.key))
        .await;
    assert_eq!(tariff.status, StatusCode::NOT_FOUND);
    assert!(app.audit_payloads("tariff.published").await.is_empty());
    // Only operators may ask.
    let anonymous = app.post(&path, None, spec_tariff()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let not_json = app
        .call_raw(
            reqwest::Method::POST,
            &path,
            Some(&op.key),
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(not_json.problem_code(), "malformed_json");
}

/// The sessions of the CDS example worked by hand in docs/console.md, in a lot of 4 spaces.
async fn measured_lot(app: &TestApp, op: &TestOperator) -> String {
    let (lot, spaces) = parking_lot(app, op, &["A", "B", "C", "D"]).await;
    let driver = |n: &str| app.driver_token(n);
    let started_at = |app: &TestApp| app.now();
    assert_eq!(
        started_at(app).to_rfc3339(),
        "2026-09-29T02:00:00+00:00",
        "10:00 in Shanghai"
    );
    // 10:00-10:30 on A.
    let one = start(app, &driver("d1"), "k", &spaces[0].1).await;
    assert_eq!(one.status, StatusCode::CREATED);
    app.clock.advance(TimeDelta::minutes(30));
    let stop = app
        .stop(&driver("d1"), one.body["id"].as_str().unwrap())
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    // 10:45-11:15 on B.
    app.clock.advance(TimeDelta::minutes(15));
    let two = start(app, &driver("d2"), "k", &spaces[1].1).await;
    assert_eq!(two.status, StatusCode::CREATED);
    app.clock.advance(TimeDelta::minutes(30));
    let stop = app
        .stop(&driver("d2"), two.body["id"].as_str().unwrap())
        .await;
    assert_eq!(stop.status, StatusCode::OK);
    // 11:30 on C, still parked at 11:50.
    app.clock.advance(TimeDelta::minutes(15));
    let three = start(app, &driver("d3"), "k", &spaces[2].1).await;
    assert_eq!(three.status, StatusCode::CREATED);
    app.clock.advance(TimeDelta::minutes(20));
    lot
}

async fn metrics_follow_the_cds_definitions(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let lot = measured_lot(&app, &op).await;
    let range = "from=2026-09-29T10:00:00%2B08:00&to=2026-09-29T12:00:00%2B08:00";
    let answer = app
        .get(
            &format!("/v1/operator/metrics?lot={lot}&{range}"),
            Some(&op.key),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let m = &answer.body;
    assert_eq!(m["spaces"], 4);
    assert_eq!(m["timezone"], "Asia/Shanghai");
    let hours = m["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 2);
    // Hour 10: two sessions started, both ended after 30 minutes; 30 + 15 occupied minutes
    // of 4 x 60: 18.75 %.
    assert_eq!(
        hours[0],
        json!({"date": "2026-09-29", "hour": 10, "start": "2026-09-29T02:00:00Z",
               "total_sessions": 2, "turnover": 2.0, "average_dwell_time": 30.0,
               "occupancy_percent": 18.75})
    );
    // Hour 11: one session started (active: no dwell yet); 15 + 20 minutes of 240: 14.58 %.
    assert_eq!(hours[1]["total_sessions"], 1);
    assert_eq!(hours[1]["average_dwell_time"], Value::Null);
    assert_eq!(hours[1]["occupancy_percent"], 14.58);
    // Revenue: the two stopped sessions' fees on their local day. Both last 30 minutes,
    // past the 15 minutes of grace, so both pay two quarter hours at 2.50: 5.00 each.
    let ended = app
        .get("/v1/operator/sessions?status=stopped", Some(&op.key))
        .await;
    let fees: Vec<&str> = ended.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["fee_total"].as_str().unwrap())
        .collect();
    assert_eq!(fees, ["5.00", "5.00"]);
    assert_eq!(
        m["revenue"],
        json!([{"date": "2026-09-29", "sessions": 2, "total": "10.00"}])
    );

    let csv = app
        .get(
            &format!("/v1/operator/metrics?lot={lot}&{range}&format=csv"),
            Some(&op.key),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.cds+csv")
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines[0],
        "curb_place_type,curb_place_id,metric_type,date,hour,value"
    );
    for row in [
        format!("zone,{lot},total_sessions,2026-09-29,10,2"),
        format!("zone,{lot},turnover,2026-09-29,10,2"),
        format!("zone,{lot},average_dwell_time,2026-09-29,10,30"),
        format!("zone,{lot},occupancy_percent,2026-09-29,10,18.75"),
        format!("zone,{lot},total_sessions,2026-09-29,11,1"),
        format!("zone,{lot},occupancy_percent,2026-09-29,11,14.58"),
    ] {
        assert!(
            lines.contains(&row.as_str()),
            "{row} missing:\n{}",
            csv.text
        );
    }
    assert_eq!(
        lines.len(),
        1 + 4 + 3,
        "no dwell row for hour 11:\n{}",
        csv.text
    );
    // The console's CSV is the same file.
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&op.key).await;
    let console_csv = browser
        .get(&format!(
            "/console/metrics.csv?lot={lot}&date=2026-09-29&days=1"
        ))
        .await;
    for line in &lines[1..] {
        assert!(console_csv.text.contains(line), "{line}");
    }
}

async fn metrics_ranges_are_bounded(app: TestApp) {
    let op = app.operator("Console Parking").await;
    let lot = app.lot(&op, "West", "Asia/Shanghai", "CNY").await;
    let base = format!("/v1/operator/metrics?lot={lot}");
    for (query, path) in [
        ("&from=2026-09-29T10:00:00Z&to=2026-09-29T10:00:00Z", "$.to"),
        ("&from=2026-09-29T10:00:00Z&to=2026-09-29T09:00:00Z", "$.to"),
        ("&from=2026-09-01T00:00:00Z&to=2026-10-02T01:00:00Z", "$.to"),
        ("&from=yesterday", "$.from"),
        ("&format=xml", "$.format"),
    ] {
        let answer = app.get(&format!("{base}{query}"), Some(&op.key)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(answer.problem_code(), "validation_failed", "{query}");
        assert_eq!(answer.error_paths(), [path], "{query}: {}", answer.text);
    }
    // Instants inside an hour widen the range to whole local hours.
    let widened = app
        .get(
            &format!("{base}&from=2026-09-29T10:30:00Z&to=2026-09-29T12:15:00Z"),
            Some(&op.key),
        )
        .await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.text);
    assert_eq!(widened.body["from"], "2026-09-29T10:00:00Z");
    assert_eq!(widened.body["to"], "2026-09-29T13:00:00Z");
    assert_eq!(widened.body["hours"].as_array().unwrap().len(), 3);
    let no_lot = app.get("/v1/operator/metrics", Some(&op.key)).await;
    assert_eq!(no_lot.error_paths(), ["$.lot"]);
    // 31 days exactly is allowed; the default is the last 24 local hours.
    let month = app
        .get(
            &format!("{base}&from=2026-09-01T00:00:00Z&to=2026-10-02T00:00:00Z"),
            Some(&op.key),
        )
        .await;
    assert_eq!(month.status, StatusCode::OK, "{}", month.text);
    assert_eq!(month.body["hours"].as_array().unwrap().len(), 31 * 24);
    let default = app.get(&base, Some(&op.key)).await;
    assert_eq!(default.body["hours"].as_array().unwrap().len(), 24);
    assert_eq!(default.body["to"], "2026-09-29T03:00:00Z");
    let anonymous = app.get(&base, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
