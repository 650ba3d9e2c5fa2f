//! What would otherwise grow without bound: idempotency keys are forgotten after their 24
//! hours by the loop every `serve` and `demo` process runs.

use chrono::TimeDelta;
use reqwest::StatusCode;

use crate::helpers::{TestApp, both_backends};
use crate::sessions::{parking_lot, start};

both_backends!(the_session_loop_forgets_idempotency_keys_after_a_day);

async fn idempotency_keys(app: &TestApp) -> i64 {
    let sql = "select count(*) from idempotency_key";
    match &app.db {
        qrpark::store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        qrpark::store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("count idempotency keys")
}

async fn the_session_loop_forgets_idempotency_keys_after_a_day(app: TestApp) {
    let op = app.operator("Housekeeping").await;
    let (_, spaces) = parking_lot(&app, &op, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-1");
    for (i, (_, qr)) in spaces.iter().enumerate() {
        let started = start(&app, &driver, &format!("key-{i}"), qr).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    }
    assert_eq!(idempotency_keys(&app).await, 2);

    // Within their day the keys stay: a retry must still find its answer.
    app.clock.advance(TimeDelta::hours(23));
    let purged = qrpark::sessions::scheduler::purge_idempotency_keys(&app.state)
        .await
        .unwrap();
    assert_eq!(purged, 0);
    assert_eq!(idempotency_keys(&app).await, 2);

    // Past it, the background loop (as `serve` spawns it) forgets them on its first round.
    app.clock.advance(TimeDelta::hours(2));
    qrpark::sessions::scheduler::spawn(app.state.clone());
    let began = std::time::Instant::now();
    while idempotency_keys(&app).await > 0 {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(20),
            "the background loop never purged the keys"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
