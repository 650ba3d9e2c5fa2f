//! A refused payment becomes arrears; the driver sees them, cannot start past
//! `QRPARK_MAX_UNPAID_SESSIONS`, and pays them again in a new payment round.

use chrono::TimeDelta;
use qrpark::config::Config;
use reqwest::StatusCode;
use serde_json::json;

use super::{
    Gateway, Kind, Reply, assert_problem, deliver, fast, lot_of, park_two_hours, post_keyed,
    session_view, with_gateway,
};
use crate::helpers::TestApp;
use crate::sessions::start;

with_gateway!(
    refused_payment_becomes_arrears_paid_again_in_a_new_round: fast,
    one_unpaid_session_allowed_by_the_config: one_unpaid_allowed,
    deliveries_retry_time_out_and_answer_slowly: fast,
);

fn one_unpaid_allowed(config: &mut Config) {
    fast(config);
    config.max_unpaid_sessions = 1;
}

async fn refused_payment_becomes_arrears_paid_again_in_a_new_round(app: TestApp, gateway: Gateway) {
    let op = app.operator("Arrears Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-1");
    let stopped = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let session = stopped["id"].as_str().unwrap().to_owned();
    let reference = stopped["settlement"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stopped["settlement"]["status"], "pending");

    gateway.script(Kind::Payment, [Reply::Refuse(402)]);
    assert_eq!(deliver(&app).await, 1);
    let refused_at = app.now();
    let view = session_view(&app, &driver, &session).await;
    assert_eq!(view["settlement"]["status"], "arrears", "{view}");
    assert!(!gateway.did(&reference), "a refusal charges nothing");
    assert_eq!(deliver(&app).await, 0, "a refusal is not retried");

    let owed = app.get("/v1/me/arrears", Some(&driver)).await;
    assert_eq!(owed.status, StatusCode::OK, "{}", owed.text);
    let since = owed.body["items"][0]["since"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(since).unwrap(),
        refused_at
    );
    assert_eq!(
        owed.body,
        json!({
            "items": [{"session_id": session, "reference": reference, "currency": "CNY",
                       "amount": "25.00", "since": since}],
            "totals": [{"currency": "CNY", "amount": "25.00"}],
        })
    );
    // Another driver owes nothing.
    let other = app
        .get("/v1/me/arrears", Some(&app.driver_token("driver-2")))
        .await;
    assert_eq!(other.body, json!({"items": [], "totals": []}));

    // With the default of 0 unpaid sessions, no new start; the refusal is not remembered.
    let refused = start(&app, &driver, "park-2", &qrs[1]).await;
    assert_problem(
        &refused,
        StatusCode::PAYMENT_REQUIRED,
        "arrears_outstanding",
    );
    assert_eq!(refused.body["arrears"], owed.body["items"]);
    assert_eq!(
        crate::sessions::keys_of(&app, "driver-1").await,
        1,
        "only the first start's key: the refused one left no claim"
    );

    let pay_path = format!("/v1/me/arrears/{session}/pay");
    let unkeyed = post_keyed(&app, &pay_path, &driver, None, None).await;
    assert_problem(
        &unkeyed,
        StatusCode::BAD_REQUEST,
        "idempotency_key_required",
    );
    let stranger = post_keyed(
        &app,
        &pay_path,
        &app.driver_token("driver-2"),
        Some("pay-x"),
        None,
    )
    .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.text);

    let paid = post_keyed(&app, &pay_path, &driver, Some("pay-1"), None).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    assert_eq!(paid.body["settlement"]["status"], "pending");
    assert_eq!(paid.body["settlement"]["reference"], reference.as_str());
    let replay = post_keyed(&app, &pay_path, &driver, Some("pay-1"), None).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.body, paid.body);
    assert!(replay.headers.get("idempotent-replayed").is_some());
    // Paying again while it is on its way changes nothing (no third round).
    let again = post_keyed(&app, &pay_path, &driver, Some("pay-2"), None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["settlement"]["status"], "pending");
    let owed = app.get("/v1/me/arrears", Some(&driver)).await;
    assert_eq!(owed.body["items"], json!([]), "no longer owed once sent");

    assert_eq!(deliver(&app).await, 1);
    assert_eq!(
        gateway.keys_for(Kind::Payment, &reference),
        vec![reference.clone(), format!("{reference}-2")],
        "round 2 has its own key: the refusal is not replayed"
    );
    assert!(gateway.did(&format!("{reference}-2")));
    assert_eq!(gateway.total(Kind::Payment), 2500);
    let view = session_view(&app, &driver, &session).await;
    assert_eq!(view["settlement"]["status"], "settled", "{view}");
    let sent = app.audit_payloads("settlement.sent_again").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["by"], "driver");
    assert_eq!(sent[0]["from"], "arrears");
    assert_eq!(sent[0]["payment_round"], 2);
    assert_eq!(app.audit_payloads("settlement.arrears").await.len(), 1);
    assert_eq!(app.audit_payloads("settlement.settled").await.len(), 1);

    // Paid: the same start now goes through.
    let started = start(&app, &driver, "park-2", &qrs[1]).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    // And paying what is settled changes nothing.
    let settled = post_keyed(&app, &pay_path, &driver, Some("pay-3"), None).await;
    assert_eq!(settled.status, StatusCode::OK, "{}", settled.text);
    assert_eq!(settled.body["settlement"]["status"], "settled");
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(gateway.done(Kind::Payment), 1);
}

