//! The OpenAPI document is exact (issue 16, point 10): every refusal an operation answers is
//! documented under its status, with problem JSON and its code named, and the request
//! schemas say what the validation enforces. `.ci/schemathesis` fuzzes the whole document;
//! these tests keep it from drifting between runs, and pin the server bugs the fuzzer found.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, both_backends};

both_backends!(
    every_operation_documents_what_its_extractors_refuse,
    every_refusal_an_operation_answers_is_documented,
    request_schemas_refuse_unknown_members,
    a_path_that_is_not_utf8_is_a_forged_code,
    filters_before_1970_or_after_9999_select_like_the_bounds,
    demo_subjects_are_counted_in_characters,
    a_body_that_is_an_array_is_refused,
);

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// The body most operations are first sent: an empty object.
const EMPTY_OBJECT: &[u8] = b"{}";

/// Every (method, path, operation) of the served document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    assert!(found.len() > 40, "{} operations", found.len());
    found
}

fn parameters<'a>(operation: &'a Value, place: &str) -> Vec<&'a Value> {
    operation["parameters"]
        .as_array()
        .map(|all| all.iter().filter(|p| p["in"] == place).collect())
        .unwrap_or_default()
}

fn security(operation: &Value) -> String {
    operation["security"].to_string()
}

fn tagged(operation: &Value, tag: &str) -> bool {
    operation["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == tag))
}

/// The codes a response's description names in backticks.
fn named_codes(response: &Value) -> Vec<String> {
    response["description"]
        .as_str()
        .unwrap_or("")
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn assert_problem(method: &str, path: &str, operation: &Value, status: &str, codes: &[&str]) {
    let response = &operation["responses"][status];
    assert_eq!(
        response["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem",
        "{method} {path} does not document {status} as problem JSON"
    );
    let named = named_codes(response);
    for code in codes {
        assert!(
            named.iter().any(|n| n == code),
            "{method} {path}: {status} does not name `{code}` ({named:?})"
        );
    }
}

/// Structural: what the shared extractors answer is documented on every operation using
/// them, and every refusal is problem JSON.
async fn every_operation_documents_what_its_extractors_refuse(app: TestApp) {
    let doc = app.get("/openapi.json", None).await.body;
    for (method, path, operation) in operations(&doc) {
        let (method, path) = (method.as_str(), path.as_str());
        if operation.get("requestBody").is_some() {
            assert_problem(method, path, &operation, "400", &["malformed_json"]);
            assert_problem(method, path, &operation, "413", &["payload_too_large"]);
            assert_problem(method, path, &operation, "415", &["unsupported_media_type"]);
            assert_problem(
                method,
                path,
                &operation,
                "422",
                &["unknown_field", "validation_failed"],
            );
        }
        if !parameters(&operation, "query").is_empty() {
            assert_problem(method, path, &operation, "422", &["validation_failed"]);
        }
        if !parameters(&operation, "path").is_empty() {
            assert_problem(method, path, &operation, "404", &["not_found"]);
        }
        if parameters(&operation, "header")
            .iter()
            .any(|p| p["name"] == "Idempotency-Key")
        {
            assert_problem(
                method,
                path,
                &operation,
                "400",
                &["idempotency_key_required", "idempotency_key_invalid"],
            );
        }
        if security(&operation).contains("operator_key") {
            assert_problem(
                method,
                path,
                &operation,
                "401",
                &["unauthorized", "api_key_invalid"],
            );
        }
        if security(&operation).contains("city_identity") {
            assert_problem(method, path, &operation, "401", &["token_invalid"]);
            if tagged(&operation, "audit") || tagged(&operation, "enforcement") {
                assert_problem(method, path, &operation, "403", &["forbidden"]);
            }
        }
        assert_problem(method, path, &operation, "503", &["unavailable"]);
        // Every refusal is problem JSON, and names its codes.
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                assert_problem(method, path, &operation, status, &[]);
                assert!(
                    !named_codes(response).is_empty(),
                    "{method} {path}: {status} names no code"
                );
            }
        }
    }
}

/// A credential of the audience `operation` serves, or none for public operations.
struct Credentials {
    operator: String,
    driver: String,
    warden: String,
    auditor: String,
}

impl Credentials {
    async fn new(app: &TestApp) -> Self {
        let token = |subject: &str, roles: &[&str]| {
            app.state.demo_idp.as_ref().unwrap().issue(
                subject,
                roles,
                "qrpark",
                std::time::Duration::from_secs(3600),
            )
        };
        Self {
            operator: app.operator("OpenAPI").await.key,
            driver: token("openapi-driver", &[]),
            warden: token("openapi-warden", &["warden"]),
            auditor: token("openapi-auditor", &["auditor"]),
        }
    }

    fn of(&self, operation: &Value) -> Option<&str> {
        if security(operation).contains("operator_key") {
            Some(&self.operator)
        } else if tagged(operation, "audit") {
            Some(&self.auditor)
        } else if tagged(operation, "enforcement") {
            Some(&self.warden)
        } else if security(operation).contains("city_identity") {
            Some(&self.driver)
        } else {
            None
        }
    }
}

/// One request to try: what it lacks or breaks, and how.
struct Probe {
    what: &'static str,
    token: Option<String>,
    query: &'static str,
    content_type: Option<&'static str>,
    body: Option<&'static [u8]>,
    idempotency_key: bool,
}

/// Behavioural: every operation, sent what clients get wrong (no credential, the wrong
/// role, no or bad body, unknown members and parameters, ids that name nothing), answers a
/// status its document lists, with a documented content type and, for a refusal, a code the
/// status's description names.
async fn every_refusal_an_operation_answers_is_documented(app: TestApp) {
    let doc = app.get("/openapi.json", None).await.body;
    let credentials = Credentials::new(&app).await;
    let mut checked = 0;
    for (method, path, operation) in operations(&doc) {
        let id = Uuid::now_v7().to_string();
        let concrete = path
            .replace("{lot_id}", &id)
            .replace("{space_id}", &id)
            .replace("{session_id}", &id)
            .replace("{token}", "not-a-token");
        let own = credentials.of(&operation).map(str::to_owned);
        let has_body = operation.get("requestBody").is_some();
        let mut probes = vec![
            Probe {
                what: "as sent by its audience",
                token: own.clone(),
                query: "",
                content_type: has_body.then_some("application/json"),
                body: has_body.then_some(EMPTY_OBJECT),
                idempotency_key: true,
            },
            Probe {
                what: "without a credential",
                token: None,
                query: "",
                content_type: has_body.then_some("application/json"),
                body: has_body.then_some(EMPTY_OBJECT),
                idempotency_key: true,
            },
            Probe {
                what: "with a credential that is not one",
                token: Some("qrpk_not-a-key".to_owned()),
                query: "",
                content_type: None,
                body: None,
                idempotency_key: true,
            },
            Probe {
                what: "with an unknown query parameter",
                token: own.clone(),
                query: "?no_such_parameter=1",
                content_type: has_body.then_some("application/json"),
                body: has_body.then_some(EMPTY_OBJECT),
                idempotency_key: true,
            },
            Probe {
                what: "without its Idempotency-Key",
                token: own.clone(),
                query: "",
                content_type: has_body.then_some("application/json"),
                body: has_body.then_some(EMPTY_OBJECT),
                idempotency_key: false,
            },
        ];
        if security(&operation).contains("city_identity") {
            // A driver's token where a role is needed, a warden's elsewhere.
            let other = if tagged(&operation, "driver") {
                &credentials.warden
            } else {
                &credentials.driver
            };
            probes.push(Probe {
                what: "with another audience's token",
                token: Some(other.clone()),
                query: "",
                content_type: has_body.then_some("application/json"),
                body: has_body.then_some(EMPTY_OBJECT),
                idempotency_key: true,
            });
        }
        if has_body {
            for (what, content_type, body) in [
                ("without a body", None, &b""[..]),
                (
                    "with a form body",
                    Some("application/x-www-form-urlencoded"),
                    &b"a=1"[..],
                ),
                (
                    "with malformed JSON",
                    Some("application/json"),
                    &b"{\"a\":"[..],
                ),
                ("with a JSON array", Some("application/json"), &b"[]"[..]),
                (
                    "with an unknown member",
                    Some("application/json"),
                    &b"{\"no_such_member\": 1}"[..],
                ),
            ] {
                probes.push(Probe {
                    what,
                    token: own.clone(),
                    query: "",
                    content_type,
                    body: Some(body),
                    idempotency_key: true,
                });
            }
        }
        for probe in probes {
            let answer = send(&app, &method, &concrete, &probe).await;
            assert_documented(&method, &path, &operation, probe.what, &answer);
            checked += 1;
        }
    }
    assert!(checked > 250, "{checked} requests checked");
}

async fn send(app: &TestApp, method: &str, path: &str, probe: &Probe) -> Answer {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = app
        .client
        .request(method, format!("{}{path}{}", app.base, probe.query));
    if let Some(token) = &probe.token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = probe.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(body) = probe.body {
        request = request.body(body.to_vec());
    }
    if probe.idempotency_key {
        request = request.header("Idempotency-Key", Uuid::now_v7().to_string());
    }
    TestApp::decode_response(request.send().await.expect("send request")).await
}

#[track_caller]
fn assert_documented(method: &str, path: &str, operation: &Value, what: &str, answer: &Answer) {
    let status = answer.status.as_u16().to_string();
    let response = &operation["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {path} {what}: {status} is not documented ({})",
        answer.text
    );
    let content_type = answer
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = |media: &str| {
        media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let documented: Vec<String> = response["content"]
        .as_object()
        .map(|content| content.keys().map(|k| essence(k)).collect())
        .unwrap_or_default();
    assert!(
        documented.contains(&essence(content_type)),
        "{method} {path} {what}: {status} answered `{content_type}`, documented {documented:?}"
    );
    if answer.status.is_client_error() || answer.status.is_server_error() {
        let code = answer.problem_code().to_owned();
        assert!(
            named_codes(response).contains(&code),
            "{method} {path} {what}: `{code}` is not named under {status}: {}",
            response["description"]
        );
    }
}

/// Every request body whose type refuses unknown members says `additionalProperties: false`,
/// and the server does refuse them (422 `unknown_field`).
async fn request_schemas_refuse_unknown_members(app: TestApp) {
    let doc = app.get("/openapi.json", None).await.body;
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(name) => schemas[name.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    let mut bodies = 0;
    for (method, path, operation) in operations(&doc) {
        let Some(body) = operation.get("requestBody") else {
            continue;
        };
        let schema = resolve(&body["content"]["application/json"]["schema"]);
        // A schema made of parts (allOf) closes its first part.
        let object = schema["allOf"]
            .get(0)
            .map(&resolve)
            .unwrap_or_else(|| schema.clone());
        assert_eq!(
            object["additionalProperties"],
            json!(false),
            "{method} {path}: {object}"
        );
        bodies += 1;
    }
    assert!(bodies >= 12, "{bodies} bodies");

    // And the server refuses them, naming the member, on an operation of each audience.
    let credentials = Credentials::new(&app).await;
    // A receipt took any query parameter; like every other route it now names the stranger.
    let receipt = app
        .get(
            &format!(
                "/v1/sessions/{}/receipt?format=html&colour=red",
                Uuid::now_v7()
            ),
            Some(&credentials.driver),
        )
        .await;
    assert_eq!(
        receipt.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        receipt.text
    );
    assert_eq!(receipt.problem_code(), "unknown_field");
    let lot = app
        .post(
            "/v1/operator/lots",
            Some(&credentials.operator),
            json!({"name": "Strict", "timezone": "Asia/Shanghai", "currency": "CNY", "colour": "red"}),
        )
        .await;
    assert_eq!(lot.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", lot.text);
    assert_eq!(lot.problem_code(), "unknown_field");
    assert_eq!(lot.error_paths(), ["$.colour"]);
}

/// A token path segment that is not UTF-8 once percent-decoded was answered by axum in plain
/// text; it is a forged code like any other garbage.
async fn a_path_that_is_not_utf8_is_a_forged_code(app: TestApp) {
    let answer = app.get("/v1/scan/%FF%FE", None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert_eq!(answer.problem_code(), "qr_invalid");
}

/// `from`/`to` filters are any RFC 3339 instant, as the document says: before 1970 or after
/// 9999 they select what the bounds select (nothing is stored outside them), instead of 422;
/// and only RFC 3339 instants, as the document says too.
async fn filters_before_1970_or_after_9999_select_like_the_bounds(app: TestApp) {
    let credentials = Credentials::new(&app).await;
    let sessions = app
        .get(
            "/v1/operator/sessions?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59-23:59",
            Some(&credentials.operator),
        )
        .await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.text);
    assert_eq!(sessions.body["sessions"], json!([]));
    let violations = app
        .get(
            "/v1/enforcement/violations?from=0500-01-01T00:00:00Z",
            Some(&credentials.warden),
        )
        .await;
    assert_eq!(violations.status, StatusCode::OK, "{}", violations.text);
    // Both bounds before 1970 select nothing, and `to` is still checked against `from`.
    let empty = app
        .get(
            "/v1/enforcement/violations?from=0500-01-01T00:00:00Z&to=0600-01-01T00:00:00Z",
            Some(&credentials.warden),
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.text
    );
    assert_eq!(empty.problem_code(), "validation_failed");
    assert_eq!(empty.error_paths(), ["$.to"]);
    // What RFC 3339 does not write is refused, though chrono would read it: not an
    // instant at all, five-digit or signed years, a space for the `T`.
    for bad in [
        "yesterday",
        "%2B10000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "2026-09-29%2010:00:00Z",
    ] {
        let refused = app
            .get(
                &format!("/v1/operator/sessions?from={bad}"),
                Some(&credentials.operator),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            refused.text
        );
        assert_eq!(refused.error_paths(), ["$.from"], "{bad}");
    }
    let spaced = app
        .post(
            &format!("/v1/lots/{}/quote", Uuid::now_v7()),
            None,
            json!({"start": "2026-09-29 10:00:00+08:00", "end": "2026-09-29T12:00:00+08:00"}),
        )
        .await;
    assert_eq!(
        spaced.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        spaced.text
    );
    assert_eq!(spaced.error_paths(), ["$.start"]);
}

/// The document says 1 to 255 characters; the demo provider counted bytes.
async fn demo_subjects_are_counted_in_characters(app: TestApp) {
    let subject = "驾".repeat(255);
    let answer = app
        .post("/v1/demo/token", None, json!({"subject": subject}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["subject"], json!(subject));
    let longer = app
        .post("/v1/demo/token", None, json!({"subject": "驾".repeat(256)}))
        .await;
    assert_eq!(longer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(longer.error_paths(), ["$.subject"]);
}

/// serde reads a struct from a JSON array, member by member: `["Lot", "UTC", "EUR"]` created
/// a lot, and a pair of instants priced a quote, though the document says every body is an
/// object.
async fn a_body_that_is_an_array_is_refused(app: TestApp) {
    let credentials = Credentials::new(&app).await;
    let lot = app
        .call_raw(
            Method::POST,
            "/v1/operator/lots",
            Some(&credentials.operator),
            Some("application/json"),
            br#"["Array Lot", "Asia/Shanghai", "CNY"]"#.to_vec(),
        )
        .await;
    assert_eq!(lot.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", lot.text);
    assert_eq!(lot.problem_code(), "validation_failed");
    assert_eq!(lot.error_paths(), ["$"]);
    let lots = app
        .get("/v1/operator/lots", Some(&credentials.operator))
        .await;
    assert_eq!(lots.body["lots"], json!([]), "nothing was created");

    let made = app
        .post(
            "/v1/operator/lots",
            Some(&credentials.operator),
            json!({"name": "Object Lot", "timezone": "Asia/Shanghai", "currency": "CNY"}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let quote = app
        .call_raw(
            Method::POST,
            &format!("/v1/lots/{}/quote", made.body["id"].as_str().unwrap()),
            None,
            Some("application/json"),
            br#" ["2026-09-29T10:00:00+08:00", "2026-09-29T12:00:00+08:00"]"#.to_vec(),
        )
        .await;
    assert_eq!(
        quote.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        quote.text
    );
    assert_eq!(quote.error_paths(), ["$"]);
    // An array that is not even JSON is still malformed JSON.
    let broken = app
        .call_raw(
            Method::POST,
            "/v1/operator/lots",
            Some(&credentials.operator),
            Some("application/json"),
            b"[\"Array Lot\",".to_vec(),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.problem_code(), "malformed_json");
}
