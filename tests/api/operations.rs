//! Health, metrics, the OpenAPI document, the offline docs page and request ids.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

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
    let read = app
        .get(&format!("/v1/operator/lots/{lot}"), Some(&op.key))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
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

/// Every route of the JSON API, as `routes()` in src/http/** registers it (method and path
/// as OpenAPI writes them). /openapi.json must document exactly these.
const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/v1/scan/{token}"),
    ("post", "/v1/lots/{lot_id}/quote"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions/{session_id}"),
    ("post", "/v1/sessions/{session_id}/stop"),
    ("get", "/v1/sessions/{session_id}/receipt"),
    ("get", "/v1/me/sessions"),
    ("get", "/v1/me/arrears"),
    ("post", "/v1/me/arrears/{session_id}/pay"),
    ("get", "/v1/sessions/{session_id}/proof"),
    ("get", "/v1/enforcement/check"),
    ("get", "/v1/enforcement/lots"),
    ("get", "/v1/enforcement/lots/{lot_id}/spaces"),
    ("get", "/v1/enforcement/violations"),
    ("post", "/v1/enforcement/violations"),
    ("get", "/v1/audit/sessions"),
    ("get", "/v1/audit/checkpoint"),
    ("get", "/v1/audit/summary"),
    ("get", "/v1/operator/lots"),
    ("post", "/v1/operator/lots"),
    ("get", "/v1/operator/lots/{lot_id}"),
    ("patch", "/v1/operator/lots/{lot_id}"),
    ("get", "/v1/operator/lots/{lot_id}/spaces"),
    ("post", "/v1/operator/lots/{lot_id}/spaces"),
    ("get", "/v1/operator/lots/{lot_id}/tariff"),
    ("put", "/v1/operator/lots/{lot_id}/tariff"),
    ("get", "/v1/operator/lots/{lot_id}/occupancy"),
    ("get", "/v1/operator/lots/{lot_id}/qr-sheet.pdf"),
    ("get", "/v1/operator/spaces/{space_id}"),
    ("patch", "/v1/operator/spaces/{space_id}"),
    ("post", "/v1/operator/spaces/{space_id}/qr/rotate"),
    ("get", "/v1/operator/spaces/{space_id}/qr.png"),
    ("get", "/v1/operator/spaces/{space_id}/qr.svg"),
    ("get", "/v1/operator/sessions"),
    ("post", "/v1/operator/sessions/{session_id}/stop"),
    ("post", "/v1/operator/sessions/{session_id}/refunds"),
    ("get", "/v1/operator/sessions/{session_id}/refunds"),
    ("post", "/v1/operator/tariffs/validate"),
    ("get", "/v1/operator/metrics"),
    // Served only with the demo identity provider, as under `qrpark demo` and in tests.
    ("post", "/v1/demo/token"),
];

/// Routes the app serves outside the JSON API, so deliberately not in /openapi.json: the
/// phone and warden pages (src/http/pages), their assets, and the API's own documentation.
const PAGE_ROUTES: &[(&str, &str)] = &[
    ("get", "/q/callback"),
    ("get", "/warden"),
    ("get", "/q/{token}"),
    ("get", "/assets/{name}"),
    // The operator console (src/http/console): HTML forms on a session cookie.
    ("get", "/console"),
    ("get", "/console/sign-in"),
    ("post", "/console/sign-in"),
    ("post", "/console/sign-out"),
    ("get", "/console/lots"),
    ("post", "/console/lots"),
    ("get", "/console/lots/{lot_id}"),
    ("post", "/console/lots/{lot_id}"),
    ("post", "/console/lots/{lot_id}/spaces"),
    ("get", "/console/lots/{lot_id}/occupancy"),
    ("get", "/console/lots/{lot_id}/qr-sheet.pdf"),
    ("post", "/console/spaces/{space_id}/status"),
    ("get", "/console/spaces/{space_id}/rotate"),
    ("post", "/console/spaces/{space_id}/rotate"),
    ("get", "/console/spaces/{space_id}/qr.png"),
    ("get", "/console/spaces/{space_id}/qr.svg"),
    ("get", "/console/lots/{lot_id}/tariff"),
    ("post", "/console/lots/{lot_id}/tariff/check"),
    ("post", "/console/lots/{lot_id}/tariff/publish"),
    ("get", "/console/lots/{lot_id}/tariff/diff"),
    ("get", "/console/sessions"),
    ("post", "/console/sessions/{session_id}/stop"),
    ("get", "/console/metrics"),
    ("get", "/console/metrics.csv"),
    ("get", "/console/assets/{name}"),
    ("get", "/openapi.json"),
    ("get", "/docs/"),
];

/// The (method, path) pairs a document's `paths` hold.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| ((*m).to_owned(), path.clone()))
        })
        .collect()
}

/// Whether the app answers `method path` from a route of its own rather than from the
/// fallbacks for an unknown path (404 `not_found`, "no route matches") or method (405).
async fn served(app: &TestApp, method: &str, path: &str) -> bool {
    let id = Uuid::now_v7().to_string();
    let concrete = path
        .replace("{lot_id}", &id)
        .replace("{space_id}", &id)
        .replace("{session_id}", &id)
        .replace("{token}", "not-a-token")
        .replace("{name}", "no-such-asset.css");
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let body = (method != Method::GET).then(|| json!({}));
    let answer = app.call(method, &concrete, None, body).await;
    let unrouted = answer.status == StatusCode::NOT_FOUND
        && answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("no route matches"));
    !unrouted && answer.status != StatusCode::METHOD_NOT_ALLOWED
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

    // Exactly the API's routes, each with exactly its methods.
    let expected: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let got = documented(doc);
    let undocumented: Vec<_> = expected.difference(&got).collect();
    let unlisted: Vec<_> = got.difference(&expected).collect();
    assert!(undocumented.is_empty(), "undocumented: {undocumented:?}");
    assert!(
        unlisted.is_empty(),
        "documented but not in the list: {unlisted:?}"
    );

    // The list is the app's: every route in it is served, and the check can tell.
    for (method, path) in API_ROUTES.iter().chain(PAGE_ROUTES) {
        assert!(
            served(&app, method, path).await,
            "{method} {path} is not served"
        );
    }
    assert!(!served(&app, "get", "/v1/nowhere").await);
    assert!(!served(&app, "delete", "/v1/operator/lots").await);
    for (_, path) in PAGE_ROUTES {
        assert!(doc["paths"].get(*path).is_none(), "{path} is documented");
    }

    // The library's document is the served one, without the demo-only route.
    let library = serde_json::to_value(qrpark::http::openapi()).unwrap();
    let mut served_without_demo = got.clone();
    served_without_demo.remove(&("post".to_owned(), "/v1/demo/token".to_owned()));
    assert_eq!(documented(&library), served_without_demo);

    let problem = &doc["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["properties"].get(member).is_some(),
            "Problem lacks {member}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["operator_key"].is_object());
    assert!(doc["components"]["securitySchemes"]["city_identity"].is_object());
    // Its prose points only to files a clone has.
    assert!(!answer.text.contains("spec/"), "cites a spec/ file");
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
