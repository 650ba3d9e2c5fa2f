//! Drivers park: start on a scanned code, watch the fee, stop, settle, receipt. Every rule of
//! idempotency, ownership and the one-active-session-per-space invariant; the ledger
//! balances after every test.

use chrono::TimeDelta;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Answer, TestApp, TestOperator, both_backends, qr_token, spec_tariff};

both_backends!(
    a_whole_session_is_priced_settled_and_receipted,
    one_active_session_per_space,
    idempotency_keys_follow_the_draft,
    other_drivers_sessions_are_invisible,
    bad_city_tokens_are_refused,
    codes_and_spaces_that_cannot_start,
    concurrent_starts_and_stops_settle_once,
    operators_see_their_sessions_and_occupancy,
    concurrent_starts_with_one_key_start_once,
    a_failed_start_leaves_no_claim_behind,
);

/// A lot with the spec's tariff and spaces; returns (lot id, [(space id, qr token)]).
pub async fn parking_lot(
    app: &TestApp,
    op: &TestOperator,
    codes: &[&str],
) -> (String, Vec<(String, String)>) {
    let lot = app.lot(op, "Jing'an Temple", "Asia/Shanghai", "CNY").await;
    let published = app.publish_tariff(op, &lot, spec_tariff()).await;
    assert_eq!(published["version"], 1);
    let spaces = app
        .create_spaces(op, &lot, codes)
        .await
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                qr_token(s["qr_url"].as_str().unwrap()).to_owned(),
            )
        })
        .collect();
    (lot, spaces)
}

/// Starts a session as `driver` with an idempotency key.
pub async fn start(app: &TestApp, driver: &str, key: &str, qr: &str) -> Answer {
    let response = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .bearer_auth(driver)
        .header("Idempotency-Key", key)
        .json(&json!({"qr": qr}))
        .send()
        .await
        .unwrap();
    crate::helpers::TestApp::decode_response(response).await
}

/// Debits equal credits per currency over the whole ledger.
pub async fn assert_ledger_balanced(app: &TestApp) {
    for (currency, debits, credits) in qrpark::store::ledger::totals(&app.db).await.unwrap() {
        assert_eq!(debits, credits, "ledger out of balance in {currency}");
    }
}

