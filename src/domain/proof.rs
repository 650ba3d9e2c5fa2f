//! Proof of parking: a compact JWS (EdDSA) a driver's phone shows as a QR code, and a
//! warden verifies offline against qrpark's published JWKS, so a paid driver is never
//! ticketed because the network is down.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::qr_token::QrSigningKey;

/// The longest a proof is valid.
pub const MAX_VALIDITY: TimeDelta = TimeDelta::minutes(15);

/// The `typ` header of a proof, so that no other token of ours passes for one.
pub const TYP: &str = "qrpark-proof+jwt";

/// What a proof says: this session, on this space, for this plate, valid until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofClaims {
    /// The session id.
    pub sid: Uuid,
    /// The space id, as QR tokens name it (16 bytes, base64url).
    pub s: String,
    /// The plate, or `null` when the session has none.
    pub p: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

impl ProofClaims {
    /// A proof issued `now` for a session that stops being paid at `ends_at` (the earlier of
    /// its planned stop and its `leave_by`, if any): valid for 15 minutes at most, never past
    /// `ends_at`. `None` when the session is no longer paid at `now`.
    pub fn issue(
        session_id: Uuid,
        space_id: Uuid,
        plate: Option<&str>,
        now: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        let mut exp = now + MAX_VALIDITY;
        if let Some(end) = ends_at {
            exp = exp.min(end);
        }
        let (iat, exp) = (now.timestamp(), exp.timestamp());
        (exp > iat).then(|| Self {
            sid: session_id,
            s: URL_SAFE_NO_PAD.encode(space_id.as_bytes()),
            p: plate.map(str::to_owned),
            iat,
            exp,
        })
    }

    /// When the proof stops being valid.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The compact JWS: `{"alg":"EdDSA","kid":..,"typ":..}`, the claims, an Ed25519 signature.
    pub fn sign(&self, key: &QrSigningKey) -> String {
        let header = serde_json::json!({"alg": "EdDSA", "kid": key.kid, "typ": TYP});
        let claims = serde_json::to_vec(self).expect("the claims are plain JSON");
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = key.sign_bytes(input.as_bytes());
        format!("{input}.{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_proof_lasts_fifteen_minutes_at_most_and_never_past_the_end() {
        let now = at("2026-09-29T10:00:00Z");
        let (session, space) = (Uuid::now_v7(), Uuid::now_v7());
        let long = ProofClaims::issue(session, space, Some("沪A12345"), now, None).unwrap();
        assert_eq!(long.exp - long.iat, 900);
        let ends = at("2026-09-29T10:05:00Z");
        let short = ProofClaims::issue(session, space, None, now, Some(ends)).unwrap();
        assert_eq!(short.expires_at(), ends);
        assert_eq!(short.p, None);
        assert!(ProofClaims::issue(session, space, None, now, Some(now)).is_none());
    }

    #[test]
    fn the_proof_verifies_with_the_public_key_alone() {
        let key = QrSigningKey::from_seed("k9", &[7u8; 32]);
        let now = Utc::now();
        let claims =
            ProofClaims::issue(Uuid::now_v7(), Uuid::now_v7(), Some("AB123"), now, None).unwrap();
        let token = claims.sign(&key);
        let public = jsonwebtoken::DecodingKey::from_ed_components(
            &URL_SAFE_NO_PAD.encode(key.public_key()),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.required_spec_claims = ["exp".to_owned()].into();
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &public, &validation).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some("k9"));
        assert_eq!(data.header.typ.as_deref(), Some(TYP));
        assert_eq!(data.claims["p"], "AB123");
        assert_eq!(data.claims["sid"], claims.sid.to_string());
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &public, &validation).is_err());
    }
}
