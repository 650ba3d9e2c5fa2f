//! Vehicles and endings: plates (normalised, validated, required per lot, shown
//! everywhere), planned and maximum-stay endings on the manual clock, the operator's stop
//! with a reason, the cap on active sessions, and the erasure of old plates.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, TestOperator, both_backends, qr_token, spec_tariff};
use crate::sessions::assert_ledger_balanced;

both_backends!(
    plates_are_normalised_validated_and_required_per_lot,
    planned_ends_and_maximum_stays_end_sessions_by_themselves,
    a_drivers_stop_after_the_due_instant_answers_the_same_ending,
    operators_stop_sessions_with_a_reason,
    drivers_hold_a_limited_number_of_active_sessions,
    plates_are_erased_after_their_retention_and_the_chain_holds,
);

/// Starts a session with any body; the answer is the caller's to check.
pub async fn start_with(app: &TestApp, driver: &str, key: &str, body: Value) -> Answer {
    let response = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .bearer_auth(driver)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    TestApp::decode_response(response).await
}

/// A lot (the spec's tariff: at most 24 hours) with `codes`; returns (lot id, QR tokens).
pub async fn lot_with(
    app: &TestApp,
    op: &TestOperator,
    plate_required: bool,
    codes: &[&str],
) -> (String, Vec<String>) {
    let created = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            json!({"name": "Xintiandi", "timezone": "Asia/Shanghai", "currency": "CNY",
                   "plate_required": plate_required}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["plate_required"], plate_required);
    let lot = created.body["id"].as_str().unwrap().to_owned();
    app.publish_tariff(op, &lot, spec_tariff()).await;
    let tokens = app
        .create_spaces(op, &lot, codes)
        .await
        .iter()
        .map(|s| qr_token(s["qr_url"].as_str().unwrap()).to_owned())
        .collect();
    (lot, tokens)
}

fn at(answer: &Answer, field: &str) -> DateTime<Utc> {
    answer.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", answer.text))
        .parse()
        .unwrap()
}