async fn a_whole_session_is_priced_settled_and_receipted(app: TestApp) {
    let op = app.operator("Jing'an").await;
    let (lot, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");

    let started = start(&app, &driver, "tap-1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    assert_eq!(started.body["status"], "active");
    assert_eq!(started.body["lot_id"], lot.as_str());
    assert_eq!(started.body["space_code"], "A-1");
    assert_eq!(started.body["started_at"], "2026-09-29T02:00:00Z");
    // max_stay_minutes 1440: leave by the same time tomorrow.
    assert_eq!(started.body["leave_by"], "2026-09-30T02:00:00Z");
    assert_eq!(started.body["tariff_version"], 1);

    // An hour later (Tue 11:00 local): 4 quarter hours of the first step, 4 x 2.50.
    app.clock.advance(TimeDelta::hours(1));
    let watching = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(watching.status, StatusCode::OK);
    assert_eq!(watching.body["fee"]["total"], "10.00");
    assert_eq!(watching.body["settlement"], json!(null));

    // The operator publishes a dearer tariff meanwhile: the session keeps version 1.
    let mut dearer = spec_tariff();
    dearer["rules"][1]["price"]["steps"][1]["amount"] = json!("9.99");
    let published = app.publish_tariff(&op, &lot, dearer).await;
    assert_eq!(published["version"], 2);
    // It is in force: the same two hours would now cost 4 x 2.50 + 4 x 9.99.
    let quoted = app
        .post(
            &format!("/v1/lots/{lot}/quote"),
            None,
            json!({"start": "2026-09-29T02:00:00Z", "end": "2026-09-29T04:00:00Z"}),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.text);
    assert_eq!(quoted.body["tariff_version"], 2);
    assert_eq!(quoted.body["total"], "49.96");

    // Stop at 12:00: the spec's example, 25.00.
    app.clock.advance(TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["status"], "stopped");
    assert_eq!(stopped.body["ended_at"], "2026-09-29T04:00:00Z");
    assert_eq!(stopped.body["fee"]["total"], "25.00");
    assert_eq!(stopped.body["fee"]["tariff_version"], 1);
    assert_eq!(stopped.body["fee"]["lines"][0]["rule"], "day");
    assert_eq!(stopped.body["settlement"]["status"], "settled");
    assert_eq!(stopped.body["settlement"]["amount"], "25.00");
    let reference = stopped.body["settlement"]["reference"].as_str().unwrap();
    assert!(reference.starts_with("QRP-"), "{reference}");

    // A repeated stop, even later, answers exactly the same.
    app.clock.advance(TimeDelta::hours(3));
    let again = app.stop(&driver, &id).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, stopped.body);

    let receipt = app
        .get(&format!("/v1/sessions/{id}/receipt"), Some(&driver))
        .await;
    assert_eq!(receipt.status, StatusCode::OK);
    assert_eq!(receipt.body["fee"]["total"], "25.00");
    assert_eq!(receipt.body["space_code"], "A-1");
    assert_eq!(receipt.body["settlement"]["reference"], reference);
    let html = app
        .get(
            &format!("/v1/sessions/{id}/receipt?format=html"),
            Some(&driver),
        )
        .await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(
        html.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        html.text.contains("25.00")
            && html.text.contains(reference)
            && html.text.contains("Jing'an Temple")
    );
    // The printable receipt speaks the driver's language too.
    let chinese = app
        .get(
            &format!("/v1/sessions/{id}/receipt?format=html&lang=zh"),
            Some(&driver),
        )
        .await;
    assert_eq!(chinese.status, StatusCode::OK);
    assert!(
        chinese.text.contains("<html lang=\"zh-CN\">"),
        "{}",
        chinese.text
    );
    assert!(chinese.text.contains("停车收据") && chinese.text.contains("已支付"));
    assert!(chinese.text.contains("25.00") && chinese.text.contains(reference));

    let mine = app.get("/v1/me/sessions", Some(&driver)).await;
    assert_eq!(mine.body["sessions"].as_array().unwrap().len(), 1);

    // The ledger: the driver debited and the operator credited 25.00.
    let totals = qrpark::store::ledger::totals(&app.db).await.unwrap();
    assert_eq!(totals, vec![("CNY".to_owned(), 2500, 2500)]);
    // ...and it is append-only.
    assert!(
        app.try_execute("update ledger_entry set debit_minor = 1")
            .await
            .is_err()
    );
    assert!(app.try_execute("delete from ledger_entry").await.is_err());
    assert_ledger_balanced(&app).await;
}

async fn one_active_session_per_space(app: TestApp) {
    let op = app.operator("Busy").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let first = app.driver_token("driver-1");
    let second = app.driver_token("driver-2");
    let started = start(&app, &first, "k1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED);
    let taken = start(&app, &second, "k1", &spaces[0].1).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.problem_code(), "space_occupied");
    // The same driver cannot double-park either.
    let twice = start(&app, &first, "k2", &spaces[0].1).await;
    assert_eq!(twice.problem_code(), "space_occupied");
    let id = started.body["id"].as_str().unwrap();
    app.clock.advance(TimeDelta::minutes(5));
    let stopped = app.stop(&first, id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["status"], "stopped");
    let next = start(&app, &second, "k2", &spaces[0].1).await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.text);
    assert_ledger_balanced(&app).await;
}

