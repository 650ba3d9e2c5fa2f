//! City identity tokens: a driver (or a city auditor) proves who they are with a JWT from the
//! city's identity provider, checked here against the city's JWKS (`QRPARK_CITY_JWKS`).
//!
//! What is accepted, and why:
//!
//! - At most [`MAX_TOKEN_BYTES`] (8 KiB), checked before anything is decoded, so a huge
//!   header cannot make us hash, parse or verify.
//! - A compact JWS whose header names a `kid` and an `alg` among ES256, RS256 and EdDSA, and
//!   whose `alg` equals the algorithm the key is bound to (from the JWK's `alg`, or from its
//!   `kty`/`crv`). A key cannot be replayed under another algorithm (the HS256-with-the-public-key
//!   trick) and `none` never reaches the library.
//! - Keys come only from the configured JWKS. The `jku`, `x5u`, `jwk` and `x5c` headers are
//!   ignored: never fetched, never used. A `crit` header is refused, since we understand no
//!   extension.
//! - An unknown `kid` makes a URL source refetch its JWKS (key rotation), at most once per
//!   [`DEFAULT_REFETCH_INTERVAL`] across all callers, so a stream of forged kids cannot turn us
//!   into a request amplifier against the city.
//! - The JWKS is also read again on a schedule, so that a key the city withdraws stops
//!   verifying: a URL at least every [`MAX_KEYS_AGE`] (15 minutes; sooner as its
//!   `Cache-Control: max-age` says, never more often than [`MIN_KEYS_AGE`]), a file when its
//!   modification time or length changes (looked at every [`FILE_CHECK_INTERVAL`]).
//! - Claims are checked on the raw JSON, not through the library's validation: `iss` equal to
//!   the city's issuer, `aud` containing our audience, `exp` and `sub` required, `exp`, `nbf`,
//!   `iat` JSON numbers when present (a string is refused, not taken as absent), and the
//!   times compared with [`LEEWAY`] as documented there, against the injected [`Clock`].
//! - Every success is cached under the SHA-256 of the token until the token's `exp`, so a
//!   driver's repeated requests cost a hash and a map lookup instead of a signature check
//!   (ES256 costs ~0.3 ms with the `rust_crypto` backend). Failures are never cached.
//!
//! Every rejection is one [`TokenRejection`]; the HTTP layer answers them all alike (401
//! `token_invalid`) and logs the reason. Nothing here logs or stores the token itself.
//!
//! The parts: `settings` (the JWKS setting, the proven identity), `jwks` (reading, fetching
//! and binding keys), `keys` (the keys in memory and their rate-limited refetch), `header`
//! and `claims` (the rules), `cache` (verified tokens). This file ties them together.

mod cache;
mod claims;
mod header;
mod jwks;
mod keys;
mod settings;
#[cfg(test)]
mod test_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use crate::clock::Clock;

pub use cache::DEFAULT_CACHE_CAPACITY;
pub use claims::{DEFAULT_MAX_LIFETIME, LEEWAY, MAX_SUBJECT_CHARS};
pub use jwks::{FETCH_TIMEOUT, JwksError, MAX_JWKS_BYTES};
pub use keys::{DEFAULT_REFETCH_INTERVAL, FILE_CHECK_INTERVAL, MAX_KEYS_AGE, MIN_KEYS_AGE};
pub use settings::{CityIdentity, JwksSource};

use cache::TokenCache;
use keys::CityKeys;

