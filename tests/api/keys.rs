//! Signing keys and secrets: one key per purpose, all published; a retired key stops
//! verifying on every process within a minute; nothing private is readable from the
//! database alone.

use chrono::TimeDelta;
use qrpark::domain::key_purpose::KeyPurpose;
use qrpark::domain::qr_token::{QrClaims, QrSigningKey};
use qrpark::qr::keyring::{KeyRing, RELOAD_AFTER};
use qrpark::secrets::{self, Kek};
use qrpark::store::{Db, signing_keys};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, TestOperator, both_backends};

both_backends!(
    a_retired_key_stops_verifying_on_every_process_within_a_minute,
    each_purpose_has_its_own_published_key,
    private_keys_and_secrets_are_sealed_at_rest,
    plaintext_of_an_earlier_version_is_sealed_on_start,
);

/// The key-encryption key the app was started with.
fn kek(app: &TestApp) -> Kek {
    Kek::read(&app.state.config.key_encryption_key_file()).expect("the app's KEK")
}

/// Spaces of a new lot of a new operator: the operator and [(space id, QR token)].
async fn one_lot(app: &TestApp, codes: &[&str]) -> (TestOperator, Vec<(String, String)>) {
    let op = app.operator("Keys Ltd").await;
    let (_, spaces) = crate::sessions::parking_lot(app, &op, codes).await;
    (op, spaces)
}

async fn scan(app: &TestApp, token: &str) -> StatusCode {
    app.get(&format!("/v1/scan/{token}"), None).await.status
}

async fn a_retired_key_stops_verifying_on_every_process_within_a_minute(app: TestApp) {
    assert!(RELOAD_AFTER <= TimeDelta::seconds(60));
    let (op, spaces) = one_lot(&app, &["A-1", "A-2"]).await;
    let k1_token = spaces[0].1.clone();
    assert_eq!(scan(&app, &k1_token).await, StatusCode::OK);

    // Another process (its own key ring on the same database) rotates and retires k1, as
    // `qrpark keys rotate` and `qrpark keys retire k1` do. The app is not told.
    let other = KeyRing::load(&app.db, std::sync::Arc::new(kek(&app)), app.now())
        .await
        .unwrap();
    let k5 = other.rotate(KeyPurpose::Qr, app.now()).await.unwrap();
    signing_keys::retire(&app.db, "k1", app.now())
        .await
        .unwrap()
        .expect("k1 was active");

    // Within the bound the app may still hold k1; once it has passed, it verifies no more.
    app.clock.advance(TimeDelta::seconds(60));
    let refused = app.get(&format!("/v1/scan/{k1_token}"), None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.problem_code(), "qr_invalid");
    // And the app signs new codes with the other process's key, unasked.
    let token = app.rotate_code(&op, &spaces[1].0).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    assert_eq!(kid.as_deref(), Some(k5.as_str()));
    assert_eq!(scan(&app, &token).await, StatusCode::OK);
}

async fn each_purpose_has_its_own_published_key(app: TestApp) {
    let (_, spaces) = one_lot(&app, &["A-1"]).await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK, "{}", jwks.text);
    let published: Vec<(String, String)> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["use"], "sig");
            assert_eq!(k["alg"], "EdDSA");
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["purpose"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let purposes: Vec<&str> = published.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(purposes, ["qr", "proof", "checkpoint", "gateway"]);
    // Each artefact names its own purpose's key.
    let qr_kid = jsonwebtoken::decode_header(&spaces[0].1)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(qr_kid, published[0].0);
    for purpose in KeyPurpose::ALL {
        let key = app
            .state
            .keys
            .signing_key(purpose, app.now())
            .await
            .unwrap();
        let (kid, named) = published
            .iter()
            .find(|(kid, _)| *kid == key.kid)
            .expect("every signing key is published");
        assert_eq!(named, purpose.as_str(), "{kid}");
    }

    // A QR code signed with the (genuine) proof key is not a QR code.
    let proof_key = open_key(&app, KeyPurpose::Proof).await;
    let space_id: uuid::Uuid = spaces[0].0.parse().unwrap();
    let forged = proof_key.sign(QrClaims {
        space_id,
        version: 1,
    });
    let answer = app.get(&format!("/v1/scan/{forged}"), None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert_eq!(answer.problem_code(), "qr_invalid");
    // Signed with the QR key, the same claims are genuine.
    let genuine = open_key(&app, KeyPurpose::Qr).await.sign(QrClaims {
        space_id,
        version: 1,
    });
    assert_eq!(scan(&app, &genuine).await, StatusCode::OK);
}

/// The newest active key of `purpose`, opened with the KEK (as only qrpark can).
async fn open_key(app: &TestApp, purpose: KeyPurpose) -> QrSigningKey {
    let kek = kek(app);
    let key = signing_keys::active_sealed(&app.db)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|k| k.purpose == purpose.as_str())
        .unwrap();
    let seed = kek
        .open(
            &secrets::signing_key_name(&key.kid),
            key.sealed_seed.as_deref().unwrap(),
        )
        .unwrap();
    let opened = QrSigningKey::from_seed(&key.kid, &seed);
    assert_eq!(opened.public_key().as_slice(), key.public_key.as_slice());
    opened
}