async fn one_unpaid_session_allowed_by_the_config(app: TestApp, gateway: Gateway) {
    let op = app.operator("Lenient Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");
    gateway.script(Kind::Payment, [Reply::Refuse(422), Reply::Refuse(402)]);
    park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    assert_eq!(deliver(&app).await, 1);
    // One session in arrears is allowed...
    let second = park_two_hours(&app, &driver, "park-2", &qrs[1]).await;
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, second["id"].as_str().unwrap()).await;
    assert_eq!(view["settlement"]["status"], "arrears");
    // ...two are not.
    let refused = start(&app, &driver, "park-3", &qrs[2]).await;
    assert_problem(
        &refused,
        StatusCode::PAYMENT_REQUIRED,
        "arrears_outstanding",
    );
    assert_eq!(refused.body["arrears"].as_array().unwrap().len(), 2);
    let owed = app.get("/v1/me/arrears", Some(&driver)).await;
    assert_eq!(
        owed.body["totals"],
        json!([{"currency": "CNY", "amount": "50.00"}])
    );
    assert_eq!(gateway.done(Kind::Payment), 0);
}

/// The gateway fails (503) then accepts; times out after charging, and the retry under the
/// same key charges nothing more; answers slowly but in time.
async fn deliveries_retry_time_out_and_answer_slowly(app: TestApp, gateway: Gateway) {
    let op = app.operator("Patient Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");

    // Fails, then accepts.
    let first = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let first_ref = first["settlement"]["reference"].as_str().unwrap();
    gateway.script(Kind::Payment, [Reply::Fail(503)]);
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, first["id"].as_str().unwrap()).await;
    assert_eq!(view["settlement"]["status"], "pending");
    assert_eq!(deliver(&app).await, 0, "not due before its backoff");
    app.clock.advance(TimeDelta::seconds(2));
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, first["id"].as_str().unwrap()).await;
    assert_eq!(view["settlement"]["status"], "settled");
    assert_eq!(
        gateway.keys_for(Kind::Payment, first_ref),
        vec![first_ref.to_owned(), first_ref.to_owned()]
    );

    // Charged, but the answer comes after qrpark stopped waiting: retried with the same
    // key, which the gateway answers without charging again.
    let second = park_two_hours(&app, &driver, "park-2", &qrs[1]).await;
    let second_ref = second["settlement"]["reference"].as_str().unwrap();
    gateway.script(
        Kind::Payment,
        [Reply::TimeOut(std::time::Duration::from_millis(
            3 * super::GATEWAY_TIMEOUT_MS,
        ))],
    );
    let waited = std::time::Instant::now();
    assert_eq!(deliver(&app).await, 1);
    assert!(waited.elapsed() < std::time::Duration::from_secs(2));
    let view = session_view(&app, &driver, second["id"].as_str().unwrap()).await;
    assert_eq!(
        view["settlement"]["status"], "pending",
        "a timeout is retried"
    );
    assert!(gateway.did(second_ref), "the gateway charged anyway");
    app.clock.advance(TimeDelta::seconds(2));
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, second["id"].as_str().unwrap()).await;
    assert_eq!(view["settlement"]["status"], "settled");

    // Slow, but in time.
    let third = park_two_hours(&app, &driver, "park-3", &qrs[2]).await;
    gateway.script(
        Kind::Payment,
        [Reply::Slow(std::time::Duration::from_millis(
            super::GATEWAY_TIMEOUT_MS / 3,
        ))],
    );
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, third["id"].as_str().unwrap()).await;
    assert_eq!(view["settlement"]["status"], "settled");

    assert_eq!(
        gateway.done(Kind::Payment),
        3,
        "three payments, each charged once"
    );
    assert_eq!(gateway.total(Kind::Payment), 7500);
    let replies: Vec<Reply> = gateway.seen().iter().map(|s| s.reply).collect();
    assert_eq!(replies.len(), 5);
    assert!(matches!(
        replies[..],
        [
            Reply::Fail(503),
            Reply::Accept,
            Reply::TimeOut(_),
            Reply::Accept,
            Reply::Slow(_)
        ]
    ));
}
