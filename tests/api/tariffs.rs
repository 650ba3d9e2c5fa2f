//! Versioned tariffs and public quotes, priced exactly as docs/tariffs.md says.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestOperator, both_backends, qr_token, spec_tariff};

both_backends!(
    publishing_makes_immutable_versions,
    invalid_tariffs_list_every_problem,
    tariff_currency_must_match_the_lot,
    tariffs_are_private_to_their_operator,
    quotes_follow_the_spec_examples,
    quote_errors_are_clear,
    zero_decimal_currency_quotes,
    scan_shows_the_tariff_in_force,
);

async fn lot_with_tariff(app: &TestApp, op: &TestOperator, tariff: Value) -> String {
    let lot = app.lot(op, "Jing'an Temple", "Asia/Shanghai", "CNY").await;
    app.publish_tariff(op, &lot, tariff).await;
    lot
}

async fn publishing_makes_immutable_versions(app: TestApp) {
    let op = app.operator("Tariffs").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let path = format!("/v1/operator/lots/{lot}/tariff");
    let none = app.get(&path, Some(&op.key)).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.problem_code(), "no_tariff");

    let first = app.put(&path, Some(&op.key), spec_tariff()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["version"], 1);
    assert!(first.body["effective_from"].is_string());
    assert_eq!(first.body["tariff"]["rules"][1]["name"], "day");
    assert_eq!(first.body["tariff"]["daily_cap"]["amount"], "60.00");

    let mut cheaper = spec_tariff();
    cheaper["grace_minutes"] = json!(30);
    let second = app.put(&path, Some(&op.key), cheaper).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.body["version"], 2);

    let current = app.get(&path, Some(&op.key)).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["version"], 2);
    assert_eq!(current.body["tariff"]["grace_minutes"], 30);
    let versions: Vec<i64> = current.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    assert_eq!(current.body["history"][1]["tariff"]["grace_minutes"], 15);

    // The database itself refuses to change or delete a published version.
    assert!(
        app.try_execute("update tariff set document = '{}'")
            .await
            .is_err()
    );
    assert!(app.try_execute("delete from tariff").await.is_err());
    let again = app.get(&path, Some(&op.key)).await;
    assert_eq!(again.body["history"].as_array().unwrap().len(), 2);
}

async fn invalid_tariffs_list_every_problem(app: TestApp) {
    let op = app.operator("Sloppy").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let path = format!("/v1/operator/lots/{lot}/tariff");
    let bad = json!({
        "currency": "CNY",
        "rules": [
            { "name": "day", "from": "25:00", "to": "21:00",
              "price": { "every_minutes": 0, "amount": 2.5 } },
            { "name": "day", "days": ["funday"], "price": { "flat": "-1.00" } },
            { "name": "cents", "price": { "flat": "1.005" }, "colour": "red" }
        ]
    });
    let answer = app.put(&path, Some(&op.key), bad).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.problem_code(), "tariff_invalid");
    let paths = answer.error_paths();
    for expected in [
        "$.rules[0].from",
        "$.rules[0].price.every_minutes",
        "$.rules[0].price.amount",
        "$.rules[1].name",
        "$.rules[1].days[0]",
        "$.rules[1].price.flat",
        "$.rules[2].price.flat",
        "$.rules[2].colour",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }
    // Nothing was published.
    assert_eq!(
        app.get(&path, Some(&op.key)).await.problem_code(),
        "no_tariff"
    );
    // Not JSON at all is a different problem.
    let garbage = app
        .call_raw(
            Method::PUT,
            &path,
            Some(&op.key),
            Some("application/json"),
            b"{rules".to_vec(),
        )
        .await;
    assert_eq!(garbage.problem_code(), "malformed_json");
}

