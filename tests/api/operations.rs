//! Health, metrics, the OpenAPI document, the offline docs page and request ids.

use reqwest::StatusCode;

use crate::helpers::{TestApp, both_backends};

both_backends!(
    health_checks_the_database,
    metrics_count_requests_by_route_and_status,
    openapi_documents_every_route,
    docs_page_works_offline,
    every_answer_carries_a_request_id,
);

async fn health_checks_the_database(app: TestApp) {
    let answer = app.get("/healthz", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "ok");
    let expected = match app.db.backend() {
        qrpark::config::Backend::Sqlite => "sqlite",
        qrpark::config::Backend::Postgres => "postgres",
    };
    assert_eq!(answer.body["database"], expected);
    app.db.close().await;
    let answer = app.get("/healthz", None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.problem_code(), "unavailable");
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    let op = app.operator("Metered").await;
    let lot = app.lot(&op, "Counted", "UTC", "EUR").await;
    app.get(&format!("/v1/operator/lots/{lot}"), Some(&op.key))
        .await;
    let answer = app.get("/metrics", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let text = &answer.text;
    // Route templates, not raw ids, label the series.
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/v1/operator/lots/{lot_id}",status="200"}"#
        ),
        "{text}"
    );
    assert!(!text.contains(&lot), "raw ids leak into labels");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("db_pool_connections{"), "{text}");
}

async fn openapi_documents_every_route(app: TestApp) {
    let answer = app.get("/openapi.json", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = &answer.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/metrics", &["get"]),
        ("/v1/operator/lots", &["get", "post"]),
        ("/v1/operator/lots/{lot_id}", &["get", "patch"]),
        ("/v1/operator/lots/{lot_id}/spaces", &["get", "post"]),
        ("/v1/operator/spaces/{space_id}", &["get", "patch"]),
    ] {
        for method in methods {
            assert!(
                paths[path].get(*method).is_some(),
                "{method} {path} is undocumented"
            );
        }
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["properties"].get(member).is_some(),
            "Problem lacks {member}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["operator_key"].is_object());
}

async fn docs_page_works_offline(app: TestApp) {
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("swagger"), "{}", page.text);
    // Every asset the page loads is served by qrpark itself: no CDN.
    for line in page
        .text
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "external asset: {line}"
        );
    }
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        assert_eq!(app.get(asset, None).await.status, StatusCode::OK, "{asset}");
    }
}

async fn every_answer_carries_a_request_id(app: TestApp) {
    let answer = app.get("/healthz", None).await;
    let id = answer.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let error = app.get("/nowhere", None).await;
    assert!(error.headers.contains_key("x-request-id"));
    let echoed = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
}