async fn idempotency_keys_follow_the_draft(app: TestApp) {
    let op = app.operator("Idem").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");

    // No key: 400.
    let answer = app
        .call(
            Method::POST,
            "/v1/sessions",
            Some(&driver),
            Some(json!({"qr": spaces[0].1})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.problem_code(), "idempotency_key_required");

    // Same key, same body: the first answer again, once.
    let first = start(&app, &driver, "double-tap", &spaces[0].1).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = start(&app, &driver, "double-tap", &spaces[0].1).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let mine = app.get("/v1/me/sessions", Some(&driver)).await;
    assert_eq!(mine.body["sessions"].as_array().unwrap().len(), 1);

    // Same key, another body: 422.
    // The same body with other whitespace is the same request.
    let spaced = app
        .call_raw_with(
            Method::POST,
            "/v1/sessions",
            &driver,
            &[("Idempotency-Key", "double-tap")],
            format!("{{ \"qr\" : \"{}\" }}", spaces[0].1).into_bytes(),
        )
        .await;
    assert_eq!(spaced.status, StatusCode::CREATED);
    assert_eq!(spaced.text, first.text);
    let other = start(&app, &driver, "double-tap", &spaces[1].1).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.problem_code(), "idempotency_key_reused");

    // A refusal is remembered too: the same key and body replay the 409.
    let stranger = app.driver_token("driver-2");
    let refused = start(&app, &stranger, "k", &spaces[0].1).await;
    assert_eq!(refused.problem_code(), "space_occupied");
    let refused_again = start(&app, &stranger, "k", &spaces[0].1).await;
    assert_eq!(refused_again.status, StatusCode::CONFLICT);
    assert_eq!(refused_again.text, refused.text);

    // Keys belong to their driver: another driver's "double-tap" is a new request.
    let theirs = start(&app, &stranger, "double-tap", &spaces[1].1).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);

    // A request still in flight with the key: 409; once it is abandoned (60 s), a retry runs.
    let body = qrpark::domain::audit::canonical_json(&json!({"qr": spaces[2].1}));
    let hash: [u8; 32] = Sha256::digest(body.as_bytes()).into();
    let now = app.state.clock.now();
    let begun = qrpark::store::idempotency::begin(&app.db, "driver-1", "slow", &hash, now)
        .await
        .unwrap();
    assert_eq!(begun, qrpark::store::idempotency::Begin::Proceed);
    let busy = start(&app, &driver, "slow", &spaces[2].1).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.problem_code(), "idempotency_key_in_flight");
    app.clock.advance(TimeDelta::seconds(61));
    let retried = start(&app, &driver, "slow", &spaces[2].1).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);

    // Keys are kept 24 hours, then forgotten.
    app.clock.advance(TimeDelta::hours(25));
    let purged = qrpark::store::idempotency::purge_expired(&app.db, app.state.clock.now())
        .await
        .unwrap();
    assert!(purged >= 3, "{purged}");
}

