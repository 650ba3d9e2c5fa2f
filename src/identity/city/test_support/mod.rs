//! What the city verifier's tests share: the city's test keys (PEM files under
//! `fixtures/keys/`), tokens signed with them, a verifier on a manual clock, and a stub JWKS
//! endpoint ([`jwks_server`]).

pub mod jwks_server;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{CityIdentity, CityVerifier, JwksSource, TokenRejection};
use crate::clock::ManualClock;

/// The city's `iss` in these tests.
pub const ISSUER: &str = "https://id.city.example";
/// Our audience in these tests.
pub const AUDIENCE: &str = "qrpark";

/// The instant every test starts at (2026-09-29T02:00:00Z), in seconds since 1970.
pub const NOW: i64 = 1_790_647_200;

const ES256_PEM: &str = include_str!("../../../../fixtures/keys/city-es256.pem");
const ES256_ATTACKER_PEM: &str = include_str!("../../../../fixtures/keys/attacker-es256.pem");
const RS256_PEM: &str = include_str!("../../../../fixtures/keys/city-rs256.pem");

/// A signing key and the JWK that publishes its public half.
pub struct TestKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    /// An Ed25519 key whose seed is 32 times `seed`.
    pub fn ed(kid: &'static str, seed: u8) -> Self {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        Self {
            kid,
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
            }),
        }
    }

    fn from_pem(kid: &'static str, alg: Algorithm, pem: &str) -> Self {
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Self {
            kid,
            alg,
            encoding,
            jwk,
        }
    }

    /// The city's EC P-256 key, `es-1`.
    pub fn es() -> Self {
        Self::from_pem("es-1", Algorithm::ES256, ES256_PEM)
    }

    /// The city's RSA key, `rs-1`.
    pub fn rs() -> Self {
        Self::from_pem("rs-1", Algorithm::RS256, RS256_PEM)
    }

    /// An EC P-256 key the city never published, under any kid.
    pub fn attacker(kid: &'static str) -> Self {
        Self::from_pem(kid, Algorithm::ES256, ES256_ATTACKER_PEM)
    }

    /// A token with these claims under this key's own header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(self.header(), claims)
    }

    /// The header a city would send: this key's `alg` and `kid`.
    pub fn header(&self) -> Header {
        Header {
            kid: Some(self.kid.to_owned()),
            ..Header::new(self.alg)
        }
    }

    /// A token with these claims under a header of the test's making.
    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A JWKS document publishing these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// The same document as a `JwkSet`, for `JwksSource::Static`.
pub fn jwk_set(keys: &[&TestKey]) -> JwkSet {
    serde_json::from_value(jwks(keys)).unwrap()
}

/// A clock showing [`NOW`].
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::from_timestamp(NOW, 0).expect("NOW is a valid instant"),
    ))
}

/// The city's keys in these tests (one of each accepted kind), on a clock at [`NOW`].
pub async fn verifier() -> CityVerifier {
    verifier_on(clock()).await
}

/// The city's keys in these tests, on the given clock.
pub async fn verifier_on(clock: Arc<ManualClock>) -> CityVerifier {
    let set = jwk_set(&[&TestKey::ed("ed-1", 1), &TestKey::es(), &TestKey::rs()]);
    CityVerifier::new(
        JwksSource::Static(set),
        ISSUER.into(),
        AUDIENCE.into(),
        clock,
    )
    .await
    .unwrap()
}

/// The tests' "now", in seconds since 1970.
pub fn now() -> i64 {
    NOW
}

/// The claims of a valid driver token, valid for ten minutes from [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "driver-42",
        "iat": now(), "nbf": now(), "exp": now() + 600,
    })
}

/// `claims` with `name` set to `value`.
pub fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

/// `claims` without `name`.
pub fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// JSON in base64url, as a JWS part.
pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Why the token was refused; panics if it was accepted.
#[track_caller]
pub fn rejected(result: Result<CityIdentity, TokenRejection>) -> TokenRejection {
    match result {
        Ok(identity) => panic!("accepted: {identity:?}"),
        Err(e) => e,
    }
}
