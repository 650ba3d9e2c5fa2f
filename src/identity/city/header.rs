//! The header rules, applied before any key is chosen or any signature checked: the
//! algorithm allow-list, a `kid`, no critical extensions, and no key taken from the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::{TokenRejection, shorten};

/// The algorithms accepted, each bound to one kind of key.
const ALLOWED: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// What we read from a token's header before choosing a key.
pub(super) struct TokenHeader {
    pub(super) algorithm: Algorithm,
    pub(super) kid: String,
}

/// Reads the header of a compact JWS, refusing what the rules above refuse.
pub(super) fn parse(token: &str) -> Result<TokenHeader, TokenRejection> {
    let malformed = |why: &str| TokenRejection::Malformed(why.to_owned());
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| malformed("header is not a JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(malformed("header has no alg")),
    };
    let algorithm = ALLOWED
        .into_iter()
        .find(|allowed| format!("{allowed:?}") == *alg)
        .ok_or_else(|| TokenRejection::AlgorithmNotAllowed(shorten(alg)))?;
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(TokenRejection::MissingKid),
    };
    // RFC 7515 4.1.11: extensions marked critical must be understood; we understand none.
    if header.contains_key("crit") {
        return Err(TokenRejection::CriticalHeader);
    }
    // jku, x5u, jwk and x5c are deliberately not read: keys come from our JWKS only.
    Ok(TokenHeader { algorithm, kid })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    #[tokio::test]
    async fn refuses_alg_none_and_hs256_keyed_with_the_public_key() {
        let v = verifier().await;
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "ed-1"})),
            b64(&claims())
        );
        assert_eq!(
            rejected(v.verify(&none).await),
            TokenRejection::AlgorithmNotAllowed("none".into())
        );
        // The classic confusion: HMAC keyed with bytes the attacker can read off the JWKS.
        let ed = TestKey::ed("ed-1", 1);
        let public = URL_SAFE_NO_PAD
            .decode(ed.jwk["x"].as_str().unwrap())
            .unwrap();
        for (kid, secret) in [
            ("ed-1", public),
            ("rs-1", serde_json::to_vec(&TestKey::rs().jwk).unwrap()),
        ] {
            let hs = TestKey {
                kid,
                alg: Algorithm::HS256,
                encoding: EncodingKey::from_secret(&secret).unwrap(),
                jwk: Value::Null,
            };
            assert_eq!(
                rejected(v.verify(&hs.sign(&claims())).await),
                TokenRejection::AlgorithmNotAllowed("HS256".into())
            );
        }
        assert_eq!(v.signature_checks(), 0);
    }

    #[tokio::test]
    async fn never_trusts_keys_announced_by_the_token() {
        let v = verifier().await;
        let attacker = TestKey::attacker("attacker-1");
        let mut header = attacker.header();
        header.jku = Some("https://attacker.example/jwks.json".into());
        header.x5u = Some("https://attacker.example/cert.pem".into());
        header.jwk = Some(serde_json::from_value(attacker.jwk.clone()).unwrap());
        let token = attacker.sign_with(header.clone(), &claims());
        assert_eq!(
            rejected(v.verify(&token).await),
            TokenRejection::UnknownKid("attacker-1".into())
        );
        // Same announcement under one of our kids: our key decides, and it says no.
        header.kid = Some("es-1".into());
        let token = attacker.sign_with(header, &claims());
        assert_eq!(
            rejected(v.verify(&token).await),
            TokenRejection::BadSignature
        );
        // A genuine token that carries such headers is judged on our key alone.
        let es = TestKey::es();
        let mut header = es.header();
        header.jku = Some("https://attacker.example/jwks.json".into());
        v.verify(&es.sign_with(header, &claims())).await.unwrap();
    }

    #[tokio::test]
    async fn refuses_critical_extensions_and_garbage() {
        let v = verifier().await;
        let es = TestKey::es();
        let mut header = es.header();
        header.crit = Some(vec!["exp".into()]);
        assert_eq!(
            rejected(v.verify(&es.sign_with(header, &claims())).await),
            TokenRejection::CriticalHeader
        );
        for garbage in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!.x.y",
            "e30.e30.",
            "bnVsbA.e30.x",
        ] {
            assert!(
                matches!(
                    rejected(v.verify(garbage).await),
                    TokenRejection::Malformed(_) | TokenRejection::MissingKid
                ),
                "{garbage}"
            );
        }
        // A valid token with its payload swapped.
        let token = es.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = with(claims(), "sub", json!("someone-else"));
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(
            rejected(v.verify(&tampered).await),
            TokenRejection::BadSignature
        );
    }
}
