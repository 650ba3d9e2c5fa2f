//! Bad input of every kind gets problem JSON with a stable code, never a 500.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, both_backends};

both_backends!(
    malformed_json_is_400,
    wrong_content_type_is_415,
    unknown_field_is_422,
    oversized_body_is_413,
    unknown_route_and_wrong_method,
    ids_that_cannot_exist_are_404,
    database_failure_is_500_without_its_cause,
);

async fn malformed_json_is_400(app: TestApp) {
    let op = app.operator("Json").await;
    for body in [&b"{\"name\": "[..], b"not json", b"", b"{\"name\": \"x\",}"] {
        let answer = app
            .call_raw(
                Method::POST,
                "/v1/operator/lots",
                Some(&op.key),
                Some("application/json"),
                body.to_vec(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(answer.problem_code(), "malformed_json");
    }
}

async fn wrong_content_type_is_415(app: TestApp) {
    let op = app.operator("Form").await;
    let body = br#"{"name":"A","timezone":"UTC","currency":"EUR"}"#.to_vec();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let answer = app
            .call_raw(
                Method::POST,
                "/v1/operator/lots",
                Some(&op.key),
                content_type,
                body.clone(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(answer.problem_code(), "unsupported_media_type");
    }
    // A JSON type with parameters is fine.
    let answer = app
        .call_raw(
            Method::POST,
            "/v1/operator/lots",
            Some(&op.key),
            Some("application/json; charset=utf-8"),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

async fn unknown_field_is_422(app: TestApp) {
    let op = app.operator("Extra").await;
    let answer = app
        .post(
            "/v1/operator/lots",
            Some(&op.key),
            serde_json::json!({"name": "A", "timezone": "UTC", "currency": "EUR", "colour": "red"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.problem_code(), "unknown_field");
    assert_eq!(answer.error_paths(), vec!["$.colour"]);
}

async fn oversized_body_is_413(app: TestApp) {
    let op = app.operator("Big").await;
    // The test app accepts 64 KiB.
    let codes: Vec<String> = (0..10_000).map(|i| format!("SPACE-{i:08}")).collect();
    let body = serde_json::to_vec(&serde_json::json!({"codes": codes})).unwrap();
    assert!(body.len() > 64 * 1024);
    let answer = app
        .call_raw(
            Method::POST,
            "/v1/operator/lots",
            Some(&op.key),
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.problem_code(), "payload_too_large");
}

async fn unknown_route_and_wrong_method(app: TestApp) {
    let answer = app.get("/v1/nowhere", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.problem_code(), "not_found");
    let answer = app
        .call(Method::DELETE, "/v1/operator/lots", None, None)
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.problem_code(), "method_not_allowed");
    let allow = answer.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

async fn ids_that_cannot_exist_are_404(app: TestApp) {
    let op = app.operator("Lost").await;
    for path in [
        "/v1/operator/lots/not-a-uuid",
        "/v1/operator/lots/00000000-0000-7000-8000-000000000000",
        "/v1/operator/spaces/12345",
        "/v1/operator/lots/00000000-0000-7000-8000-000000000000/spaces",
    ] {
        let answer = app.get(path, Some(&op.key)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.problem_code(), "not_found");
    }
}

async fn database_failure_is_500_without_its_cause(app: TestApp) {
    let op = app.operator("Broken").await;
    let lot = app.lot(&op, "Lot", "UTC", "EUR").await;
    // Simulate a broken database: the table the route reads has vanished.
    app.execute("alter table space rename to space_gone").await;
    let answer = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.problem_code(), "internal");
    let text = answer.text.to_lowercase();
    assert!(
        !text.contains("space") && !text.contains("table") && !text.contains("sql"),
        "{text}"
    );
}

/// The error table of docs/api.md lists exactly the codes the API answers, each under its
/// status (a code answered with two statuses, like `no_tariff`, lists both).
#[test]
fn the_documented_error_table_is_the_error_vocabulary() {
    use std::collections::BTreeSet;

    use qrpark::http::error::ErrorCode;

    let doc = include_str!("../../docs/api.md");
    let table = doc
        .split("### Errors")
        .nth(1)
        .expect("docs/api.md has an Errors section");
    let mut documented = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let codes: Vec<&str> = cells[1].split('`').skip(1).step_by(2).collect();
        let statuses: Vec<u16> = cells[2]
            .split('/')
            .map(|s| s.trim().parse().expect("a status"))
            .collect();
        for code in &codes {
            for status in &statuses {
                documented.insert((code.to_string(), *status));
            }
        }
    }
    let answered: BTreeSet<(String, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.code().to_owned(), c.status().as_u16()))
        .collect();
    assert_eq!(documented, answered);
}