async fn tariff_currency_must_match_the_lot(app: TestApp) {
    let op = app.operator("Euro").await;
    let lot = app.lot(&op, "Berlin Mitte", "Europe/Berlin", "EUR").await;
    let answer = app
        .put(
            &format!("/v1/operator/lots/{lot}/tariff"),
            Some(&op.key),
            spec_tariff(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.problem_code(), "tariff_invalid");
    assert_eq!(answer.error_paths(), vec!["$.currency"]);
}

async fn tariffs_are_private_to_their_operator(app: TestApp) {
    let owner = app.operator("Owner").await;
    let intruder = app.operator("Intruder").await;
    let lot = lot_with_tariff(&app, &owner, spec_tariff()).await;
    let path = format!("/v1/operator/lots/{lot}/tariff");
    assert_eq!(
        app.get(&path, Some(&intruder.key)).await.status,
        StatusCode::NOT_FOUND
    );
    let put = app.put(&path, Some(&intruder.key), spec_tariff()).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
    assert_eq!(put.problem_code(), "not_found");
    assert_eq!(app.get(&path, Some(&owner.key)).await.body["version"], 1);
}

async fn quote(app: &TestApp, lot: &str, start: &str, end: &str) -> crate::helpers::Answer {
    app.post(
        &format!("/v1/lots/{lot}/quote"),
        None,
        json!({"start": start, "end": end}),
    )
    .await
}

async fn quotes_follow_the_spec_examples(app: TestApp) {
    let op = app.operator("Quoter").await;
    let lot = lot_with_tariff(&app, &op, spec_tariff()).await;
    // 2026-09-29 is a Tuesday; 2026-10-01 a Thursday (the national-day rule).
    for (start, end, total) in [
        (
            "2026-09-29T10:00:00+08:00",
            "2026-09-29T10:15:00+08:00",
            "0.00",
        ),
        (
            "2026-09-29T10:00:00+08:00",
            "2026-09-29T10:16:00+08:00",
            "5.00",
        ),
        (
            "2026-09-29T10:00:00+08:00",
            "2026-09-29T12:00:00+08:00",
            "25.00",
        ),
        (
            "2026-09-29T20:30:00+08:00",
            "2026-09-29T22:00:00+08:00",
            "6.00",
        ),
        (
            "2026-09-29T06:00:00+08:00",
            "2026-09-29T07:20:00+08:00",
            "8.50",
        ),
        (
            "2026-10-01T09:00:00+08:00",
            "2026-10-01T11:00:00+08:00",
            "20.00",
        ),
    ] {
        let answer = quote(&app, &lot, start, end).await;
        assert_eq!(answer.status, StatusCode::OK, "{start}: {}", answer.text);
        assert_eq!(
            answer.body["total"], total,
            "{start} - {end}: {}",
            answer.text
        );
        assert_eq!(answer.body["currency"], "CNY");
        assert_eq!(answer.body["tariff_version"], 1);
    }
    // The breakdown of 06:00-07:20: night then day at the second step.
    let answer = quote(
        &app,
        &lot,
        "2026-09-29T06:00:00+08:00",
        "2026-09-29T07:20:00+08:00",
    )
    .await;
    assert_eq!(
        answer.body["lines"],
        json!([
            {"rule": "night", "from": "2026-09-29T06:00:00+08:00", "to": "2026-09-29T07:00:00+08:00",
             "increments": 1, "amount": "1.00", "charged": "1.00"},
            {"rule": "day", "from": "2026-09-29T07:00:00+08:00", "to": "2026-09-29T07:20:00+08:00",
             "increments": 2, "amount": "7.50", "charged": "7.50"}
        ])
    );
    // The same instants in UTC price the same.
    let utc = quote(&app, &lot, "2026-09-28T22:00:00Z", "2026-09-28T23:20:00Z").await;
    assert_eq!(utc.body["total"], "8.50");
}

async fn quote_errors_are_clear(app: TestApp) {
    let op = app.operator("Errors").await;
    let bare = app.lot(&op, "No Tariff Yet", "Asia/Shanghai", "CNY").await;
    let answer = quote(
        &app,
        &bare,
        "2026-09-29T10:00:00+08:00",
        "2026-09-29T11:00:00+08:00",
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.problem_code(), "no_tariff");

    let unknown = quote(
        &app,
        "01900000-0000-7000-8000-000000000000",
        "2026-09-29T10:00:00Z",
        "2026-09-29T11:00:00Z",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.problem_code(), "not_found");

    let lot = lot_with_tariff(&app, &op, spec_tariff()).await;
    let backwards = quote(
        &app,
        &lot,
        "2026-09-29T11:00:00+08:00",
        "2026-09-29T10:00:00+08:00",
    )
    .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(backwards.error_paths(), vec!["$.end"]);
    let long = quote(&app, &lot, "2026-09-01T00:00:00Z", "2026-10-02T00:00:01Z").await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.error_paths(), vec!["$.end"]);
    let month = quote(&app, &lot, "2026-09-01T00:00:00Z", "2026-10-02T00:00:00Z").await;
    assert_eq!(month.status, StatusCode::OK, "{}", month.text);
    let malformed = quote(&app, &lot, "yesterday", "2026-09-29T10:00:00Z").await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(malformed.error_paths(), vec!["$.start"]);
    let zero = quote(&app, &lot, "2026-09-29T10:00:00Z", "2026-09-29T10:00:00Z").await;
    assert_eq!(zero.body["total"], "0.00");
}

async fn zero_decimal_currency_quotes(app: TestApp) {
    let op = app.operator("Tokyo").await;
    let lot = app.lot(&op, "Shinjuku", "Asia/Tokyo", "JPY").await;
    let tariff = json!({
        "currency": "JPY",
        "rules": [{ "name": "all-day", "price": { "every_minutes": 20, "amount": "300" }, "cap": "1200" }]
    });
    app.publish_tariff(&op, &lot, tariff).await;
    // 10:00-11:30 is 5 increments of 20 minutes (the last one whole): 1500, capped at 1200.
    let answer = quote(
        &app,
        &lot,
        "2026-09-29T10:00:00+09:00",
        "2026-09-29T11:30:00+09:00",
    )
    .await;
    assert_eq!(answer.body["total"], "1200", "{}", answer.text);
    assert_eq!(answer.body["lines"][0]["amount"], "1500");
    let fractional = json!({"currency": "JPY", "rules": [{"name": "x", "price": {"flat": "1.5"}}]});
    let bad = app
        .put(
            &format!("/v1/operator/lots/{lot}/tariff"),
            Some(&op.key),
            fractional,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.problem_code(), "tariff_invalid");
    assert_eq!(bad.error_paths(), vec!["$.rules[0].price.flat"]);
}

async fn scan_shows_the_tariff_in_force(app: TestApp) {
    let op = app.operator("Scan").await;
    let lot = lot_with_tariff(&app, &op, spec_tariff()).await;
    let ids = app.spaces(&op, &lot, &["A-1"]).await;
    let space = app
        .get(&format!("/v1/operator/spaces/{}", ids[0]), Some(&op.key))
        .await;
    assert_eq!(space.status, StatusCode::OK, "{}", space.text);
    let token = qr_token(space.body["qr_url"].as_str().unwrap());
    let scan = app.get(&format!("/v1/scan/{token}"), None).await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.text);
    assert_eq!(scan.body["space"]["id"], ids[0].as_str());
    assert_eq!(scan.body["tariff"]["version"], 1);
    assert_eq!(scan.body["tariff"]["tariff"]["rules"][2]["name"], "night");
}