/// Longest token we look at, in bytes. City tokens are typically under 2 KiB; an RS256
/// token with a few dozen roles stays well under this.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a city token was refused. The answer to the client is always 401 `token_invalid`;
/// this text is for the log, and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("token is {len} bytes, more than the {MAX_TOKEN_BYTES} accepted")]
    TooLarge { len: usize },
    #[error("token is not a compact JWS: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not accepted (ES256, RS256, EdDSA only)")]
    AlgorithmNotAllowed(String),
    #[error("header has no kid")]
    MissingKid,
    #[error("header marks extensions as critical; none are supported")]
    CriticalHeader,
    #[error("no key with kid {0:?} in the city's JWKS")]
    UnknownKid(String),
    #[error("header says {header}, but key {kid:?} is bound to {key}")]
    AlgorithmMismatch {
        kid: String,
        header: String,
        key: String,
    },
    #[error("signature does not verify")]
    BadSignature,
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    #[error("claim {0} is not a number")]
    NotANumber(&'static str),
    #[error("claim {0} is not a date between 1970 and 9999")]
    DateOutOfRange(&'static str),
    #[error("claim {0} has the wrong type")]
    WrongType(&'static str),
    #[error("issuer {0:?} is not the city's")]
    WrongIssuer(String),
    #[error("audience does not include ours")]
    WrongAudience,
    #[error("token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("token not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("token issued in the future, at {0}")]
    IssuedInFuture(DateTime<Utc>),
    #[error("sub {0}")]
    BadSubject(&'static str),
    #[error("roles is not an array of strings")]
    BadRoles,
    #[error("token lives {seconds} s, longer than the longest lifetime accepted")]
    LivesTooLong { seconds: i64 },
}

/// Verifies city identity tokens against the city's JWKS, with a cache of verified tokens.
pub struct CityVerifier {
    keys: CityKeys,
    issuer: String,
    audience: String,
    cache: TokenCache,
    clock: Arc<dyn Clock>,
    signature_checks: AtomicU64,
    max_lifetime: Duration,
}

impl std::fmt::Debug for CityVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CityVerifier")
            .field("source", &self.keys.label())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kids", &self.keys.kids())
            .finish_non_exhaustive()
    }
}

impl CityVerifier {
    /// Loads the city's keys once; refuses a JWKS with no usable key. Token times are judged
    /// by `clock`, the app's clock.
    pub async fn new(
        source: JwksSource,
        issuer: String,
        audience: String,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, JwksError> {
        if issuer.is_empty() {
            return Err(JwksError::EmptySetting("the city issuer"));
        }
        if audience.is_empty() {
            return Err(JwksError::EmptySetting("the audience"));
        }
        Ok(Self {
            keys: CityKeys::load(source, clock.now()).await?,
            issuer,
            audience,
            cache: TokenCache::new(DEFAULT_CACHE_CAPACITY),
            clock,
            signature_checks: AtomicU64::new(0),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        })
    }

    /// Sets the shortest time between two refetches for an unknown `kid` (default one minute).
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.keys.set_refetch_interval(interval);
        self
    }

    /// Sets how many verified tokens are kept (default [`DEFAULT_CACHE_CAPACITY`]).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache.set_capacity(capacity);
        self
    }

    /// Sets the longest token lifetime (`exp` minus `iat`) accepted (default one day).
    pub fn with_max_token_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// How many signatures were checked (cache misses that got as far as the signature).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// How many times the JWKS was read, the initial load included.
    pub fn jwks_fetches(&self) -> u64 {
        self.keys.fetches()
    }

    /// Checks a token and says who it names; see the module documentation for the rules.
    pub async fn verify(&self, token: &str) -> Result<CityIdentity, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge { len: token.len() });
        }
        // Before the cache: a key the city withdrew must stop verifying the tokens it
        // signed, cached or not (a change clears the cache).
        self.keys
            .refresh_if_due(self.clock.now(), || self.cache.clear())
            .await;
        let digest = cache::digest(token);
        if let Some(identity) = self.cache.get(&digest, self.clock.now()) {
            return Ok(identity);
        }

        let header = header::parse(token)?;
        // A changed JWKS may have withdrawn a key: tokens it verified must be checked again.
        let key = self
            .keys
            .key_for(&header.kid, || self.cache.clear())
            .await?;
        if key.algorithm != header.algorithm {
            return Err(TokenRejection::AlgorithmMismatch {
                kid: header.kid,
                header: format!("{:?}", header.algorithm),
                key: format!("{:?}", key.algorithm),
            });
        }

        // The library checks the signature only: every claim is checked below on the raw
        // JSON, with one clock and one set of rules (the library's exp/nbf handling has
        // changed between versions, and takes a string `exp` as absent before 10.3).
        let mut validation = Validation::new(key.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::BadSignature,
                _ => TokenRejection::Malformed(e.to_string()),
            })?
            .claims;

        // Read the clock again: a refetch for an unknown kid may have taken seconds.
        let now = self.clock.now();
        let identity = claims::check(
            &claims,
            &self.issuer,
            &self.audience,
            now,
            self.max_lifetime,
        )?;
        self.cache.remember(digest, &identity);
        Ok(identity)
    }
}