async fn plates_are_normalised_validated_and_required_per_lot(app: TestApp) {
    let op = app.operator("Plates").await;
    let (lot, qr) = lot_with(&app, &op, true, &["P-1", "P-2"]).await;
    let driver = app.driver_token("plate-driver");

    let without = start_with(&app, &driver, "k1", json!({"qr": qr[0]})).await;
    assert_eq!(
        without.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        without.text
    );
    assert_eq!(without.problem_code(), "plate_required");
    for (i, bad) in ["中A12345", "A", "沪ABCDEFGHIJK", "AB_12", ""]
        .iter()
        .enumerate()
    {
        let refused = start_with(
            &app,
            &driver,
            &format!("bad-{i}"),
            json!({"qr": qr[0], "plate": bad}),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            refused.text
        );
        assert_eq!(refused.problem_code(), "validation_failed");
        assert_eq!(refused.error_paths(), vec!["$.plate"], "{bad}");
    }

    let started = start_with(
        &app,
        &driver,
        "k2",
        json!({"qr": qr[0], "plate": "沪a·123 45"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    assert_eq!(started.body["plate"], "沪A12345");
    let id = started.body["id"].as_str().unwrap().to_owned();

    let shown = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(shown.body["plate"], "沪A12345");
    assert_eq!(shown.body["ended_by"], Value::Null);
    let mine = app.get("/v1/me/sessions", Some(&driver)).await;
    assert_eq!(mine.body["sessions"][0]["plate"], "沪A12345");
    let listed = app.get("/v1/operator/sessions", Some(&op.key)).await;
    assert_eq!(listed.body["sessions"][0]["plate"], "沪A12345");

    app.clock.advance(TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["ended_by"], "driver");
    let receipt = app
        .get(&format!("/v1/sessions/{id}/receipt"), Some(&driver))
        .await;
    assert_eq!(receipt.body["plate"], "沪A12345", "{}", receipt.text);
    let page = app
        .get(
            &format!("/v1/sessions/{id}/receipt?format=html"),
            Some(&driver),
        )
        .await;
    assert!(page.text.contains("沪A12345"), "{}", page.text);

    // The lot stops requiring plates: a start without one is fine, and shows none.
    let patched = app
        .patch(
            &format!("/v1/operator/lots/{lot}"),
            Some(&op.key),
            json!({"plate_required": false}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["plate_required"], false);
    let plain = start_with(&app, &driver, "k3", json!({"qr": qr[1]})).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    assert_eq!(plain.body["plate"], Value::Null);
}

async fn planned_ends_and_maximum_stays_end_sessions_by_themselves(app: TestApp) {
    let op = app.operator("Endings").await;
    let (_, qr) = lot_with(&app, &op, false, &["E-1", "E-2"]).await;
    let driver = app.driver_token("ending-driver");
    let now = app.now();

    // A planned end must lie after the start and not after the maximum stay (24 hours).
    for (stop_at, key) in [(now, "early"), (now + TimeDelta::hours(25), "late")] {
        let refused =
            start_with(&app, &driver, key, json!({"qr": qr[0], "stop_at": stop_at})).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.error_paths(), vec!["$.stop_at"]);
    }
    let garbled = start_with(
        &app,
        &driver,
        "garbled",
        json!({"qr": qr[0], "stop_at": "noon"}),
    )
    .await;
    // Instants no database stores exactly are refused too, never a server error.
    for (i, far) in ["+10000-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
        .iter()
        .enumerate()
    {
        let refused = start_with(
            &app,
            &driver,
            &format!("far-{i}"),
            json!({"qr": qr[0], "stop_at": far}),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{far}: {}",
            refused.text
        );
        assert_eq!(refused.error_paths(), vec!["$.stop_at"]);
    }
    assert_eq!(garbled.error_paths(), vec!["$.stop_at"]);

    let planned = start_with(
        &app,
        &driver,
        "planned",
        json!({"qr": qr[0], "stop_at": now + TimeDelta::hours(2)}),
    )
    .await;
    assert_eq!(planned.status, StatusCode::CREATED, "{}", planned.text);
    assert_eq!(at(&planned, "stop_at"), now + TimeDelta::hours(2));
    let planned_id = planned.body["id"].as_str().unwrap().to_owned();
    let open = start_with(&app, &driver, "open", json!({"qr": qr[1]})).await;
    assert_eq!(open.status, StatusCode::CREATED, "{}", open.text);
    let open_id = open.body["id"].as_str().unwrap().to_owned();

    // Not yet due: the scheduler leaves both alone.
    app.clock.advance(TimeDelta::minutes(119));
    assert_eq!(
        qrpark::sessions::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        0
    );
    // Due: the planned one stops, priced exactly to its planned end, not to the clock.
    app.clock.advance(TimeDelta::minutes(3));
    assert_eq!(
        qrpark::sessions::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let ended = app
        .get(&format!("/v1/sessions/{planned_id}"), Some(&driver))
        .await;
    assert_eq!(ended.body["status"], "stopped", "{}", ended.text);
    assert_eq!(ended.body["ended_by"], "planned");
    assert_eq!(at(&ended, "ended_at"), now + TimeDelta::hours(2));
    let quote = app
        .post(
            &format!("/v1/lots/{}/quote", ended.body["lot_id"].as_str().unwrap()),
            None,
            json!({"start": now, "end": now + TimeDelta::hours(2)}),
        )
        .await;
    assert_eq!(
        ended.body["fee"]["total"], quote.body["total"],
        "{}",
        quote.text
    );
    assert_eq!(ended.body["settlement"]["status"], "settled");

    // The open one runs to its maximum stay and stops there (the driver signs in again: a
    // city token lasts a day).
    app.clock.advance(TimeDelta::hours(23));
    let driver = app.driver_token("ending-driver");
    let overdue = app
        .get(&format!("/v1/sessions/{open_id}"), Some(&driver))
        .await;
    assert_eq!(overdue.body["status"], "active");
    assert_eq!(
        qrpark::sessions::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let ended = app
        .get(&format!("/v1/sessions/{open_id}"), Some(&driver))
        .await;
    assert_eq!(ended.body["ended_by"], "max_stay", "{}", ended.text);
    assert_eq!(at(&ended, "ended_at"), at(&open, "leave_by"));
    assert_eq!(
        qrpark::sessions::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        stop_events(&app).await,
        2,
        "each session stopped exactly once"
    );
    assert_ledger_balanced(&app).await;
}

/// How many `session.stopped` events the audit chain holds.
async fn stop_events(app: &TestApp) -> usize {
    app.audit_payloads("session.stopped").await.len()
}

async fn a_drivers_stop_after_the_due_instant_answers_the_same_ending(app: TestApp) {
    let op = app.operator("Race").await;
    let (_, qr) = lot_with(&app, &op, false, &["R-1"]).await;
    let driver = app.driver_token("late-driver");
    let now = app.now();
    let started = start_with(
        &app,
        &driver,
        "k",
        json!({"qr": qr[0], "stop_at": now + TimeDelta::minutes(30)}),
    )
    .await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    // The driver taps Stop ten minutes after the planned end, before the scheduler ran.
    app.clock.advance(TimeDelta::minutes(40));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["ended_by"], "planned");
    assert_eq!(at(&stopped, "ended_at"), now + TimeDelta::minutes(30));
    assert_eq!(
        qrpark::sessions::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        0
    );
    let again = app.stop(&driver, &id).await;
    assert_eq!(again.body, stopped.body);
    assert_eq!(stop_events(&app).await, 1);
}

async fn operators_stop_sessions_with_a_reason(app: TestApp) {
    let op = app.operator("Stopper").await;
    let other = app.operator("Elsewhere").await;
    let (_, qr) = lot_with(&app, &op, false, &["O-1"]).await;
    let driver = app.driver_token("towed-driver");
    let started = start_with(&app, &driver, "k", json!({"qr": qr[0], "plate": "B123XYZ"})).await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/operator/sessions/{id}/stop");

    let foreign = app
        .post(&path, Some(&other.key), json!({"reason": "not mine"}))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.problem_code(), "not_found");
    for bad in ["", "   ", &"x".repeat(501)] {
        let refused = app.post(&path, Some(&op.key), json!({"reason": bad})).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.error_paths(), vec!["$.reason"]);
    }
    let missing = app.post(&path, Some(&op.key), json!({})).await;
    assert_eq!(missing.error_paths(), vec!["$.reason"]);

    app.clock.advance(TimeDelta::minutes(50));
    let stopped = app
        .post(
            &path,
            Some(&op.key),
            json!({"reason": "blocking the fire exit"}),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["status"], "stopped");
    assert_eq!(stopped.body["ended_by"], "operator");
    assert_eq!(stopped.body["stop_reason"], "blocking the fire exit");
    assert_eq!(stopped.body["plate"], "B123XYZ");
    assert_eq!(at(&stopped, "ended_at"), app.now());
    let again = app
        .post(&path, Some(&op.key), json!({"reason": "again"}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["stop_reason"], "blocking the fire exit");
    let seen = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(seen.body["ended_by"], "operator");
    assert_eq!(seen.body["settlement"]["status"], "settled");
    // The reason is in the audit chain with the stop.
    let payload = app.audit_payloads("session.stopped").await.remove(0);
    assert_eq!(payload["ended_by"], "operator");
    assert_eq!(payload["reason"], "blocking the fire exit");
    assert_ledger_balanced(&app).await;
}

async fn drivers_hold_a_limited_number_of_active_sessions(app: TestApp) {
    let op = app.operator("Cap").await;
    let (_, qr) = lot_with(&app, &op, false, &["C-1", "C-2", "C-3", "C-4"]).await;
    let driver = app.driver_token("greedy-driver");
    let mut ids = Vec::new();
    for (i, token) in qr.iter().take(3).enumerate() {
        let started = start_with(&app, &driver, &format!("k{i}"), json!({"qr": token})).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        ids.push(started.body["id"].as_str().unwrap().to_owned());
    }
    let fourth = start_with(&app, &driver, "k3", json!({"qr": qr[3]})).await;
    assert_eq!(fourth.status, StatusCode::CONFLICT, "{}", fourth.text);
    assert_eq!(fourth.problem_code(), "too_many_active_sessions");
    // Another driver is not held back, and the space stayed free.
    let other = start_with(
        &app,
        &app.driver_token("someone"),
        "o",
        json!({"qr": qr[3]}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    assert_eq!(
        app.stop(
            &app.driver_token("someone"),
            other.body["id"].as_str().unwrap()
        )
        .await
        .status,
        StatusCode::OK
    );
    // Once one stops, the driver may start again.
    assert_eq!(app.stop(&driver, &ids[0]).await.status, StatusCode::OK);
    let again = start_with(&app, &driver, "k4", json!({"qr": qr[3]})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
}

async fn plates_are_erased_after_their_retention_and_the_chain_holds(app: TestApp) {
    let op = app.operator("Retention").await;
    let (_, qr) = lot_with(&app, &op, true, &["T-1", "T-2"]).await;
    let driver = app.driver_token("private-driver");
    let old = start_with(
        &app,
        &driver,
        "old",
        json!({"qr": qr[0], "plate": "沪A12345"}),
    )
    .await;
    let old_id = old.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(app.stop(&driver, &old_id).await.status, StatusCode::OK);
    app.clock.advance(TimeDelta::days(90));
    let driver = app.driver_token("private-driver");
    let recent = start_with(
        &app,
        &driver,
        "new",
        json!({"qr": qr[1], "plate": "沪B54321"}),
    )
    .await;
    let recent_id = recent.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(app.stop(&driver, &recent_id).await.status, StatusCode::OK);

    // 90 days and 2 hours after the first stop: only its plate is past 90 days.
    let erased = qrpark::sessions::scheduler::erase_old_plates(&app.state)
        .await
        .unwrap();
    assert_eq!(erased, 1);
    let old = app
        .get(&format!("/v1/sessions/{old_id}"), Some(&driver))
        .await;
    assert_eq!(old.body["plate"], Value::Null, "{}", old.text);
    let recent = app
        .get(&format!("/v1/sessions/{recent_id}"), Some(&driver))
        .await;
    assert_eq!(recent.body["plate"], "沪B54321");

    // The chain committed to the plate by its keyed hash, which still checks against it.
    let payloads = app.audit_payloads("session.started").await;
    let first = &payloads[0];
    assert!(
        !first.to_string().contains("A12345"),
        "the chain holds no plate"
    );
    let plate = qrpark::domain::plate::Plate::parse("沪A12345").unwrap();
    let expected = qrpark::domain::audit::hex(&plate.keyed_hash(&app.state.plate_key));
    assert_eq!(first["plate_hmac"], expected);
}
