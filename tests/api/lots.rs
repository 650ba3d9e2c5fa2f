//! Operators create, list, read and change their lots.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::helpers::{TestApp, both_backends};

both_backends!(
    creates_reads_and_lists_a_lot,
    lot_fields_are_validated_all_at_once,
    currencies_carry_their_minor_unit,
    lot_names_are_unique_per_operator,
    lot_name_and_address_can_change,
);

async fn creates_reads_and_lists_a_lot(app: TestApp) {
    let op = app.operator("Shanghai Parking").await;
    let created = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            json!({"name": "People's Square P2", "timezone": "Asia/Shanghai",
                   "currency": "CNY", "address": "120 Renmin Avenue"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        created.headers[LOCATION].to_str().unwrap(),
        format!("/v1/operator/lots/{id}")
    );
    assert_eq!(created.body["name"], "People's Square P2");
    assert_eq!(created.body["timezone"], "Asia/Shanghai");
    assert_eq!(created.body["currency"], "CNY");
    assert_eq!(created.body["minor_unit"], 2);
    assert_eq!(created.body["address"], "120 Renmin Avenue");
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    let read = app
        .get(&format!("/v1/operator/lots/{id}"), Some(&op.key))
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);

    let second = app.lot(&op, "Bund Garage", "Asia/Shanghai", "CNY").await;
    let list = app.get("/v1/operator/lots", Some(&op.key)).await;
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<&str> = list.body["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id, second.as_str()]);
}

async fn lot_fields_are_validated_all_at_once(app: TestApp) {
    let op = app.operator("Careless").await;
    let answer = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            json!({"name": "", "timezone": "Asia/Shangai", "currency": "RMB", "address": "a\nb"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.problem_code(), "validation_failed");
    assert_eq!(
        answer.error_paths(),
        vec!["$.name", "$.timezone", "$.currency", "$.address"]
    );
    // A missing field and a wrong type are named by path too.
    let answer = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            json!({"name": "X", "currency": "CNY"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.problem_code(), "validation_failed");
    assert_eq!(answer.error_paths(), vec!["$.timezone"]);
    let answer = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            json!({"name": 7, "timezone": "UTC", "currency": "CNY"}),
        )
        .await;
    assert_eq!(answer.problem_code(), "validation_failed");
    assert_eq!(answer.error_paths(), vec!["$.name"]);
    // Nothing was written.
    let list = app.get("/v1/operator/lots", Some(&op.key)).await;
    assert_eq!(list.body["lots"], json!([]));
}

async fn currencies_carry_their_minor_unit(app: TestApp) {
    let op = app.operator("Global").await;
    for (currency, tz, minor) in [
        ("JPY", "Asia/Tokyo", 0),
        ("KWD", "Asia/Kuwait", 3),
        ("EUR", "Europe/Berlin", 2),
    ] {
        let answer = app
            .post(
                "/v1/operator/lots",
                Some(&op.key),
                json!({"name": format!("Lot {currency}"), "timezone": tz, "currency": currency}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(answer.body["minor_unit"], minor, "{currency}");
    }
}

async fn lot_names_are_unique_per_operator(app: TestApp) {
    let a = app.operator("A").await;
    let b = app.operator("B").await;
    app.lot(&a, "Central", "Asia/Shanghai", "CNY").await;
    let again = app
        .post(
            "/v1/operator/lots",
            Some(&a.key),
            json!({"name": "Central", "timezone": "Asia/Shanghai", "currency": "CNY"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.problem_code(), "lot_name_taken");
    // Another operator may use the same name.
    let theirs = app.lot(&b, "Central", "Asia/Shanghai", "CNY").await;
    let listed = app.get("/v1/operator/lots", Some(&b.key)).await;
    assert_eq!(listed.body["lots"][0]["id"], theirs.as_str());
    assert_eq!(listed.body["lots"][0]["name"], "Central");
    // ...and the first operator still has exactly one.
    let mine = app.get("/v1/operator/lots", Some(&a.key)).await;
    assert_eq!(mine.body["lots"].as_array().unwrap().len(), 1);
}

async fn lot_name_and_address_can_change(app: TestApp) {
    let op = app.operator("Renamer").await;
    let id = app.lot(&op, "Old Name", "Asia/Shanghai", "CNY").await;
    app.lot(&op, "Taken", "Asia/Shanghai", "CNY").await;
    let path = format!("/v1/operator/lots/{id}");
    let changed = app
        .patch(
            &path,
            Some(&op.key),
            json!({"name": "New Name", "address": "1 Main St"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["name"], "New Name");
    assert_eq!(changed.body["address"], "1 Main St");
    // Leaving a field out keeps it; null removes the address.
    let cleared = app
        .patch(&path, Some(&op.key), json!({"address": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["name"], "New Name");
    assert_eq!(cleared.body["address"], json!(null));
    // Time zone and currency are fixed: prices and past fees are expressed in them.
    let refused = app
        .patch(&path, Some(&op.key), json!({"currency": "USD"}))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.problem_code(), "unknown_field");
    let clash = app
        .patch(&path, Some(&op.key), json!({"name": "Taken"}))
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.problem_code(), "lot_name_taken");
    let bad = app.patch(&path, Some(&op.key), json!({"name": ""})).await;
    assert_eq!(bad.problem_code(), "validation_failed");
    assert_eq!(bad.error_paths(), vec!["$.name"]);
    let read = app.get(&path, Some(&op.key)).await;
    assert_eq!(read.body["name"], "New Name");
}
