//! QR tokens: a compact JWS (RFC 7515, EdDSA over Ed25519) naming a space and the version
//! of its code, so that anyone holding the JWKS can tell a genuine sticker from a forgery.
//!
//! The token is short on purpose: `{"alg":"EdDSA","kid":"k1"}` and `{"s":"<space id in
//! base64url>","v":<code version>}` sign to 170 characters with a one-digit key number,
//! which keeps the code at QR version 12 or less at level Q.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest token we try to verify; anything longer is not ours.
pub const MAX_TOKEN_LEN: usize = 512;

/// What a QR token says: which space, and which version of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrClaims {
    pub space_id: Uuid,
    pub version: u32,
}

/// The claims on the wire: short names keep the code small.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireClaims {
    /// The space id, 16 bytes in base64url without padding.
    s: String,
    /// The code's version; rotation increments it.
    v: u32,
}

/// An Ed25519 key pair that signs QR tokens.
#[derive(Clone)]
pub struct QrSigningKey {
    pub kid: String,
    signing: SigningKey,
}

impl std::fmt::Debug for QrSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QrSigningKey({}, ***)", self.kid)
    }
}

/// Why a token was refused. The answer to the client never says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrTokenError {
    #[error("token longer than {MAX_TOKEN_LEN} characters")]
    TooLong,
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not accepted (only EdDSA)")]
    Algorithm(String),
    #[error("header has no kid, or one we do not publish")]
    UnknownKey,
    #[error("header carries parameters we never set")]
    UnexpectedHeader,
    #[error("signature does not verify")]
    Signature,
    #[error("claims are not ours: {0}")]
    Claims(String),
}

impl QrSigningKey {
    /// The key with this 32-byte Ed25519 seed; a new key's seed comes from the caller's
    /// random source (`qr::keyring`), since the domain does no I/O.
    pub fn from_seed(kid: &str, seed: &[u8; 32]) -> Self {
        Self {
            kid: kid.to_owned(),
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte seed, for storage.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// A detached Ed25519 signature over `message`, base64url: how qrpark signs what it sends
    /// to others (settlements to the city's payment gateway), verifiable with the same JWKS.
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        use ed25519_dalek::Signer;
        URL_SAFE_NO_PAD.encode(self.signing.sign(message).to_bytes())
    }

    /// Signs the claims into a compact JWS.
    pub fn sign(&self, claims: QrClaims) -> String {
        let header = Header {
            typ: None,
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        let wire = WireClaims {
            s: URL_SAFE_NO_PAD.encode(claims.space_id.as_bytes()),
            v: claims.version,
        };
        let der = self
            .signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        jsonwebtoken::encode(&header, &wire, &EncodingKey::from_ed_der(der.as_bytes()))
            .expect("signing with a valid Ed25519 key cannot fail")
    }
}

/// The public half of a signing key as a JWK (RFC 8037).
pub fn jwk(kid: &str, public_key: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public_key),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// Verifies a token against the published keys (`public_key(kid)`), strictly: EdDSA only,
/// a known `kid`, no header parameter we never set, exactly our claims.
pub fn verify(
    token: &str,
    public_key: impl Fn(&str) -> Option<[u8; 32]>,
) -> Result<QrClaims, QrTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(QrTokenError::TooLong);
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| QrTokenError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA {
        return Err(QrTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    // Keys come only from our own JWKS, never from the token (jku, jwk, x5u, x5c).
    if header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(QrTokenError::UnexpectedHeader);
    }
    let kid = header.kid.ok_or(QrTokenError::UnknownKey)?;
    let key = public_key(&kid).ok_or(QrTokenError::UnknownKey)?;
    let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(key))
        .map_err(|_| QrTokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<WireClaims>(token, &decoding, &validation).map_err(|e| {
        match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => QrTokenError::Signature,
            jsonwebtoken::errors::ErrorKind::Json(_) => QrTokenError::Claims(e.to_string()),
            _ => QrTokenError::Malformed(e.to_string()),
        }
    })?;
    let bytes = URL_SAFE_NO_PAD
        .decode(&data.claims.s)
        .map_err(|_| QrTokenError::Claims("space id is not base64url".into()))?;
    let space_id = Uuid::from_slice(&bytes)
        .map_err(|_| QrTokenError::Claims("space id is not 16 bytes".into()))?;
    Ok(QrClaims {
        space_id,
        version: data.claims.v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str) -> QrSigningKey {
        QrSigningKey::from_seed(kid, &[7; 32])
    }

    fn claims() -> QrClaims {
        QrClaims {
            space_id: Uuid::now_v7(),
            version: 3,
        }
    }

    #[test]
    fn round_trips_and_stays_short() {
        let k = key("k1");
        let c = claims();
        let token = k.sign(c);
        // docs/qr-codes.md promises 171 characters for k1 and a one-digit version.
        assert_eq!(token.len(), 171, "{token}");
        let big = QrSigningKey::from_seed("k99", &[7; 32]).sign(QrClaims {
            space_id: c.space_id,
            version: 999,
        });
        assert!(big.len() <= 176, "{} chars: {big}", big.len());
        let found = verify(&token, |kid| (kid == "k1").then(|| k.public_key()));
        assert_eq!(found, Ok(c));
    }

    #[test]
    fn refuses_unknown_kid_and_foreign_key() {
        let token = key("k1").sign(claims());
        assert_eq!(verify(&token, |_| None), Err(QrTokenError::UnknownKey));
        let other = QrSigningKey::from_seed("k1", &[9; 32]);
        assert_eq!(
            verify(&token, |_| Some(other.public_key())),
            Err(QrTokenError::Signature)
        );
    }

    #[test]
    fn refuses_tampered_payload_and_alg_none() {
        let k = key("k1");
        let token = k.sign(claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"s":"AAAAAAAAAAAAAAAAAAAAAA","v":3}"#);
        let tampered = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(
            verify(&tampered, |_| Some(k.public_key())),
            Err(QrTokenError::Signature)
        );
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(verify(&unsigned, |_| Some(k.public_key())).is_err());
        let hs = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1"}"#);
        let hs_token = format!("{hs}.{}.{}", parts[1], parts[2]);
        assert!(matches!(
            verify(&hs_token, |_| Some(k.public_key())),
            Err(QrTokenError::Algorithm(_))
        ));
    }

    #[test]
    fn refuses_garbage_and_oversized() {
        let k = key("k1");
        for garbage in ["", "abc", "a.b.c", "...", "eyJ.eyJ.sig"] {
            assert!(
                verify(garbage, |_| Some(k.public_key())).is_err(),
                "{garbage}"
            );
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            verify(&long, |_| Some(k.public_key())),
            Err(QrTokenError::TooLong)
        );
    }

    #[test]
    fn jwk_names_the_key() {
        let k = key("k1");
        let jwk = jwk("k1", &k.public_key());
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
    }
}
