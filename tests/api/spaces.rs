//! Spaces are created in bulk, all or none, with codes unique within their lot.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, both_backends};

both_backends!(
    creates_spaces_in_bulk_and_lists_them_by_code,
    duplicate_and_bad_codes_are_named_by_path,
    taken_codes_conflict_and_nothing_is_written,
    same_code_may_exist_in_two_lots,
    space_status_changes,
    bulk_size_is_bounded,
);

async fn creates_spaces_in_bulk_and_lists_them_by_code(app: TestApp) {
    let op = app.operator("Bulk").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let created = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": ["B-2", "A-1", "东区-3"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let spaces = created.body["spaces"].as_array().unwrap();
    assert_eq!(spaces.len(), 3);
    for (space, code) in spaces.iter().zip(["B-2", "A-1", "东区-3"]) {
        assert_eq!(space["code"], code);
        assert_eq!(space["status"], "active");
        assert_eq!(space["lot_id"], lot.as_str());
    }
    let listed = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    let codes: Vec<&str> = listed.body["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["A-1", "B-2", "东区-3"]);
    let one = app
        .get(
            &format!("/v1/operator/spaces/{}", spaces[0]["id"].as_str().unwrap()),
            Some(&op.key),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["code"], "B-2");
}

async fn duplicate_and_bad_codes_are_named_by_path(app: TestApp) {
    let op = app.operator("Typos").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let answer = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": ["A-1", "A 2", "A-1", "", "-X", "A".repeat(33)]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.problem_code(), "validation_failed");
    assert_eq!(
        answer.error_paths(),
        vec![
            "$.codes[1]",
            "$.codes[2]",
            "$.codes[3]",
            "$.codes[4]",
            "$.codes[5]"
        ]
    );
    let none = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": []}),
        )
        .await;
    assert_eq!(none.error_paths(), vec!["$.codes"]);
    let typed = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": ["A", 5]}),
        )
        .await;
    assert_eq!(typed.problem_code(), "validation_failed");
    assert_eq!(typed.error_paths(), vec!["$.codes[1]"]);
    let listed = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    assert_eq!(listed.body["spaces"], json!([]));
}

async fn taken_codes_conflict_and_nothing_is_written(app: TestApp) {
    let op = app.operator("Overlap").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    app.spaces(&op, &lot, &["A-1", "A-2"]).await;
    let answer = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": ["A-3", "A-2", "A-4", "A-1"]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.problem_code(), "space_code_taken");
    assert_eq!(answer.body["codes"], json!(["A-2", "A-1"]));
    let listed = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    assert_eq!(
        listed.body["spaces"].as_array().unwrap().len(),
        2,
        "A-3 must not exist"
    );
}

async fn same_code_may_exist_in_two_lots(app: TestApp) {
    let op = app.operator("Two Lots").await;
    let north = app.lot(&op, "North", "Asia/Shanghai", "CNY").await;
    let south = app.lot(&op, "South", "Asia/Shanghai", "CNY").await;
    let in_north = app.spaces(&op, &north, &["A-1"]).await;
    let in_south = app.spaces(&op, &south, &["A-1"]).await;
    assert_ne!(in_north, in_south, "two spaces, not one");
    for (lot, ids) in [(&north, &in_north), (&south, &in_south)] {
        let listed = app
            .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        let spaces = listed.body["spaces"].as_array().unwrap();
        assert_eq!(spaces.len(), 1, "{lot}");
        assert_eq!(spaces[0]["id"], ids[0].as_str());
        assert_eq!(spaces[0]["code"], "A-1");
        assert_eq!(spaces[0]["lot_id"], lot.as_str());
    }
}

async fn space_status_changes(app: TestApp) {
    let op = app.operator("Status").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let ids = app.spaces(&op, &lot, &["A-1"]).await;
    let path = format!("/v1/operator/spaces/{}", ids[0]);
    let off = app
        .patch(&path, Some(&op.key), json!({"status": "out_of_service"}))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["status"], "out_of_service");
    assert_eq!(
        app.get(&path, Some(&op.key)).await.body["status"],
        "out_of_service"
    );
    let on = app
        .patch(&path, Some(&op.key), json!({"status": "active"}))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    assert_eq!(on.body["status"], "active");
    let bad = app
        .patch(&path, Some(&op.key), json!({"status": "broken"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.problem_code(), "validation_failed");
    assert_eq!(bad.error_paths(), vec!["$.status"]);
}

async fn bulk_size_is_bounded(app: TestApp) {
    let op = app.operator("Huge").await;
    let lot = app.lot(&op, "Lot", "Asia/Shanghai", "CNY").await;
    let codes: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
    let answer = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": codes}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_paths(), vec!["$.codes"]);
    let codes: Vec<String> = (0..1000).map(|i| format!("S{i:04}")).collect();
    let answer = app
        .post(
            &format!("/v1/operator/lots/{lot}/spaces"),
            Some(&op.key),
            json!({"codes": codes}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["spaces"].as_array().unwrap().len(), 1000);
}
