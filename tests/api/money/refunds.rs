//! Operators' refunds: partial and whole, never above the charge (also when 20 race),
//! delivered through the outbox to the gateway's `/refunds`, shown to the driver; and the
//! auditors' summary with arrears, review and refunds.

use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use super::{
    Gateway, Kind, Reply, assert_problem, deliver, fast, lot_of, park_two_hours,
    print_reconciliation, refund, session_view, with_gateway,
};
use crate::helpers::TestApp;
use crate::sessions::start;

with_gateway!(
    refunds_partial_whole_and_refused: fast,
    refunds_are_checked_before_anything_is_given_back: fast,
    twenty_refunds_racing_never_exceed_the_charge: fast,
    the_summary_reconciles_arrears_review_and_refunds: fast,
);

async fn refunds_partial_whole_and_refused(app: TestApp, gateway: Gateway) {
    let op = app.operator("Refund Parking").await;
    let qrs = lot_of(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");
    let stopped = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let session = stopped["id"].as_str().unwrap().to_owned();
    let paid_ref = stopped["settlement"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();

    // Not collected yet: nothing to give back.
    let early = refund(&app, &op, &session, Some("r-0"), "5.00", "early").await;
    assert_problem(&early, StatusCode::CONFLICT, "settlement_not_settled");
    assert_eq!(deliver(&app).await, 1);

    let jammed = || {
        refund(
            &app,
            &op,
            &session,
            Some("r-1"),
            "10.00",
            "the barrier jammed",
        )
    };
    let partial = jammed().await;
    assert_eq!(partial.status, StatusCode::CREATED, "{}", partial.text);
    assert_eq!(partial.body["session_id"], session.as_str());
    assert_eq!(partial.body["amount"], "10.00");
    assert_eq!(partial.body["currency"], "CNY");
    assert_eq!(partial.body["reason"], "the barrier jammed");
    assert_eq!(partial.body["status"], "pending");
    assert!(
        partial.body["reference"]
            .as_str()
            .unwrap()
            .starts_with("QRR-")
    );
    assert!(partial.body["id"].is_string() && partial.body["created_at"].is_string());
    // The key answers the first answer again, and refuses another body.
    let replay = jammed().await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, partial.body);
    let reused = refund(
        &app,
        &op,
        &session,
        Some("r-1"),
        "11.00",
        "the barrier jammed",
    )
    .await;
    assert_problem(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    let beyond = refund(&app, &op, &session, Some("r-2"), "15.01", "too much").await;
    assert_problem(
        &beyond,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_charge",
    );
    assert_eq!(beyond.body["charged"], "25.00");
    assert_eq!(beyond.body["refunded"], "10.00");
    assert_eq!(beyond.body["refundable"], "15.00");
    let rest = refund(&app, &op, &session, Some("r-2"), "15.00", "the rest").await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.text);
    let nothing_left = refund(&app, &op, &session, Some("r-3"), "0.01", "a cent").await;
    assert_eq!(nothing_left.problem_code(), "refund_exceeds_charge");

    // The gateway gives the first back and refuses the second: refundable again.
    gateway.script(Kind::Refund, [Reply::Accept, Reply::Refuse(422)]);
    assert_eq!(deliver(&app).await, 2);
    let listed = app
        .get(
            &format!("/v1/operator/sessions/{session}/refunds"),
            Some(&op.key),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let statuses: Vec<&str> = listed.body["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["refunded", "failed"]);
    let again = refund(&app, &op, &session, Some("r-4"), "15.00", "the rest, again").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(deliver(&app).await, 1);

    // The driver sees them, on the session and on the receipt.
    let view = session_view(&app, &driver, &session).await;
    assert_eq!(view["settlement"]["refunded"], "25.00", "{view}");
    assert_eq!(view["settlement"]["status"], "settled");
    let refunds = view["refunds"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = refunds
        .iter()
        .map(|r| (r["amount"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("10.00", "refunded"),
            ("15.00", "failed"),
            ("15.00", "refunded")
        ]
    );
    assert!(refunds[0]["refunded_at"].is_string());
    assert!(refunds[1]["refunded_at"].is_null());
    let receipt = app
        .get(&format!("/v1/sessions/{session}/receipt"), Some(&driver))
        .await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.text);
    assert_eq!(receipt.body["refunds"], view["refunds"]);
    assert_eq!(receipt.body["settlement"]["refunded"], "25.00");

    // The gateway: each refund delivered to /refunds under its own reference, about the
    // payment; 25.00 given back in all, for 25.00 charged.
    for r in refunds {
        let reference = r["reference"].as_str().unwrap();
        assert_eq!(gateway.keys_for(Kind::Refund, reference), [reference]);
    }
    assert!(
        gateway
            .seen()
            .iter()
            .filter(|s| s.kind == Kind::Refund)
            .all(|s| s.body["payment_reference"] == paid_ref.as_str())
    );
    assert_eq!(gateway.total(Kind::Refund), 2500);
    assert_eq!(gateway.total(Kind::Payment), 2500);
    assert_eq!(app.audit_payloads("refund.created").await.len(), 3);
    assert_eq!(app.audit_payloads("refund.refunded").await.len(), 2);
    assert_eq!(app.audit_payloads("refund.failed").await.len(), 1);
}

async fn refunds_are_checked_before_anything_is_given_back(app: TestApp, gateway: Gateway) {
    let op = app.operator("Careful Parking").await;
    let other = app.operator("Other Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-1");
    let stopped = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let session = stopped["id"].as_str().unwrap().to_owned();

    // Refused by the gateway: arrears are not refundable.
    gateway.script(Kind::Payment, [Reply::Refuse(402)]);
    assert_eq!(deliver(&app).await, 1);
    let owed = refund(&app, &op, &session, Some("r-1"), "5.00", "sorry").await;
    assert_problem(&owed, StatusCode::CONFLICT, "settlement_not_settled");

    // An active session: nothing charged yet.
    let active = start(&app, &app.driver_token("driver-2"), "park-2", &qrs[1]).await;
    assert_eq!(active.status, StatusCode::CREATED, "{}", active.text);
    let active_id = active.body["id"].as_str().unwrap();
    let busy = refund(&app, &op, active_id, Some("r-2"), "5.00", "sorry").await;
    assert_problem(&busy, StatusCode::CONFLICT, "session_active");

    // Another operator's session does not exist for them.
    let foreign = refund(&app, &other, &session, Some("r-3"), "5.00", "mine?").await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "not_found");
    let foreign = app
        .get(
            &format!("/v1/operator/sessions/{session}/refunds"),
            Some(&other.key),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);

    let unkeyed = refund(&app, &op, &session, None, "5.00", "sorry").await;
    assert_problem(
        &unkeyed,
        StatusCode::BAD_REQUEST,
        "idempotency_key_required",
    );

    // Amounts and reasons are validated at their JSON paths.
    let long = "x".repeat(501);
    for (i, (amount, reason, paths)) in [
        ("0.00", "ok", vec!["$.amount"]),
        ("-1", "ok", vec!["$.amount"]),
        ("1.234", "ok", vec!["$.amount"]),
        ("abc", "ok", vec!["$.amount"]),
        ("1.00", "", vec!["$.reason"]),
        ("1.00", long.as_str(), vec!["$.reason"]),
        ("abc", "", vec!["$.amount", "$.reason"]),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("v-{i}");
        let bad = refund(&app, &op, &session, Some(&key), amount, reason).await;
        assert_eq!(
            bad.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{amount:?}: {}",
            bad.text
        );
        assert_eq!(bad.problem_code(), "validation_failed");
        assert_eq!(bad.error_paths(), paths, "{amount:?} {reason:?}");
    }
    let not_a_string = super::post_keyed(
        &app,
        &format!("/v1/operator/sessions/{session}/refunds"),
        &op.key,
        Some("v-x"),
        Some(json!({"amount": 5, "reason": "ok"})),
    )
    .await;
    assert_eq!(
        not_a_string.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        not_a_string.text
    );

    // Once paid again and settled, the same key refunds.
    let paid = super::post_keyed(
        &app,
        &format!("/v1/me/arrears/{session}/pay"),
        &driver,
        Some("pay-1"),
        None,
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    assert_eq!(deliver(&app).await, 1);
    let refunded = refund(&app, &op, &session, Some("r-1"), "5.00", "sorry").await;
    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.text);
    // Refused by the gateway twice over: failed, and nothing was given back.
    gateway.script(Kind::Refund, [Reply::Refuse(402)]);
    assert_eq!(deliver(&app).await, 1);
    let view = session_view(&app, &driver, &session).await;
    assert_eq!(view["refunds"][0]["status"], "failed", "{view}");
    assert_eq!(view["settlement"]["refunded"], "0.00");
    assert_eq!(gateway.done(Kind::Refund), 0);
    assert_eq!(app.audit_payloads("refund.created").await.len(), 1);
}

const RACERS: usize = 20;

/// 20 refunds of 3.00 at once for a fee of 25.00: exactly 8 are made.
async fn twenty_refunds_racing_never_exceed_the_charge(app: TestApp, gateway: Gateway) {
    let op = app.operator("Race Parking").await;
    let qrs = lot_of(&app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");
    let stopped = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let session = stopped["id"].as_str().unwrap().to_owned();
    assert_eq!(stopped["fee"]["total"], "25.00");
    assert_eq!(deliver(&app).await, 1);

    let app = std::sync::Arc::new(app);
    let op = std::sync::Arc::new(op);
    let began = std::time::Instant::now();
    let mut racers = JoinSet::new();
    for i in 0..RACERS {
        let (app, op, session) = (app.clone(), op.clone(), session.clone());
        racers.spawn(async move {
            let key = format!("race-{i}");
            refund(&app, &op, &session, Some(&key), "3.00", "racing").await
        });
    }
    let answers = racers.join_all().await;
    let took = began.elapsed();
    let made = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    for a in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_problem(a, StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_charge");
    }
    assert_eq!(made, 8, "8 x 3.00 fit in 25.00");
    let backend = crate::processes::harness::backend(&app.db);
    eprintln!(
        "[{backend}] {RACERS} refunds of 3.00 racing for a fee of 25.00: {made} made, {} \
         refused as refund_exceeds_charge, in {took:?}",
        RACERS - made
    );
    assert_eq!(deliver(&app).await, made);
    let view = session_view(&app, &driver, &session).await;
    assert_eq!(view["settlement"]["refunded"], "24.00", "{view}");
    assert_eq!(view["refunds"].as_array().unwrap().len(), made);
    assert_eq!(gateway.done(Kind::Refund), made);
    assert_eq!(gateway.total(Kind::Refund), 2400);
    print_reconciliation(
        &format!("[{backend}] after {RACERS} refunds racing"),
        &app.db,
    )
    .await;
}

/// One session each settled (and partly refunded), pending, in arrears and in review:
/// `fees = settled + pending + arrears + review`, and `refunded` never exceeds `fees`.
async fn the_summary_reconciles_arrears_review_and_refunds(app: TestApp, gateway: Gateway) {
    let op = app.operator("Summary Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2", "A-3", "A-4"]).await;
    let drivers: Vec<String> = (0..4)
        .map(|d| app.driver_token(&format!("driver-{d}")))
        .collect();
    let attempts = usize::try_from(qrpark::settlement::outbox::MAX_ATTEMPTS).unwrap();
    // Stopped in this order, delivered oldest first: review (16 failures), then arrears.
    let review = park_two_hours(&app, &drivers[0], "p-0", &qrs[0]).await;
    let arrears = park_two_hours(&app, &drivers[1], "p-1", &qrs[1]).await;
    gateway.script(
        Kind::Payment,
        [Reply::Fail(503), Reply::Refuse(402)]
            .into_iter()
            .chain(std::iter::repeat_n(Reply::Fail(503), attempts - 1)),
    );
    for round in 0..qrpark::settlement::outbox::MAX_ATTEMPTS {
        deliver(&app).await;
        app.clock
            .advance(qrpark::settlement::outbox::backoff(round));
    }
    let settled = park_two_hours(&app, &drivers[2], "p-2", &qrs[2]).await;
    assert_eq!(deliver(&app).await, 1);
    let pending = park_two_hours(&app, &drivers[3], "p-3", &qrs[3]).await;
    for (stopped, driver, status) in [
        (&review, &drivers[0], "review"),
        (&arrears, &drivers[1], "arrears"),
        (&settled, &drivers[2], "settled"),
        (&pending, &drivers[3], "pending"),
    ] {
        let view = session_view(&app, driver, stopped["id"].as_str().unwrap()).await;
        assert_eq!(view["settlement"]["status"], status, "{view}");
    }
    let settled_id = settled["id"].as_str().unwrap();
    let made = refund(&app, &op, settled_id, Some("r-1"), "0.50", "late barrier").await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);

    let auditor = app.state.demo_idp.as_ref().unwrap().issue(
        "auditor-1",
        &["auditor"],
        "qrpark",
        std::time::Duration::from_secs(3600),
    );
    let summary = app
        .get(
            "/v1/audit/summary?from=2026-09-29T00:00:00Z&to=2026-10-01T00:00:00Z",
            Some(&auditor),
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    let rows = summary.body["rows"].as_array().unwrap();
    let cents =
        |v: &serde_json::Value| -> i64 { v.as_str().unwrap().replace('.', "").parse().unwrap() };
    let total = |member: &str| rows.iter().map(|r| cents(&r[member])).sum::<i64>();
    let fee = |stopped: &serde_json::Value| cents(&stopped["fee"]["total"]);
    let fees = [&review, &arrears, &settled, &pending].map(fee);
    assert_eq!(total("fees"), fees.iter().sum::<i64>(), "{}", summary.text);
    assert_eq!(total("review"), fees[0]);
    assert_eq!(total("arrears"), fees[1]);
    assert_eq!(total("settled"), fees[2]);
    assert_eq!(total("pending"), fees[3]);
    assert_eq!(total("refunded"), 50);
    for row in rows {
        let fields: Vec<&String> = row.as_object().unwrap().keys().collect();
        for member in [
            "operator_id",
            "lot_id",
            "day",
            "currency",
            "sessions",
            "fees",
            "settled",
            "pending",
            "arrears",
            "review",
            "refunded",
        ] {
            assert!(fields.iter().any(|f| *f == member), "{member} in {row}");
        }
        assert_eq!(
            cents(&row["fees"]),
            cents(&row["settled"])
                + cents(&row["pending"])
                + cents(&row["arrears"])
                + cents(&row["review"]),
            "{row}"
        );
        assert!(cents(&row["refunded"]) <= cents(&row["fees"]), "{row}");
    }
    print_reconciliation("with arrears, review, pending and a refund", &app.db).await;
}
