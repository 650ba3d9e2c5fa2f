//! Wardens check payments and record violations; drivers prove their parking with a token
//! any JOSE library verifies against the JWKS alone. Roles: 401 without a token, 403
//! without the warden role.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, both_backends};
use crate::vehicles::{lot_with, start_with};

both_backends!(
    only_wardens_check_and_record,
    checks_tell_paid_from_unpaid_by_code_space_or_plate,
    violations_are_refused_for_the_paying_plate_and_listed,
    proofs_verify_with_the_jwks_alone_and_end_with_the_session,
);

fn token(app: &TestApp, subject: &str, roles: &[&str]) -> String {
    app.state.demo_idp.as_ref().unwrap().issue(
        subject,
        roles,
        "qrpark",
        // A day of the test's clock, as driver tokens: the tests move time by hours.
        std::time::Duration::from_secs(24 * 3600),
    )
}

fn warden(app: &TestApp) -> String {
    token(app, "warden-7", &["warden"])
}

async fn only_wardens_check_and_record(app: TestApp) {
    let op = app.operator("Guarded").await;
    let (_, qr) = lot_with(&app, &op, false, &["G-1"]).await;
    let check = format!("/v1/enforcement/check?qr={}", qr[0]);
    let violation = json!({"qr": qr[0], "plate": "AB123"});

    let anonymous = app.get(&check, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.problem_code(), "token_invalid");
    let driver = app.driver_token("just-a-driver");
    let auditor = token(&app, "auditor-1", &["auditor"]);
    for caller in [&driver, &auditor] {
        let refused = app.get(&check, Some(caller)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert_eq!(refused.problem_code(), "forbidden");
        let refused = app
            .post(
                "/v1/enforcement/violations",
                Some(caller),
                violation.clone(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.post("/v1/enforcement/violations", None, violation)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Auditors and wardens read the violations; drivers do not.
    assert_eq!(
        app.get("/v1/enforcement/violations", Some(&driver))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/v1/enforcement/violations", Some(&auditor))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v1/enforcement/violations", Some(&warden(&app)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&check, Some(&warden(&app))).await.status,
        StatusCode::OK
    );
}

async fn checks_tell_paid_from_unpaid_by_code_space_or_plate(app: TestApp) {
    let op = app.operator("Street").await;
    let (lot, qr) = lot_with(&app, &op, true, &["S-1", "S-2"]).await;
    let spaces = app
        .get(&format!("/v1/operator/lots/{lot}/spaces"), Some(&op.key))
        .await;
    let space_id = |code: &str| {
        spaces.body["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"] == code)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let warden = warden(&app);

    let empty = app
        .get(
            &format!("/v1/enforcement/check?space_id={}", space_id("S-1")),
            Some(&warden),
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    let results = empty.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["status"], "unpaid");
    assert_eq!(results[0]["space_code"], "S-1");
    assert_eq!(results[0]["lot_name"], "Xintiandi");
    assert_eq!(results[0]["last_ended_at"], Value::Null);
    assert_eq!(empty.body["checked_at"], "2026-09-29T02:00:00Z");

    let driver = app.driver_token("parker");
    let now = app.now();
    let started = start_with(
        &app,
        &driver,
        "k",
        json!({"qr": qr[0], "plate": "沪A 12345", "stop_at": now + TimeDelta::hours(1)}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();

    let paid = app
        .get(
            &format!("/v1/enforcement/check?qr={}", qr[0]),
            Some(&warden),
        )
        .await;
    let result = &paid.body["results"][0];
    assert_eq!(result["status"], "paid", "{}", paid.text);
    assert_eq!(result["plate"], "沪A12345");
    assert_eq!(result["started_at"], "2026-09-29T02:00:00Z");
    assert_eq!(result["leave_by"], "2026-09-29T03:00:00Z");
    // By plate, as typed on the street: one result per active session of that plate.
    let by_plate = app
        .get(
            "/v1/enforcement/check?plate=%E6%B2%AAa-12345",
            Some(&warden),
        )
        .await;
    assert_eq!(
        by_plate.body["results"].as_array().unwrap().len(),
        1,
        "{}",
        by_plate.text
    );
    assert_eq!(by_plate.body["results"][0]["space_code"], "S-1");
    let nobody = app
        .get("/v1/enforcement/check?plate=B999ZZ", Some(&warden))
        .await;
    assert_eq!(nobody.body["results"], json!([]));
    // The whole lot at once, as the warden's page walks it.
    let walk = app
        .get(&format!("/v1/enforcement/lots/{lot}/spaces"), Some(&warden))
        .await;
    let statuses: Vec<(&str, &str)> = walk.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["space_code"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, vec![("S-1", "paid"), ("S-2", "unpaid")]);

    // Past its planned end the space is unpaid, even before the scheduler stops it.
    app.clock.advance(TimeDelta::minutes(61));
    let lapsed = app
        .get(
            &format!("/v1/enforcement/check?qr={}", qr[0]),
            Some(&warden),
        )
        .await;
    assert_eq!(
        lapsed.body["results"][0]["status"], "unpaid",
        "{}",
        lapsed.text
    );
    assert_eq!(lapsed.body["results"][0]["ended_by"], "planned");
    assert_eq!(
        lapsed.body["results"][0]["last_ended_at"],
        "2026-09-29T03:00:00Z"
    );
    qrpark::sessions::scheduler::run_once(&app.state)
        .await
        .unwrap();
    let stopped = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(stopped.body["ended_by"], "planned");
    let after = app
        .get(
            &format!("/v1/enforcement/check?qr={}", qr[0]),
            Some(&warden),
        )
        .await;
    assert_eq!(after.body["results"][0]["status"], "unpaid");
    assert_eq!(
        after.body["results"][0]["last_ended_at"],
        "2026-09-29T03:00:00Z"
    );
    assert_eq!(after.body["results"][0]["ended_by"], "planned");

    // Exactly one way to name what to check.
    for bad in [
        "/v1/enforcement/check".to_owned(),
        format!("/v1/enforcement/check?qr={}&plate=AB123", qr[0]),
        "/v1/enforcement/check?plate=%E4%B8%ADA1".to_owned(),
    ] {
        let refused = app.get(&bad, Some(&warden)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            refused.text
        );
        assert_eq!(refused.problem_code(), "validation_failed");
    }
    let forged = app
        .get("/v1/enforcement/check?qr=not.a.token", Some(&warden))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(forged.problem_code(), "qr_invalid");
    let unknown = app
        .get(
            &format!("/v1/enforcement/check?space_id={}", uuid::Uuid::now_v7()),
            Some(&warden),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn violations_are_refused_for_the_paying_plate_and_listed(app: TestApp) {
    let op = app.operator("Tickets").await;
    let (lot, qr) = lot_with(&app, &op, false, &["V-1", "V-2"]).await;
    let driver = app.driver_token("payer");
    let started = start_with(
        &app,
        &driver,
        "k",
        json!({"qr": qr[0], "plate": "沪B77777"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED);
    let warden = warden(&app);

    let paid = app
        .post(
            "/v1/enforcement/violations",
            Some(&warden),
            json!({"qr": qr[0], "plate": "沪b-77777"}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CONFLICT, "{}", paid.text);
    assert_eq!(paid.problem_code(), "space_paid");

    // Another car on the paid space, and a car on an unpaid one.
    app.clock.advance(TimeDelta::minutes(5));
    let other = app
        .post(
            "/v1/enforcement/violations",
            Some(&warden),
            json!({"qr": qr[0], "plate": "沪C11111", "note": "second car on the space"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    assert_eq!(other.body["status_at_observation"], "paid");
    assert_eq!(other.body["plate"], "沪C11111");
    assert_eq!(other.body["observed_at"], "2026-09-29T02:05:00Z");
    app.clock.advance(TimeDelta::minutes(5));
    let unpaid = app
        .post(
            "/v1/enforcement/violations",
            Some(&warden),
            json!({"qr": qr[1], "plate": "AB123"}),
        )
        .await;
    assert_eq!(unpaid.status, StatusCode::CREATED, "{}", unpaid.text);
    assert_eq!(unpaid.body["status_at_observation"], "unpaid");
    assert_eq!(unpaid.body["space_code"], "V-2");

    for (body, path) in [
        (json!({"qr": qr[1], "plate": "x"}), "$.plate"),
        (json!({"qr": qr[1], "plate": "AB123", "note": ""}), "$.note"),
        (json!({"plate": "AB123"}), "$.qr"),
    ] {
        let refused = app
            .post("/v1/enforcement/violations", Some(&warden), body)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.error_paths(), vec![path]);
    }

    // A session without a plate covers whatever vehicle is on the space.
    let anonymous = start_with(
        &app,
        &app.driver_token("no-plate"),
        "np",
        json!({"qr": qr[1]}),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::CREATED, "{}", anonymous.text);
    let covered = app
        .post(
            "/v1/enforcement/violations",
            Some(&warden),
            json!({"qr": qr[1], "plate": "AB999"}),
        )
        .await;
    assert_eq!(covered.status, StatusCode::CONFLICT, "{}", covered.text);
    assert_eq!(covered.problem_code(), "space_paid");

    let listed = app.get("/v1/enforcement/violations", Some(&warden)).await;
    let plates: Vec<&str> = listed.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["plate"].as_str().unwrap())
        .collect();
    assert_eq!(plates, vec!["AB123", "沪C11111"], "newest first");
    let ranged = app
        .get(
            &format!("/v1/enforcement/violations?from=2026-09-29T02:06:00Z&lot={lot}"),
            Some(&warden),
        )
        .await;
    assert_eq!(ranged.body["violations"].as_array().unwrap().len(), 1);
    for far in ["-5000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"] {
        let refused = app
            .get(
                &format!("/v1/enforcement/violations?from={far}"),
                Some(&warden),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{far}: {}",
            refused.text
        );
        assert_eq!(refused.error_paths(), vec!["$.from"]);
    }
    let elsewhere = app
        .get(
            &format!("/v1/enforcement/violations?lot={}", uuid::Uuid::now_v7()),
            Some(&warden),
        )
        .await;
    assert_eq!(elsewhere.body["violations"], json!([]));

    // Each is in the audit chain, committed to by the plate's keyed hash only.
    let payloads = app.audit_payloads("violation.recorded").await;
    assert_eq!(payloads.len(), 2);
    for payload in &payloads {
        assert!(!payload.to_string().contains("AB123"), "{payload}");
        assert_eq!(
            payload["plate_hmac"].as_str().map(str::len),
            Some(64),
            "{payload}"
        );
    }
}

async fn proofs_verify_with_the_jwks_alone_and_end_with_the_session(app: TestApp) {
    let op = app.operator("Proofs").await;
    let (_, qr) = lot_with(&app, &op, false, &["P-1"]).await;
    let driver = app.driver_token("prover");
    let now = app.now();
    let started = start_with(
        &app,
        &driver,
        "k",
        json!({"qr": qr[0], "plate": "京N8P8F8", "stop_at": now + TimeDelta::minutes(10)}),
    )
    .await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    let space = started.body["space_id"].as_str().unwrap().to_owned();

    let proof = app
        .get(&format!("/v1/sessions/{id}/proof"), Some(&driver))
        .await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.text);
    let token = proof.body["token"].as_str().unwrap();
    // Verified with jsonwebtoken and the published JWKS, nothing of qrpark's.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&app.get("/.well-known/jwks.json", None).await.text).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false; // the manual clock is in the past
    validation.required_spec_claims = ["exp".to_owned(), "iat".to_owned()].into();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sid"], id.as_str());
    assert_eq!(claims["p"], "京N8P8F8");
    let space_bytes = uuid::Uuid::parse_str(&space).unwrap();
    assert_eq!(claims["s"], URL_SAFE_NO_PAD.encode(space_bytes.as_bytes()));
    assert_eq!(claims["iat"], now.timestamp());
    // Never past the planned end, which is nearer than 15 minutes.
    assert_eq!(claims["exp"], (now + TimeDelta::minutes(10)).timestamp());
    let expires: DateTime<Utc> = proof.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, now + TimeDelta::minutes(10));
    // A tampered proof does not verify.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged_claims = claims.clone();
    forged_claims["p"] = json!("京A00000");
    parts[1] = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());

    // Someone else's session has no proof for them; a stopped one has none at all.
    let other = app.driver_token("stranger");
    assert_eq!(
        app.get(&format!("/v1/sessions/{id}/proof"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.clock.advance(TimeDelta::minutes(4));
    let later = app
        .get(&format!("/v1/sessions/{id}/proof"), Some(&driver))
        .await;
    let later_claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                later.body["token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        later_claims["iat"],
        (now + TimeDelta::minutes(4)).timestamp()
    );
    assert_eq!(app.stop(&driver, &id).await.status, StatusCode::OK);
    let ended = app
        .get(&format!("/v1/sessions/{id}/proof"), Some(&driver))
        .await;
    assert_eq!(ended.status, StatusCode::CONFLICT, "{}", ended.text);
    assert_eq!(ended.problem_code(), "session_not_active");
}