async fn other_drivers_sessions_are_invisible(app: TestApp) {
    let op = app.operator("Private").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let owner = app.driver_token("owner");
    let other = app.driver_token("other");
    let started = start(&app, &owner, "k", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1/sessions/{id}")),
        (Method::POST, format!("/v1/sessions/{id}/stop")),
        (Method::GET, format!("/v1/sessions/{id}/receipt")),
    ] {
        let answer = app.call(method.clone(), &path, Some(&other), None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(answer.problem_code(), "not_found");
    }
    assert_eq!(
        app.get("/v1/me/sessions", Some(&other)).await.body["sessions"],
        json!([])
    );
    // Still running: the other driver's stop did nothing.
    assert_eq!(
        app.get(&format!("/v1/sessions/{id}"), Some(&owner))
            .await
            .body["status"],
        "active"
    );
    // Operator keys are not city identities.
    let as_operator = app.get(&format!("/v1/sessions/{id}"), Some(&op.key)).await;
    assert_eq!(as_operator.status, StatusCode::UNAUTHORIZED);
    assert_eq!(as_operator.problem_code(), "token_invalid");
}

async fn bad_city_tokens_are_refused(app: TestApp) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let good = app.driver_token("driver-1");
    let parts: Vec<&str> = good.split('.').collect();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"demo-1"}"#),
        parts[1]
    );
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    // The right kid, signed by another provider's key.
    let impostor = qrpark::identity::demo_idp::DemoIdp::generate(app.clock.clone()).issue(
        "driver-1",
        &[],
        "qrpark",
        std::time::Duration::from_secs(600),
    );
    let wrong_audience = app.state.demo_idp.as_ref().unwrap().issue(
        "driver-1",
        &[],
        "another-app",
        std::time::Duration::from_secs(600),
    );
    let oversized = format!("{good}{}", "A".repeat(20_000));
    for (what, token) in [
        ("garbage", "not-a-jwt"),
        ("alg none", none.as_str()),
        ("tampered", tampered.as_str()),
        ("impostor", impostor.as_str()),
        ("wrong audience", wrong_audience.as_str()),
        ("oversized", oversized.as_str()),
    ] {
        let answer = app.get("/v1/me/sessions", Some(token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.problem_code(), "token_invalid", "{what}");
        assert!(
            answer.headers[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        // The answer never says why.
        assert!(
            !answer.text.contains("audience") && !answer.text.contains("signature"),
            "{what}"
        );
    }
    let missing = app.get("/v1/me/sessions", None).await;
    assert_eq!(missing.problem_code(), "token_invalid");
    assert_eq!(
        app.get("/v1/me/sessions", Some(&good)).await.status,
        StatusCode::OK
    );
}

async fn codes_and_spaces_that_cannot_start(app: TestApp) {
    let op = app.operator("Refusals").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");
    // Out of service.
    let off = app
        .patch(
            &format!("/v1/operator/spaces/{}", spaces[0].0),
            Some(&op.key),
            json!({"status": "out_of_service"}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["status"], "out_of_service");
    let answer = start(&app, &driver, "a", &spaces[0].1).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.problem_code(), "space_out_of_service");
    // Rotated code.
    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/operator/spaces/{}/qr/rotate", spaces[1].0),
            Some(&op.key),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.body["qr_version"], 2);
    let answer = start(&app, &driver, "b", &spaces[1].1).await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.problem_code(), "qr_revoked");
    // Forged code.
    let answer = start(&app, &driver, "c", "eyJhbGciOiJub25lIn0.e30.").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.problem_code(), "qr_invalid");
    // The whole URL works as well as the bare token.
    let url = format!("{}/q/{}", app.base, spaces[2].1);
    let answer = start(&app, &driver, "d", &url).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    // A lot without a tariff.
    let bare = app.lot(&op, "No Tariff", "Asia/Shanghai", "CNY").await;
    let created = app.create_spaces(&op, &bare, &["X"]).await;
    let url = created[0]["qr_url"].as_str().unwrap();
    let answer = start(&app, &driver, "e", url).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.problem_code(), "no_tariff");
}

