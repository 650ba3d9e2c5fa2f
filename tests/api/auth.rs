//! Operator API keys: missing, unknown and revoked keys are refused with a challenge.

use qrpark::store::operators;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

use crate::helpers::{TestApp, both_backends};

both_backends!(
    missing_key_is_challenged,
    unknown_and_malformed_keys_are_refused,
    revoked_key_stops_working_at_once,
);

async fn missing_key_is_challenged(app: TestApp) {
    let answer = app.get("/v1/operator/lots", None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.problem_code(), "unauthorized");
    let challenge = answer.headers[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

async fn unknown_and_malformed_keys_are_refused(app: TestApp) {
    let forged = format!("qrpk_{}", "ab".repeat(32));
    for key in [forged.as_str(), "not-a-key", "qrpk_", "Basic dXNlcjpwYXNz"] {
        let answer = app.get("/v1/operator/lots", Some(key)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key}");
        assert_eq!(answer.problem_code(), "api_key_invalid", "{key}");
        let challenge = answer.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }
}

async fn revoked_key_stops_working_at_once(app: TestApp) {
    let operator = app.operator("Revoker").await;
    let second = qrpark::identity::operator_key::generate();
    let stored = operators::add_key(&app.db, operator.id, &second.hash, app.now())
        .await
        .unwrap();
    assert_eq!(
        app.get("/v1/operator/lots", Some(&second.plaintext))
            .await
            .status,
        StatusCode::OK
    );
    operators::revoke_key(&app.db, operator.id, stored.operator_key_id, app.now())
        .await
        .unwrap()
        .expect("key exists");
    let answer = app.get("/v1/operator/lots", Some(&second.plaintext)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.problem_code(), "api_key_invalid");
    // The first key is untouched.
    assert_eq!(
        app.get("/v1/operator/lots", Some(&operator.key))
            .await
            .status,
        StatusCode::OK
    );
}