/// Keeps attacker-chosen text short in the log.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use jsonwebtoken::jwk::JwkSet;
    use serde_json::json;

    #[tokio::test]
    async fn accepts_eddsa_es256_and_rs256() {
        let v = verifier().await;
        for key in [TestKey::ed("ed-1", 1), TestKey::es(), TestKey::rs()] {
            let exp = now() + 600;
            let token = key.sign(&with(claims(), "exp", json!(exp)));
            let identity = v
                .verify(&token)
                .await
                .unwrap_or_else(|e| panic!("{:?}: {e}", key.alg));
            assert_eq!(identity.subject, "driver-42");
            assert!(identity.roles.is_empty());
            assert!(!identity.is_auditor());
            assert_eq!(identity.expires_at.timestamp(), exp);
        }
    }

    #[tokio::test]
    async fn refuses_unknown_kid_missing_kid_and_wrong_key() {
        let v = verifier().await;
        let stranger = TestKey::attacker("es-9");
        assert_eq!(
            rejected(v.verify(&stranger.sign(&claims())).await),
            TokenRejection::UnknownKid("es-9".into())
        );
        let mut header = stranger.header();
        header.kid = None;
        assert_eq!(
            rejected(v.verify(&stranger.sign_with(header, &claims())).await),
            TokenRejection::MissingKid
        );
        // Our kid, someone else's key.
        let impostor = TestKey::attacker("es-1");
        assert_eq!(
            rejected(v.verify(&impostor.sign(&claims())).await),
            TokenRejection::BadSignature
        );
        let impostor = TestKey::ed("ed-1", 2);
        assert_eq!(
            rejected(v.verify(&impostor.sign(&claims())).await),
            TokenRejection::BadSignature
        );
    }

    #[tokio::test]
    async fn refuses_an_algorithm_other_than_the_keys() {
        let v = verifier().await;
        // Signed RS256 with the RSA key, but naming the Ed25519 key.
        let rs = TestKey::rs();
        let mut header = rs.header();
        header.kid = Some("ed-1".into());
        assert_eq!(
            rejected(v.verify(&rs.sign_with(header, &claims())).await),
            TokenRejection::AlgorithmMismatch {
                kid: "ed-1".into(),
                header: "RS256".into(),
                key: "EdDSA".into()
            }
        );
        // ES256 header naming the RSA key.
        let es = TestKey::es();
        let mut header = es.header();
        header.kid = Some("rs-1".into());
        assert!(matches!(
            rejected(v.verify(&es.sign_with(header, &claims())).await),
            TokenRejection::AlgorithmMismatch { .. }
        ));
    }

    #[tokio::test]
    async fn refuses_oversized_tokens_before_any_work() {
        let v = verifier().await;
        let padded = with(claims(), "pad", json!("x".repeat(MAX_TOKEN_BYTES)));
        let token = TestKey::es().sign(&padded);
        assert_eq!(
            rejected(v.verify(&token).await),
            TokenRejection::TooLarge { len: token.len() }
        );
        assert!(matches!(
            rejected(v.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)).await),
            TokenRejection::TooLarge { .. }
        ));
        assert_eq!(v.signature_checks(), 0);
    }

    #[tokio::test]
    async fn refuses_bad_sources_and_settings() {
        let missing = JwksSource::File("/nonexistent/qrpark/jwks.json".into());
        assert!(matches!(
            CityVerifier::new(missing, ISSUER.into(), AUDIENCE.into(), clock()).await,
            Err(JwksError::File { .. })
        ));
        let set = jwk_set(&[&TestKey::es()]);
        assert!(matches!(
            CityVerifier::new(
                JwksSource::Static(set.clone()),
                String::new(),
                AUDIENCE.into(),
                clock()
            )
            .await,
            Err(JwksError::EmptySetting(_))
        ));
        assert!(matches!(
            CityVerifier::new(
                JwksSource::Static(JwkSet::default()),
                ISSUER.into(),
                AUDIENCE.into(),
                clock()
            )
            .await,
            Err(JwksError::NoUsableKey)
        ));
    }

    #[test]
    fn can_live_in_the_app_state() {
        fn shared<T: Send + Sync + 'static>() {}
        fn sendable<T: Send>(_: &T) {}
        shared::<CityVerifier>();
        let v: Option<CityVerifier> = None;
        if let Some(v) = &v {
            sendable(&v.verify(""));
        }
    }
}