async fn concurrent_starts_and_stops_settle_once(app: TestApp) {
    let op = app.operator("Race").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let tokens: Vec<String> = (0..20)
        .map(|i| app.driver_token(&format!("racer-{i}")))
        .collect();
    let starts = tokens.iter().enumerate().map(|(i, t)| {
        let app = &app;
        let qr = spaces[0].1.clone();
        async move { start(app, t, &format!("k{i}"), &qr).await }
    });
    let answers = futures_join_all(starts).await;
    let won: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(won.len(), 1, "exactly one start wins");
    assert!(
        answers
            .iter()
            .filter(|a| a.status != StatusCode::CREATED)
            .all(|a| a.problem_code() == "space_occupied")
    );
    let id = won[0].body["id"].as_str().unwrap().to_owned();
    let winner = answers
        .iter()
        .position(|a| a.status == StatusCode::CREATED)
        .unwrap();
    app.clock.advance(TimeDelta::minutes(30));
    let stops = (0..20).map(|_| {
        let (app, id) = (&app, &id);
        let token = tokens[winner].clone();
        async move { app.stop(&token, id).await }
    });
    let stopped = futures_join_all(stops).await;
    assert!(stopped.iter().all(|a| a.status == StatusCode::OK));
    assert!(
        stopped.iter().all(|a| a.body == stopped[0].body),
        "every stop answers the same"
    );
    let settlements: i64 = match &app.db {
        qrpark::store::Db::Sqlite(pool) => sqlx::query_scalar("select count(*) from settlement")
            .fetch_one(pool)
            .await
            .unwrap(),
        qrpark::store::Db::Postgres(pool) => sqlx::query_scalar("select count(*) from settlement")
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    assert_eq!(settlements, 1);
    // 30 minutes: two quarter hours of 2.50 each.
    assert_eq!(stopped[0].body["fee"]["total"], "5.00");
    assert_ledger_balanced(&app).await;
}

/// How many keys `driver` has in the idempotency table (claimed or answered).
pub async fn keys_of(app: &TestApp, driver: &str) -> i64 {
    let sql = "select count(*) from idempotency_key where driver = $1";
    match &app.db {
        qrpark::store::Db::Sqlite(pool) => {
            sqlx::query_scalar(sql).bind(driver).fetch_one(pool).await
        }
        qrpark::store::Db::Postgres(pool) => {
            sqlx::query_scalar(sql).bind(driver).fetch_one(pool).await
        }
    }
    .expect("count idempotency keys")
}

/// A double (or eightfold) tap sends the same key at once: one session, and every answer
/// is its 201. The claim and the session commit together, so a concurrent request with the
/// key waits for that commit (PostgreSQL's unique index, SQLite's single writer) and then
/// replays it, never seeing it half done; the same key with another body is 422 all the same.
async fn concurrent_starts_with_one_key_start_once(app: TestApp) {
    let op = app.operator("Taps").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-1");
    let taps = (0..8).map(|i| {
        let (app, driver) = (&app, &driver);
        // Every fourth tap names another space: another request under the same key.
        let qr = spaces[usize::from(i % 4 == 3)].1.clone();
        async move { (i % 4 == 3, start(app, driver, "one-key", &qr).await) }
    });
    let answers = futures_join_all(taps).await;
    let (others, same): (Vec<_>, Vec<_>) = answers.into_iter().partition(|(other, _)| *other);
    let first = same
        .iter()
        .map(|(_, a)| a)
        .find(|a| a.status == StatusCode::CREATED && a.headers.get("idempotent-replayed").is_none())
        .map(|a| a.text.clone());
    let mut fresh = 0;
    for (_, answer) in &same {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(
            Some(&answer.text),
            first.as_ref(),
            "one answer, byte for byte"
        );
        match answer.headers.get("idempotent-replayed") {
            Some(replayed) => assert_eq!(replayed, "true"),
            None => fresh += 1,
        }
    }
    assert_eq!(fresh, 1, "one request started it, the others replayed it");
    for (_, answer) in &others {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text
        );
        assert_eq!(answer.problem_code(), "idempotency_key_reused");
    }
    let mine = app.get("/v1/me/sessions", Some(&driver)).await;
    assert_eq!(mine.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(keys_of(&app, "driver-1").await, 1);
}

/// A start that fails on our side (500) leaves nothing: neither a session nor the key's
/// claim, which commits only with the session; a retry with the same key then starts.
/// (A refusal that is not remembered, such as 402 `arrears_outstanding`, is tested in
/// money::arrears.)
async fn a_failed_start_leaves_no_claim_behind(app: TestApp) {
    let op = app.operator("Faulty").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");
    // The database refuses the session's row, after the key was claimed in the transaction.
    match &app.db {
        qrpark::store::Db::Sqlite(_) => {
            app.execute(
                "create trigger injected_failure before insert on session \
                 begin select raise(abort, 'injected failure'); end",
            )
            .await;
        }
        qrpark::store::Db::Postgres(_) => {
            app.execute(
                "create function injected_failure() returns trigger language plpgsql \
                 as $$ begin raise exception 'injected failure'; end $$",
            )
            .await;
            app.execute(
                "create trigger injected_failure before insert on session \
                 for each row execute function injected_failure()",
            )
            .await;
        }
    }
    let failed = start(&app, &driver, "retry-me", &spaces[0].1).await;
    assert_eq!(
        failed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        failed.text
    );
    assert_eq!(failed.problem_code(), "internal");
    assert_eq!(
        keys_of(&app, "driver-1").await,
        0,
        "no claim is left behind"
    );
    let mine = app.get("/v1/me/sessions", Some(&driver)).await;
    assert_eq!(mine.body["sessions"], json!([]));

    app.execute(match &app.db {
        qrpark::store::Db::Sqlite(_) => "drop trigger injected_failure",
        qrpark::store::Db::Postgres(_) => "drop trigger injected_failure on session",
    })
    .await;
    let retried = start(&app, &driver, "retry-me", &spaces[0].1).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert!(
        retried.headers.get("idempotent-replayed").is_none(),
        "a new start, not a replay"
    );
    assert_eq!(keys_of(&app, "driver-1").await, 1);
}

/// Runs futures concurrently on the current task.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.extend(results.into_iter().flatten());
    outputs
}

