//! The development city identity provider of `qrpark demo` (and of tests): an Ed25519 key
//! made at start, which signs driver and auditor tokens exactly as a city would, and whose
//! JWKS is the only one the demo's verifier trusts. It never exists under `qrpark serve`:
//! nothing outside the demo and the tests constructs it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::clock::Clock;

/// A throwaway identity provider whose key lives only as long as the process.
pub struct DemoIdp {
    signing: SigningKey,
    encoding: EncodingKey,
    /// When tokens are issued: the app's clock, which its verifier reads too.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DemoIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DemoIdp({}, ***)", Self::KID)
    }
}

impl DemoIdp {
    /// The `iss` of every demo token; the demo's verifier expects it.
    pub const ISSUER: &'static str = "qrpark-demo-idp";
    /// The `kid` of the demo key.
    pub const KID: &'static str = "demo-1";

    /// A provider with a new key from the operating system's random source, issuing tokens
    /// at the instants `clock` tells.
    pub fn generate(clock: Arc<dyn Clock>) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's random source is available");
        let signing = SigningKey::from_bytes(&seed);
        let der = signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            signing,
            clock,
        }
    }

    /// The public key as a JWKS, for `JwksSource::Static`.
    pub fn jwks(&self) -> JwkSet {
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes()),
            "kid": Self::KID,
            "alg": "EdDSA",
            "use": "sig",
        });
        JwkSet {
            keys: vec![serde_json::from_value(jwk).expect("an Ed25519 JWK parses")],
        }
    }

    /// A token for `subject` with these roles, valid from now for `ttl`.
    pub fn issue(&self, subject: &str, roles: &[&str], audience: &str, ttl: Duration) -> String {
        let now = self.clock.now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = serde_json::json!({
            "iss": Self::ISSUER,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl),
            "roles": roles,
        });
        let header = Header {
            kid: Some(Self::KID.to_owned()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("signing with a valid Ed25519 key cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::city::{CityVerifier, JwksSource, TokenRejection};
    use chrono::{DateTime, TimeDelta};

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_790_647_200, 0).expect("a valid instant"),
        ))
    }

    /// A provider and a verifier that trusts it, both on `clock`.
    async fn provider(clock: &Arc<ManualClock>) -> (DemoIdp, CityVerifier) {
        let idp = DemoIdp::generate(clock.clone());
        let verifier = CityVerifier::new(
            JwksSource::Static(idp.jwks()),
            DemoIdp::ISSUER.into(),
            "qrpark".into(),
            clock.clone(),
        )
        .await
        .unwrap();
        (idp, verifier)
    }

    #[tokio::test]
    async fn its_tokens_verify_against_its_jwks() {
        let clock = clock();
        let (idp, v) = provider(&clock).await;
        let driver = v
            .verify(&idp.issue("demo-driver", &[], "qrpark", Duration::from_secs(3600)))
            .await
            .unwrap();
        assert_eq!(driver.subject, "demo-driver");
        assert!(!driver.is_auditor());
        assert_eq!(driver.expires_at - clock.now(), TimeDelta::seconds(3600));

        let auditor = v
            .verify(&idp.issue(
                "demo-auditor",
                &["auditor"],
                "qrpark",
                Duration::from_secs(60),
            ))
            .await
            .unwrap();
        assert!(auditor.is_auditor());
    }

    #[tokio::test]
    async fn another_instance_or_audience_is_not_trusted() {
        let clock = clock();
        let (idp, v) = provider(&clock).await;
        let other = DemoIdp::generate(clock.clone());
        let token = other.issue("demo-driver", &[], "qrpark", Duration::from_secs(60));
        assert_eq!(v.verify(&token).await, Err(TokenRejection::BadSignature));
        let token = idp.issue("demo-driver", &[], "elsewhere", Duration::from_secs(60));
        assert_eq!(v.verify(&token).await, Err(TokenRejection::WrongAudience));
        let token = idp.issue("demo-driver", &[], "qrpark", Duration::ZERO);
        assert!(matches!(
            v.verify(&token).await,
            Err(TokenRejection::Expired(_))
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", DemoIdp::generate(clock())),
            "DemoIdp(demo-1, ***)"
        );
    }
}
