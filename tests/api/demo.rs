//! `qrpark demo` seeds its data idempotently, on either backend.

use crate::helpers::{TestApp, both_backends};

both_backends!(demo_seed_is_idempotent);

async fn demo_seed_is_idempotent(app: TestApp) {
    let first = qrpark::cli::demo::seed(&app.state)
        .await
        .expect("first seed");
    let second = qrpark::cli::demo::seed(&app.state)
        .await
        .expect("second seed");
    assert_eq!(first.lot_id, second.lot_id);
    assert_eq!(first.spaces, 8);
    assert_eq!(second.spaces, 8);
    let lots = app.get("/v1/operator/lots", Some(&first.api_key)).await;
    assert_eq!(lots.status, reqwest::StatusCode::OK, "{}", lots.text);
    let lots = lots.body["lots"].as_array().unwrap();
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0]["timezone"], "Asia/Shanghai");
    let spaces = app
        .get(
            &format!("/v1/operator/lots/{}/spaces", first.lot_id),
            Some(&first.api_key),
        )
        .await;
    assert_eq!(spaces.status, reqwest::StatusCode::OK, "{}", spaces.text);
    assert_eq!(spaces.body["spaces"].as_array().unwrap().len(), 8);
    // One tariff version, however often the demo starts, and it prices quotes.
    let tariff = app
        .get(
            &format!("/v1/operator/lots/{}/tariff", first.lot_id),
            Some(&first.api_key),
        )
        .await;
    assert_eq!(tariff.status, reqwest::StatusCode::OK, "{}", tariff.text);
    assert_eq!(tariff.body["history"].as_array().unwrap().len(), 1);
    let quote = app
        .post(
            &format!("/v1/lots/{}/quote", first.lot_id),
            None,
            serde_json::json!({"start": "2026-09-29T09:00:00+08:00", "end": "2026-09-29T11:30:00+08:00"}),
        )
        .await;
    assert_eq!(quote.status, reqwest::StatusCode::OK, "{}", quote.text);
    // shanghai-commercial.json, by hand: 09:00 and 09:30 are two 30-minute increments of
    // the first step (5.00 each); from elapsed minute 60 the hourly step applies: 10:00 and
    // 11:00 at 8.00 each. 10.00 + 16.00 = 26.00.
    assert_eq!(quote.body["total"], "26.00", "{}", quote.text);
}