async fn operators_see_their_sessions_and_occupancy(app: TestApp) {
    let op = app.operator("Watcher").await;
    let other = app.operator("Other").await;
    let (lot, spaces) = parking_lot(&app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");
    let first = start(&app, &driver, "a", &spaces[0].1).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = start(&app, &driver, "b", &spaces[1].1).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let off = app
        .patch(
            &format!("/v1/operator/spaces/{}", spaces[2].0),
            Some(&op.key),
            json!({"status": "out_of_service"}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    app.clock.advance(TimeDelta::hours(2));
    let stopped = app.stop(&driver, second.body["id"].as_str().unwrap()).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["fee"]["total"], "25.00");

    let occupancy = app
        .get(&format!("/v1/operator/lots/{lot}/occupancy"), Some(&op.key))
        .await;
    assert_eq!(occupancy.status, StatusCode::OK);
    assert_eq!(occupancy.body["spaces"], 3);
    assert_eq!(occupancy.body["in_service"], 2);
    assert_eq!(occupancy.body["occupied"], 1);
    assert_eq!(occupancy.body["free"], 1);

    let all = app
        .get(&format!("/v1/operator/sessions?lot={lot}"), Some(&op.key))
        .await;
    let listed = all.body["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|s| s["fee_total"] == "25.00"
        && s["driver"] == crate::privacy::pseudonym(&app, &op, "driver-1")));
    let active = app
        .get("/v1/operator/sessions?status=active", Some(&op.key))
        .await;
    assert_eq!(active.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(active.body["sessions"][0]["status"], "active");
    let stopped = app
        .get("/v1/operator/sessions?status=stopped", Some(&op.key))
        .await;
    let stopped = stopped.body["sessions"].as_array().unwrap().clone();
    assert_eq!(stopped.len(), listed.len() - 1);
    assert!(stopped.iter().all(|s| s["status"] == "stopped"));
    // A state that does not exist is an error, never "every session".
    let unknown = app
        .get("/v1/operator/sessions?status=everything", Some(&op.key))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.problem_code(), "validation_failed");
    assert_eq!(unknown.error_paths(), vec!["$.status"]);
    let garbled = app
        .get("/v1/operator/sessions?from=yesterday", Some(&op.key))
        .await;
    assert_eq!(garbled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(garbled.error_paths(), vec!["$.from"]);
    let later = app
        .get(
            "/v1/operator/sessions?from=2026-09-29T03:00:00Z",
            Some(&op.key),
        )
        .await;
    assert_eq!(later.body["sessions"], json!([]));

    // Another operator sees none of it.
    assert_eq!(
        app.get("/v1/operator/sessions", Some(&other.key))
            .await
            .body["sessions"],
        json!([])
    );
    for path in [
        format!("/v1/operator/lots/{lot}/occupancy"),
        format!("/v1/operator/sessions?lot={lot}"),
    ] {
        let answer = app.get(&path, Some(&other.key)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.problem_code(), "not_found", "{path}");
    }
    assert_ledger_balanced(&app).await;
}
