//! An operator never sees or touches another operator's lots and spaces: every route
//! answers 404, exactly as for something that does not exist, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, both_backends};

both_backends!(other_operators_data_is_invisible_and_untouchable);

async fn other_operators_data_is_invisible_and_untouchable(app: TestApp) {
    let owner = app.operator("Owner").await;
    let intruder = app.operator("Intruder").await;
    let lot = app.lot(&owner, "Private", "Asia/Shanghai", "CNY").await;
    let space = app.spaces(&owner, &lot, &["A-1"]).await.remove(0);
    app.lot(&intruder, "Own Lot", "Asia/Shanghai", "CNY").await;

    let list = app.get("/v1/operator/lots", Some(&intruder.key)).await;
    let names: Vec<&str> = list.body["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Own Lot"]);

    let attempts = [
        (Method::GET, format!("/v1/operator/lots/{lot}"), None),
        (
            Method::PATCH,
            format!("/v1/operator/lots/{lot}"),
            Some(json!({"name": "Mine"})),
        ),
        (Method::GET, format!("/v1/operator/lots/{lot}/spaces"), None),
        (
            Method::POST,
            format!("/v1/operator/lots/{lot}/spaces"),
            Some(json!({"codes": ["X-1"]})),
        ),
        (Method::GET, format!("/v1/operator/spaces/{space}"), None),
        (
            Method::PATCH,
            format!("/v1/operator/spaces/{space}"),
            Some(json!({"status": "out_of_service"})),
        ),
    ];
    for (method, path, body) in attempts {
        let answer = app
            .call(method.clone(), &path, Some(&intruder.key), body)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            answer.text
        );
        assert_eq!(answer.problem_code(), "not_found");
    }

    // The owner's data is exactly as it was.
    let read = app
        .get(&format!("/v1/operator/lots/{lot}"), Some(&owner.key))
        .await;
    assert_eq!(read.body["name"], "Private");
    let spaces = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&owner.key))
        .await;
    let spaces = spaces.body["spaces"].as_array().unwrap();
    assert_eq!(spaces.len(), 1);
    assert_eq!(spaces[0]["status"], "active");
}
