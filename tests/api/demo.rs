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
    let lots = lots.body["lots"].as_array().unwrap();
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0]["timezone"], "Asia/Shanghai");
    let spaces = app
        .get(
            &format!("/v1/operator/lots/{}/spaces", first.lot_id),
            Some(&first.api_key),
        )
        .await;
    assert_eq!(spaces.body["spaces"].as_array().unwrap().len(), 8);
}
