//! Signed QR codes: verifiable by anyone with the JWKS alone, rotated on demand, and
//! refused when forged, tampered, unsigned, foreign, oversized or revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use qrpark::domain::key_purpose::KeyPurpose;

use crate::helpers::{TestApp, TestOperator, both_backends, qr_token};

both_backends!(
    codes_verify_with_the_jwks_alone,
    scan_names_lot_space_and_tariff,
    rotation_revokes_the_old_code,
    forged_codes_are_refused,
    key_rotation_keeps_old_codes_until_retired,
    other_operators_cannot_rotate,
    images_decode_to_the_signed_url,
    sheet_holds_every_space,
);

/// A lot with spaces; returns (lot id, [(space id, qr_url)]).
async fn lot_with_spaces(
    app: &TestApp,
    op: &TestOperator,
    codes: &[&str],
) -> (String, Vec<(String, String)>) {
    let lot = app.lot(op, "Nanjing Road", "Asia/Shanghai", "CNY").await;
    let spaces = app
        .create_spaces(op, &lot, codes)
        .await
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["qr_url"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (lot, spaces)
}

#[derive(Deserialize)]
struct Claims {
    s: String,
    v: u32,
}

async fn codes_verify_with_the_jwks_alone(app: TestApp) {
    let op = app.operator("Verifiable").await;
    let (_, spaces) = lot_with_spaces(&app, &op, &["A-1"]).await;
    let (space_id, url) = &spaces[0];
    assert!(url.starts_with(&format!("{}/q/", app.base)), "{url}");
    let token = qr_token(url);
    assert!(token.len() <= 176, "token is {} characters", token.len());

    // Generic JOSE: the JWKS over HTTP and jsonwebtoken, nothing of qrpark's.
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let set: JwkSet = serde_json::from_value(jwks.body.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("verifies with the published key");
    let id = uuid::Uuid::from_slice(&URL_SAFE_NO_PAD.decode(&data.claims.s).unwrap()).unwrap();
    assert_eq!(id.to_string(), *space_id);
    assert_eq!(data.claims.v, 1);
}

async fn scan_names_lot_space_and_tariff(app: TestApp) {
    let op = app.operator("Scanned").await;
    let (lot, spaces) = lot_with_spaces(&app, &op, &["A-1", "A-2"]).await;
    let scan = app
        .get(&format!("/v1/scan/{}", qr_token(&spaces[0].1)), None)
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.text);
    assert_eq!(scan.body["lot"]["id"], lot.as_str());
    assert_eq!(scan.body["lot"]["name"], "Nanjing Road");
    assert_eq!(scan.body["lot"]["currency"], "CNY");
    assert_eq!(scan.body["space"]["code"], "A-1");
    assert_eq!(scan.body["space"]["available"], true);
    assert_eq!(scan.body["tariff"], json!(null));

    // Out of service: still genuine, but plainly not available.
    let off = app
        .patch(
            &format!("/v1/operator/spaces/{}", spaces[1].0),
            Some(&op.key),
            json!({"status": "out_of_service"}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    let scan = app
        .get(&format!("/v1/scan/{}", qr_token(&spaces[1].1)), None)
        .await;
    assert_eq!(scan.status, StatusCode::OK);
    assert_eq!(scan.body["space"]["status"], "out_of_service");
    assert_eq!(scan.body["space"]["available"], false);
}

async fn rotation_revokes_the_old_code(app: TestApp) {
    let op = app.operator("Rotator").await;
    let (_, spaces) = lot_with_spaces(&app, &op, &["A-1"]).await;
    let (space_id, old_url) = &spaces[0];
    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/operator/spaces/{space_id}/qr/rotate"),
            Some(&op.key),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_url = rotated.body["qr_url"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert_eq!(rotated.body["qr_version"], 2);

    let old = app
        .get(&format!("/v1/scan/{}", qr_token(old_url)), None)
        .await;
    assert_eq!(old.status, StatusCode::GONE);
    assert_eq!(old.problem_code(), "qr_revoked");
    let new = app
        .get(&format!("/v1/scan/{}", qr_token(new_url)), None)
        .await;
    assert_eq!(new.status, StatusCode::OK);
    assert_eq!(new.body["space"]["qr_version"], 2);
    // The space now shows the new code.
    let space = app
        .get(&format!("/v1/operator/spaces/{space_id}"), Some(&op.key))
        .await;
    assert_eq!(space.body["qr_url"], new_url);
}

async fn forged_codes_are_refused(app: TestApp) {
    let op = app.operator("Target").await;
    let (_, spaces) = lot_with_spaces(&app, &op, &["A-1"]).await;
    let token = qr_token(&spaces[0].1).to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // Tampered: a higher version under the genuine signature.
    let bumped = URL_SAFE_NO_PAD.encode(json!({"s": claims["s"], "v": 2}).to_string());
    let tampered = format!("{}.{bumped}.{}", parts[0], parts[2]);
    // Unsigned: alg none.
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
    let unsigned = format!("{none}.{}.", parts[1]);
    // Foreign key: a well-formed EdDSA token from someone else's key under our kid.
    let foreign = {
        use jsonwebtoken::{EncodingKey, Header};
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHBgJSkzrG56SpsOsmMsWgQKhyV624aaPszD0WtyTyZH\n-----END PRIVATE KEY-----\n";
        let header = Header {
            typ: None,
            kid: Some("k1".into()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    // Symmetric confusion: HS256 keyed with something public.
    let hs = {
        use jsonwebtoken::{EncodingKey, Header};
        let header = Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"k1").unwrap()).unwrap()
    };
    let oversized = format!("{token}{}", "A".repeat(600));
    for (what, bad) in [
        ("tampered", tampered.as_str()),
        ("alg none", unsigned.as_str()),
        ("foreign key", foreign.as_str()),
        ("HS256", hs.as_str()),
        ("garbage", "not-a-token"),
        ("empty parts", "a..c"),
        ("oversized", oversized.as_str()),
    ] {
        let answer = app.get(&format!("/v1/scan/{bad}"), None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            answer.text
        );
        assert_eq!(answer.problem_code(), "qr_invalid", "{what}");
    }
    // The genuine one still works, and names its space.
    let genuine = app.get(&format!("/v1/scan/{token}"), None).await;
    assert_eq!(genuine.status, StatusCode::OK, "{}", genuine.text);
    assert_eq!(genuine.body["space"]["id"], spaces[0].0.as_str());
}

async fn key_rotation_keeps_old_codes_until_retired(app: TestApp) {
    let op = app.operator("Keys").await;
    let (_, spaces) = lot_with_spaces(&app, &op, &["A-1", "A-2"]).await;
    let k1_token = qr_token(&spaces[0].1).to_owned();
    // A new database has one key per purpose (k1 signs QR codes, k2 proofs, k3 export
    // checkpoints, k4 gateway requests): the next QR key is k5.
    let kid = app
        .state
        .keys
        .rotate(KeyPurpose::Qr, app.now())
        .await
        .unwrap();
    assert_eq!(kid, "k5");
    let k2_token = app.rotate_code(&op, &spaces[1].0).await;
    assert_eq!(
        jsonwebtoken::decode_header(&k2_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("k5")
    );
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(qr_kids(&jwks.body), vec!["k1", "k5"]);
    // Both generations scan, each naming its own space, code version and signing key.
    for (token, (space_id, _), code, version, kid) in [
        (&k1_token, &spaces[0], "A-1", 1, "k1"),
        (&k2_token, &spaces[1], "A-2", 2, "k5"),
    ] {
        let scan = app.get(&format!("/v1/scan/{token}"), None).await;
        assert_eq!(scan.status, StatusCode::OK, "{kid}: {}", scan.text);
        assert_eq!(scan.body["space"]["id"], space_id.as_str(), "{kid}");
        assert_eq!(scan.body["space"]["code"], code, "{kid}");
        assert_eq!(scan.body["space"]["qr_version"], version, "{kid}");
        assert_eq!(scan.body["kid"], kid);
    }
    // Retiring k1 drops it from the JWKS and its codes stop verifying.
    qrpark::store::signing_keys::retire(&app.db, "k1", app.now())
        .await
        .unwrap()
        .unwrap();
    app.state.keys.refresh(app.now()).await.unwrap();
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(qr_kids(&jwks.body), vec!["k5"]);
    let old = app.get(&format!("/v1/scan/{k1_token}"), None).await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(old.problem_code(), "qr_invalid");
}

/// The kids of the QR keys a JWKS publishes, in its order.
fn qr_kids(jwks: &serde_json::Value) -> Vec<&str> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["purpose"] == "qr")
        .map(|k| k["kid"].as_str().unwrap())
        .collect()
}

async fn other_operators_cannot_rotate(app: TestApp) {
    let owner = app.operator("Owner").await;
    let intruder = app.operator("Intruder").await;
    let (_, spaces) = lot_with_spaces(&app, &owner, &["A-1"]).await;
    let answer = app
        .call(
            Method::POST,
            &format!("/v1/operator/spaces/{}/qr/rotate", spaces[0].0),
            Some(&intruder.key),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.problem_code(), "not_found");
    // The code was not rotated: it still scans as the first version.
    let scan = app
        .get(&format!("/v1/scan/{}", qr_token(&spaces[0].1)), None)
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.text);
    assert_eq!(scan.body["space"]["id"], spaces[0].0.as_str());
    assert_eq!(scan.body["space"]["qr_version"], 1);
}

async fn images_decode_to_the_signed_url(app: TestApp) {
    let op = app.operator("Printer").await;
    let intruder = app.operator("Nosy").await;
    let (_, spaces) = lot_with_spaces(&app, &op, &["A-1"]).await;
    let (space_id, url) = &spaces[0];

    let png = app
        .client
        .get(format!("{}/v1/operator/spaces/{space_id}/qr.png", app.base))
        .bearer_auth(&op.key)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    // An independent decoder reads back exactly the signed URL.
    let image = image::load_from_memory(&bytes).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (meta, content) = grids[0].decode().unwrap();
    assert_eq!(&content, url);
    assert_eq!(meta.ecc_level, 3, "level Q"); // rqrr numbers L=1? see below
    let scan = app
        .get(&format!("/v1/scan/{}", qr_token(&content)), None)
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.text);
    assert_eq!(scan.body["space"]["id"], space_id.as_str());

    let svg = app
        .get(
            &format!("/v1/operator/spaces/{space_id}/qr.svg"),
            Some(&op.key),
        )
        .await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    assert!(
        svg.text.starts_with("<?xml") || svg.text.starts_with("<svg"),
        "{}",
        &svg.text[..60]
    );

    for path in [
        format!("/v1/operator/spaces/{space_id}/qr.png"),
        format!("/v1/operator/spaces/{space_id}/qr.svg"),
    ] {
        let answer = app.get(&path, Some(&intruder.key)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.problem_code(), "not_found", "{path}");
    }

    // After rotation the image carries the new code.
    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/operator/spaces/{space_id}/qr/rotate"),
            Some(&op.key),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_url = rotated.body["qr_url"].as_str().unwrap();
    assert_ne!(new_url, url);
    let png = app
        .client
        .get(format!("{}/v1/operator/spaces/{space_id}/qr.png", app.base))
        .bearer_auth(&op.key)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    let png = png.bytes().await.unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let (_, content) = prepared.detect_grids()[0].decode().unwrap();
    assert_eq!(content, new_url);
}

async fn sheet_holds_every_space(app: TestApp) {
    let op = app.operator("Sheets").await;
    let intruder = app.operator("Nosy").await;
    let codes: Vec<String> = (1..=14).map(|i| format!("P-{i:03}")).collect();
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (lot, _) = lot_with_spaces(&app, &op, &code_refs).await;
    let pdf = app
        .client
        .get(format!("{}/v1/operator/lots/{lot}/qr-sheet.pdf", app.base))
        .bearer_auth(&op.key)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    let text = crate::helpers::pdf_text(&bytes);
    assert!(text.contains("Nanjing Road"), "lot name missing");
    for code in &codes {
        assert!(
            text.contains(code.as_str()),
            "{code} missing from the sheet"
        );
    }
    let answer = app
        .get(
            &format!("/v1/operator/lots/{lot}/qr-sheet.pdf"),
            Some(&intruder.key),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.problem_code(), "not_found");
}