/// Every byte string in the database's key and secret tables.
async fn stored_blobs(db: &Db) -> Vec<Vec<u8>> {
    let sql = "select sealed_seed from signing_key where sealed_seed is not null \
               union all select sealed from server_secret \
               union all select secret from unsealed_secret";
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .unwrap()
}

async fn private_keys_and_secrets_are_sealed_at_rest(app: TestApp) {
    one_lot(&app, &["A-1"]).await;
    let blobs = stored_blobs(&app.db).await;
    // Four signing keys and two server secrets, each sealed: nonce, ciphertext, tag.
    assert_eq!(blobs.len(), 6);
    assert!(blobs.iter().all(|b| b.len() == secrets::SEALED_LEN));
    // No secret the app holds appears in any of them.
    let mut plain: Vec<[u8; 32]> = vec![*app.state.plate_key, *app.state.pseudonym_key];
    for purpose in KeyPurpose::ALL {
        plain.push(open_key(&app, purpose).await.seed());
    }
    for secret in &plain {
        assert!(
            !blobs.iter().any(|b| b.windows(32).any(|w| w == secret)),
            "a secret is stored in plaintext"
        );
    }
    // Another key-encryption key opens none of them.
    let dir = crate::helpers::TempDir::new();
    let stranger = Kek::create(&dir.0.join("kek")).unwrap();
    let sealed = secrets::server_secret(&app.db, &kek(&app), secrets::PLATE_KEY)
        .await
        .unwrap();
    assert_eq!(sealed, *app.state.plate_key);
    assert!(
        secrets::server_secret(&app.db, &stranger, secrets::PLATE_KEY)
            .await
            .is_err()
    );
    // A process whose KEK file is missing refuses to start rather than make another.
    let config = qrpark::config::Config {
        key_encryption_key_file: Some(dir.0.join("missing")),
        ..(*app.state.config).clone()
    };
    let refused = secrets::prepare(&config, &app.db).await.unwrap_err();
    assert!(
        refused.to_string().contains("does not exist"),
        "{refused:#}"
    );
}

async fn plaintext_of_an_earlier_version_is_sealed_on_start(app: TestApp) {
    // What migration 0011 leaves from an earlier version: a seed and the plate key in
    // plaintext, the key's sealed seed still empty.
    let seed = [0x5au8; 32];
    let legacy = QrSigningKey::from_seed("k90", &seed);
    let public = legacy.public_key();
    let plate_key = [0x33u8; 32];
    // One body for both pools (the same SQL runs on both backends).
    macro_rules! leave_plaintext {
        ($pool:expr) => {{
            sqlx::query("delete from server_secret where name = 'plate_key'")
                .execute($pool)
                .await
                .unwrap();
            sqlx::query(
                "insert into signing_key (kid, purpose, public_key, created_at) \
                 values ('k90', 'qr', $1, $2)",
            )
            .bind(&public[..])
            .bind(app.now())
            .execute($pool)
            .await
            .unwrap();
            sqlx::query(
                "insert into unsealed_secret (name, secret) values \
                 ('signing_key:k90', $1), ('plate_key', $2)",
            )
            .bind(&seed[..])
            .bind(&plate_key[..])
            .execute($pool)
            .await
            .unwrap();
        }};
    }
    match &app.db {
        Db::Sqlite(pool) => leave_plaintext!(pool),
        Db::Postgres(pool) => leave_plaintext!(pool),
    }
    let kek = secrets::prepare(&app.state.config, &app.db).await.unwrap();
    let blobs = stored_blobs(&app.db).await;
    assert!(
        blobs.iter().all(|b| b.len() == secrets::SEALED_LEN),
        "plaintext left"
    );
    assert!(!blobs.iter().any(|b| b.windows(32).any(|w| w == seed)));
    // The sealed seed opens to the same key, which signs QR codes again.
    let ring = KeyRing::load(&app.db, kek.clone(), app.now())
        .await
        .unwrap();
    assert_eq!(
        ring.signing_key(KeyPurpose::Qr, app.now())
            .await
            .unwrap()
            .kid,
        "k90"
    );
    assert_eq!(
        secrets::server_secret(&app.db, &kek, secrets::PLATE_KEY)
            .await
            .unwrap(),
        plate_key
    );
    let jwks: Value = app.get("/.well-known/jwks.json", None).await.body;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == "k90")
    );
}
