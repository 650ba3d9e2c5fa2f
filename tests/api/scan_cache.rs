//! Public reads are served from each process's cache (src/store/cache.rs), and a change made
//! through one process is seen by every other within a second: two apps on one database,
//! each with its own cache, as two `qrpark serve` behind one load balancer. Each test warms
//! the other app's cache first, so that it would keep answering the old answer if nothing
//! invalidated it.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Answer, TestApp, TestOperator, both_backends, qr_token, spec_tariff};
use crate::sessions::start;

both_backends!(
    a_rotated_code_is_refused_by_every_process_within_a_second,
    a_space_out_of_service_is_seen_by_every_process_within_a_second,
    a_changed_lot_and_a_new_tariff_are_seen_by_every_process_within_a_second,
);

/// What the processes promise: a change is seen by every process within this.
const BOUND: Duration = Duration::from_secs(1);

/// A lot with the spec's tariff and one space; returns (lot id, space id, its token).
async fn one_space(app: &TestApp, op: &TestOperator) -> (String, String, String) {
    let lot = app.lot(op, "Cached Parking", "Asia/Shanghai", "CNY").await;
    app.publish_tariff(op, &lot, spec_tariff()).await;
    let space = app.create_spaces(op, &lot, &["A-1"]).await.remove(0);
    let id = space["id"].as_str().unwrap().to_owned();
    let token = qr_token(space["qr_url"].as_str().unwrap()).to_owned();
    (lot, id, token)
}

async fn scan(app: &TestApp, token: &str) -> Answer {
    app.get(&format!("/v1/scan/{token}"), None).await
}

/// Asks `ask` again and again from `changed_at` on until `seen` holds of the answer, and
/// asserts that no answer asked for more than [`BOUND`] after the change was still the old
/// one. Returns how long it took to be seen.
async fn seen_within_the_bound<F, Fut>(
    changed_at: Instant,
    what: &str,
    ask: F,
    seen: impl Fn(&Answer) -> bool,
) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Answer>,
{
    loop {
        let asked = changed_at.elapsed();
        let answer = ask().await;
        if seen(&answer) {
            eprintln!("{what}: seen {} ms after the change", asked.as_millis());
            return asked;
        }
        assert!(
            asked < BOUND,
            "{what}: still the old answer when asked {} ms after the change: {}",
            asked.as_millis(),
            answer.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_rotated_code_is_refused_by_every_process_within_a_second(a: TestApp) {
    let b = a.another().await;
    let op = a.operator("Rotating").await;
    let (_, space_id, old) = one_space(&a, &op).await;
    // Both caches hold the space at version 1 (the second scan is served from them).
    for app in [&a, &b, &a, &b] {
        let warm = scan(app, &old).await;
        assert_eq!(warm.status, StatusCode::OK, "{}", warm.text);
        assert_eq!(warm.body["space"]["qr_version"], 1);
    }

    let new = a.rotate_code(&op, &space_id).await;
    let rotated_at = Instant::now();
    // The process that rotated refuses the old code at once...
    let here = scan(&a, &old).await;
    assert_eq!(here.status, StatusCode::GONE, "{}", here.text);
    assert_eq!(here.problem_code(), "qr_revoked");
    // ...and a start through the other one too, whatever its cache still says: the start's
    // transaction checks the code's version again.
    // The new code is genuine on the other process at once, though its cache still holds
    // version 1: a code newer than the cache is asked of the database, never called forged.
    let newer = scan(&b, &new).await;
    assert_eq!(newer.status, StatusCode::OK, "{}", newer.text);
    assert_eq!(newer.body["space"]["qr_version"], 2);
    let driver = b.driver_token("driver-1");
    let started = start(&b, &driver, "tap-1", &old).await;
    assert_eq!(started.status, StatusCode::GONE, "{}", started.text);
    assert_eq!(started.problem_code(), "qr_revoked");
    let replayed = start(&b, &driver, "tap-1", &old).await;
    assert_eq!(replayed.text, started.text, "the refusal is remembered");
    // The other process's scans follow within the bound.
    seen_within_the_bound(
        rotated_at,
        "rotation",
        || scan(&b, &old),
        |answer| answer.status == StatusCode::GONE,
    )
    .await;
    let refused = scan(&b, &old).await;
    assert_eq!(refused.problem_code(), "qr_revoked");
    for app in [&a, &b] {
        let current = scan(app, &new).await;
        assert_eq!(current.status, StatusCode::OK, "{}", current.text);
        assert_eq!(current.body["space"]["qr_version"], 2);
    }
    let parked = start(&b, &driver, "tap-2", &new).await;
    assert_eq!(parked.status, StatusCode::CREATED, "{}", parked.text);
}

async fn a_space_out_of_service_is_seen_by_every_process_within_a_second(a: TestApp) {
    let b = a.another().await;
    let op = a.operator("Closing").await;
    let (_, space_id, token) = one_space(&a, &op).await;
    let path = format!("/v1/scan/{token}");
    for app in [&a, &b, &a, &b] {
        let warm = app.get(&path, None).await;
        assert_eq!(warm.body["space"]["available"], true, "{}", warm.text);
    }
    let phone = b.get(&format!("/q/{token}"), None).await;
    assert_eq!(phone.status, StatusCode::OK);

    let closed = a
        .patch(
            &format!("/v1/operator/spaces/{space_id}"),
            Some(&op.key),
            json!({"status": "out_of_service"}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    let closed_at = Instant::now();
    let here = a.get(&path, None).await;
    assert_eq!(
        here.body["space"]["status"], "out_of_service",
        "at once here"
    );
    // A start through the other process is refused at once, by its transaction.
    let started = start(&b, &b.driver_token("driver-1"), "tap-1", &token).await;
    assert_eq!(started.status, StatusCode::CONFLICT, "{}", started.text);
    assert_eq!(started.problem_code(), "space_out_of_service");
    seen_within_the_bound(
        closed_at,
        "out of service",
        || b.get(&path, None),
        |answer| answer.body["space"]["status"] == "out_of_service",
    )
    .await;
    let after = b.get(&path, None).await;
    assert_eq!(after.body["space"]["available"], false);

    // And back into service, the same way.
    let reopened = a
        .patch(
            &format!("/v1/operator/spaces/{space_id}"),
            Some(&op.key),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
    seen_within_the_bound(
        Instant::now(),
        "back in service",
        || b.get(&path, None),
        |answer| answer.body["space"]["available"] == true,
    )
    .await;
}

async fn a_changed_lot_and_a_new_tariff_are_seen_by_every_process_within_a_second(a: TestApp) {
    let b = a.another().await;
    let op = a.operator("Renaming").await;
    let (lot, _, token) = one_space(&a, &op).await;
    let scan = format!("/v1/scan/{token}");
    let quote = format!("/v1/lots/{lot}/quote");
    let two_hours = json!({"start": "2026-09-29T02:00:00Z", "end": "2026-09-29T04:00:00Z"});
    for app in [&a, &b, &a, &b] {
        let warm = app.get(&scan, None).await;
        assert_eq!(warm.body["lot"]["name"], "Cached Parking", "{}", warm.text);
        let priced = app.post(&quote, None, two_hours.clone()).await;
        assert_eq!(priced.body["tariff_version"], 1, "{}", priced.text);
        assert_eq!(priced.body["total"], "25.00");
    }

    let renamed = a
        .patch(
            &format!("/v1/operator/lots/{lot}"),
            Some(&op.key),
            json!({"name": "Renamed Parking"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let renamed_at = Instant::now();
    assert_eq!(
        a.get(&scan, None).await.body["lot"]["name"],
        "Renamed Parking"
    );
    seen_within_the_bound(
        renamed_at,
        "lot renamed",
        || b.get(&scan, None),
        |answer| answer.body["lot"]["name"] == "Renamed Parking",
    )
    .await;

    // A dearer tariff: 4 x 2.50 + 4 x 9.99 for the same two hours.
    let mut dearer = spec_tariff();
    dearer["rules"][1]["price"]["steps"][1]["amount"] = json!("9.99");
    let published = a.publish_tariff(&op, &lot, dearer).await;
    assert_eq!(published["version"], 2);
    let published_at = Instant::now();
    let here = a.post(&quote, None, two_hours.clone()).await;
    assert_eq!(
        here.body["tariff_version"], 2,
        "at once here: {}",
        here.text
    );
    assert_eq!(here.body["total"], "49.96");
    seen_within_the_bound(
        published_at,
        "tariff published",
        || b.post(&quote, None, two_hours.clone()),
        |answer| answer.body["tariff_version"] == 2,
    )
    .await;
    let there = b.get(&scan, None).await;
    assert_eq!(there.body["tariff"]["version"], 2, "{}", there.text);
    // A start through the other process reads the version in force from the database.
    let started = start(&b, &b.driver_token("driver-1"), "tap-1", &token).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    assert_eq!(started.body["tariff_version"], 2);
}
