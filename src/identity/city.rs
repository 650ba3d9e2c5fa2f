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
//! - Claims are checked on the raw JSON, not through the library's validation: `iss` equal to
//!   the city's issuer, `aud` containing our audience, `exp` and `sub` required, `exp`, `nbf`,
//!   `iat` JSON numbers when present (a string is refused, not taken as absent), and the
//!   times compared with [`LEEWAY`] as documented there.
//! - Every success is cached under the SHA-256 of the token until the token's `exp`, so a
//!   driver's repeated requests cost a hash and a map lookup instead of a signature check
//!   (ES256 costs ~0.3 ms with the `rust_crypto` backend). Failures are never cached.
//!
//! Every rejection is one [`TokenRejection`]; the HTTP layer answers them all alike (401
//! `token_invalid`) and logs the reason. Nothing here logs or stores the token itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest token we look at, in bytes. City tokens are typically under 2 KiB; an RS256
/// token with a few dozen roles stays well under this.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Clock skew tolerated between the city's identity provider and us, applied to `nbf` and
/// `iat` only: a token is refused if its `nbf` is more than 60 s in the future, or if its
/// `iat` is more than 60 s in the future. `exp` gets no leeway (a token is refused from the
/// second of its `exp` on), so that the cache never serves a token past its own expiry.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Shortest time between two refetches of a URL JWKS for an unknown `kid`.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Most verified tokens kept; when full, expired entries go first, then everything.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// Largest JWKS document we read, from a file or over HTTP.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Time allowed for fetching a JWKS over HTTP, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest `sub` accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// The smallest RSA modulus accepted in the JWKS, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Latest instant a NumericDate may name (9999-12-31T23:59:59Z).
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// The algorithms accepted, each bound to one kind of key.
const ALLOWED: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// A caller proven by the city's identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityIdentity {
    /// The city's stable identifier for the person (`sub`).
    pub subject: String,
    /// The `roles` claim, empty when absent.
    pub roles: Vec<String>,
    /// When the token stops being valid (`exp`).
    pub expires_at: DateTime<Utc>,
}

impl CityIdentity {
    /// Whether the city made this caller an auditor (`roles` contains `auditor`).
    pub fn is_auditor(&self) -> bool {
        self.roles.iter().any(|role| role == "auditor")
    }
}

/// Where the city's public keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWKS document on disk, read once at start.
    File(PathBuf),
    /// An `https://` URL (or `http://` on a loopback host), fetched at start and again,
    /// rate-limited, when a token names a `kid` we do not know.
    Url(String),
    /// Keys given by the program itself (the demo's identity provider, tests).
    Static(JwkSet),
}

impl JwksSource {
    /// Reads the `QRPARK_CITY_JWKS` setting: an `https://` URL, an `http://` URL on
    /// 127.0.0.1, `localhost` or `[::1]` (for tests and local development), or a file path.
    pub fn from_setting(value: &str) -> Result<Self, JwksError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(JwksError::Setting("the JWKS setting is empty".into()));
        }
        let lower = value.to_ascii_lowercase();
        if !lower.contains("://") {
            return Ok(Self::File(PathBuf::from(value)));
        }
        let url = reqwest::Url::parse(value)
            .map_err(|e| JwksError::Setting(format!("{value:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self::Url(url.into())),
            "http" if is_loopback(&url) => Ok(Self::Url(url.into())),
            "http" => Err(JwksError::Setting(format!(
                "{value:?}: plain http is accepted only on a loopback host; use https"
            ))),
            _ => Err(JwksError::Setting(format!(
                "{value:?}: expected an https:// URL or a file path"
            ))),
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why the city's keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("bad JWKS setting: {0}")]
    Setting(String),
    #[error("cannot read JWKS file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client for the JWKS: {0}")]
    Client(reqwest::Error),
    #[error("cannot fetch JWKS from {url}: {source}")]
    Fetch { url: String, source: reqwest::Error },
    #[error("JWKS at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("JWKS document is not valid: {0}")]
    Invalid(String),
    #[error("JWKS has no usable key (EC P-256, RSA of 2048 bits or more, or Ed25519, with a kid)")]
    NoUsableKey,
    #[error("{0} must not be empty")]
    EmptySetting(&'static str),
}

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
}

/// A key from the JWKS, bound to the one algorithm it may verify.
struct BoundKey {
    algorithm: Algorithm,
    key: DecodingKey,
    /// The key's public material and algorithm, to notice a changed JWKS.
    fingerprint: String,
}

type KeyRing = HashMap<String, Arc<BoundKey>>;

/// Verifies city identity tokens against the city's JWKS, with a cache of verified tokens.
pub struct CityVerifier {
    source: JwksSource,
    http: Option<reqwest::Client>,
    issuer: String,
    audience: String,
    keys: RwLock<Arc<KeyRing>>,
    /// When the JWKS was last refetched for an unknown kid; held across the fetch so that
    /// concurrent callers wait for one fetch instead of starting their own.
    refetch_gate: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
    cache: RwLock<HashMap<[u8; 32], CityIdentity>>,
    cache_capacity: usize,
    signature_checks: AtomicU64,
    jwks_fetches: AtomicU64,
}

impl std::fmt::Debug for CityVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.key_ring().keys().cloned().collect();
        f.debug_struct("CityVerifier")
            .field("source", &self.source_label())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl CityVerifier {
    /// Loads the city's keys once; refuses a JWKS with no usable key.
    pub async fn new(
        source: JwksSource,
        issuer: String,
        audience: String,
    ) -> Result<Self, JwksError> {
        if issuer.is_empty() {
            return Err(JwksError::EmptySetting("the city issuer"));
        }
        if audience.is_empty() {
            return Err(JwksError::EmptySetting("the audience"));
        }
        let http = match &source {
            JwksSource::Url(_) => Some(http_client()?),
            _ => None,
        };
        let verifier = Self {
            source,
            http,
            issuer,
            audience,
            keys: RwLock::new(Arc::new(KeyRing::new())),
            refetch_gate: tokio::sync::Mutex::new(None),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            cache: RwLock::new(HashMap::new()),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            signature_checks: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        };
        let ring = verifier.load().await?;
        tracing::info!(
            source = %verifier.source_label(),
            kids = ?ring.keys().collect::<Vec<_>>(),
            "city identity keys loaded"
        );
        *verifier.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(verifier)
    }

    /// Sets the shortest time between two refetches for an unknown `kid` (default one minute).
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Sets how many verified tokens are kept (default [`DEFAULT_CACHE_CAPACITY`]).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity.max(1);
        self
    }

    /// How many signatures were checked (cache misses that got as far as the signature).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// How many times the JWKS was read, the initial load included.
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    /// Checks a token and says who it names; see the module documentation for the rules.
    pub async fn verify(&self, token: &str) -> Result<CityIdentity, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge { len: token.len() });
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cached(&digest, Utc::now()) {
            return Ok(identity);
        }

        let header = parse_header(token)?;
        let key = self.key_for(&header.kid).await?;
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
        let now = Utc::now();
        let identity = self.check_claims(&claims, now)?;
        self.remember(digest, &identity, now);
        Ok(identity)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<CityIdentity, TokenRejection> {
        let exp = numeric_date(claims, "exp")?.ok_or(TokenRejection::MissingClaim("exp"))?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;

        match claims.get("iss") {
            None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("iss")),
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(iss)) => return Err(TokenRejection::WrongIssuer(shorten(iss))),
            Some(_) => return Err(TokenRejection::WrongType("iss")),
        }

        let audience_ok = match claims.get("aud") {
            None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("aud")),
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => {
                let mut found = false;
                for aud in auds {
                    match aud {
                        Value::String(aud) => found |= *aud == self.audience,
                        _ => return Err(TokenRejection::WrongType("aud")),
                    }
                }
                found
            }
            Some(_) => return Err(TokenRejection::WrongType("aud")),
        };
        if !audience_ok {
            return Err(TokenRejection::WrongAudience);
        }

        let subject = match claims.get("sub") {
            None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("sub")),
            Some(Value::String(sub)) => sub,
            Some(_) => return Err(TokenRejection::WrongType("sub")),
        };
        if subject.is_empty() {
            return Err(TokenRejection::BadSubject("is empty"));
        }
        if subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(TokenRejection::BadSubject("is longer than 255 characters"));
        }
        // The subject lands in logs, exports and receipts: control characters have no
        // business in an identifier.
        if subject.chars().any(char::is_control) {
            return Err(TokenRejection::BadSubject("contains control characters"));
        }

        let roles = match claims.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(roles)) => roles
                .iter()
                .map(|role| role.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenRejection::BadRoles)?,
            Some(_) => return Err(TokenRejection::BadRoles),
        };

        let leeway = TimeDelta::from_std(LEEWAY).expect("the leeway fits a TimeDelta");
        if now >= exp {
            return Err(TokenRejection::Expired(exp));
        }
        if let Some(nbf) = nbf
            && nbf > now + leeway
        {
            return Err(TokenRejection::NotYetValid(nbf));
        }
        if let Some(iat) = iat
            && iat > now + leeway
        {
            return Err(TokenRejection::IssuedInFuture(iat));
        }

        Ok(CityIdentity {
            subject: subject.clone(),
            roles,
            expires_at: exp,
        })
    }

    fn cached(&self, digest: &[u8; 32], now: DateTime<Utc>) -> Option<CityIdentity> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .get(digest)
            .filter(|identity| identity.expires_at > now)
            .cloned()
    }

    fn remember(&self, digest: [u8; 32], identity: &CityIdentity, now: DateTime<Utc>) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.cache_capacity {
            cache.retain(|_, cached| cached.expires_at > now);
            if cache.len() >= self.cache_capacity {
                // Still full of live tokens: start over rather than pay for an LRU on every
                // hit. The cost is one signature check per token on its next request.
                cache.clear();
            }
        }
        cache.insert(digest, identity.clone());
    }

    fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key named `kid`; for a URL source, a JWKS refetch (rate-limited) when unknown.
    async fn key_for(&self, kid: &str) -> Result<Arc<BoundKey>, TokenRejection> {
        if let Some(key) = self.key_ring().get(kid) {
            return Ok(key.clone());
        }
        let unknown = || TokenRejection::UnknownKid(shorten(kid));
        if !matches!(self.source, JwksSource::Url(_)) {
            return Err(unknown());
        }
        let mut last_refetch = self.refetch_gate.lock().await;
        // Someone else may have refetched while we waited for the gate.
        if let Some(key) = self.key_ring().get(kid) {
            return Ok(key.clone());
        }
        if let Some(at) = *last_refetch
            && at.elapsed() < self.refetch_interval
        {
            return Err(unknown());
        }
        *last_refetch = Some(Instant::now());
        match self.load().await {
            Ok(ring) => self.replace_keys(ring),
            Err(e) => tracing::warn!(
                source = %self.source_label(),
                error = %e,
                "refetching the city JWKS failed; keeping the keys we have"
            ),
        }
        drop(last_refetch);
        self.key_ring().get(kid).cloned().ok_or_else(unknown)
    }

    fn replace_keys(&self, ring: KeyRing) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let same = keys.len() == ring.len()
            && ring.iter().all(|(kid, key)| {
                keys.get(kid)
                    .is_some_and(|old| old.fingerprint == key.fingerprint)
            });
        if same {
            return;
        }
        tracing::info!(
            source = %self.source_label(),
            kids = ?ring.keys().collect::<Vec<_>>(),
            "city identity keys changed"
        );
        *keys = Arc::new(ring);
        drop(keys);
        // A key may have been withdrawn: tokens it verified must be checked again.
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Reads the JWKS from the source and keeps its usable keys.
    async fn load(&self) -> Result<KeyRing, JwksError> {
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let jwks: Vec<Value> = match &self.source {
            JwksSource::File(path) => parse_jwks(&read_file(path)?)?,
            JwksSource::Url(url) => {
                let client = self.http.as_ref().expect("a URL source has a client");
                parse_jwks(&fetch(client, url).await?)?
            }
            JwksSource::Static(set) => set
                .keys
                .iter()
                .map(|jwk| serde_json::to_value(jwk).map_err(|e| JwksError::Invalid(e.to_string())))
                .collect::<Result<_, _>>()?,
        };
        let mut ring = KeyRing::new();
        for raw in jwks {
            let kid = shorten(raw.get("kid").and_then(Value::as_str).unwrap_or(""));
            match bind_key(raw) {
                Ok((kid, key)) => match ring.entry(kid) {
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(Arc::new(key));
                    }
                    std::collections::hash_map::Entry::Occupied(slot) => tracing::warn!(
                        kid = %shorten(slot.key()),
                        "JWKS names this kid twice; keeping the first"
                    ),
                },
                Err(reason) => tracing::info!(kid = %kid, reason, "JWKS key ignored"),
            }
        }
        if ring.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(ring)
    }

    fn source_label(&self) -> String {
        match &self.source {
            JwksSource::File(path) => path.display().to_string(),
            JwksSource::Url(url) => url.clone(),
            JwksSource::Static(_) => "built-in keys".into(),
        }
    }
}

/// What we read from a token's header before choosing a key.
struct TokenHeader {
    algorithm: Algorithm,
    kid: String,
}

fn parse_header(token: &str) -> Result<TokenHeader, TokenRejection> {
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

/// A NumericDate claim (RFC 7519 2): absent, or a JSON number of seconds since 1970.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, TokenRejection> {
    let seconds = match claims.get(name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().ok_or(TokenRejection::NotANumber(name))?,
        Some(_) => return Err(TokenRejection::NotANumber(name)),
    };
    if !(0.0..=MAX_NUMERIC_DATE).contains(&seconds) {
        return Err(TokenRejection::DateOutOfRange(name));
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
        .map(Some)
        .ok_or(TokenRejection::DateOutOfRange(name))
}

/// Keeps attacker-chosen text short in the log.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Binds a JWK to its algorithm, or says why it cannot be used.
fn bind_key(raw: Value) -> Result<(String, BoundKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|_| "not a JWK we can read")?;
    let kid = match &jwk.common.key_id {
        Some(kid) if !kid.is_empty() => kid.clone(),
        _ => return Err("no kid, so no token can name it"),
    };
    if let Some(key_use) = &jwk.common.public_key_use
        && *key_use != PublicKeyUse::Signature
    {
        return Err("its use is not sig");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("its key_ops do not include verify");
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(p) => {
            if rsa_modulus_bits(&p.n) < MIN_RSA_BITS {
                return Err("RSA modulus shorter than 2048 bits");
            }
            Algorithm::RS256
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return Err("not an EC P-256, RSA or Ed25519 key"),
    };
    // A JWK's alg binds it (RFC 7517 4.4): a key declared for an algorithm we do not accept
    // is not reused for one we do.
    let algorithm = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => by_type,
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => by_type,
        Some(KeyAlgorithm::EdDSA) if by_type == Algorithm::EdDSA => by_type,
        Some(KeyAlgorithm::ES256 | KeyAlgorithm::RS256 | KeyAlgorithm::EdDSA) => {
            return Err("its alg does not fit its key type");
        }
        Some(_) => return Err("its alg is not ES256, RS256 or EdDSA"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "its key material is not valid")?;
    let fingerprint = format!(
        "{algorithm:?}:{}",
        serde_json::to_string(&jwk.algorithm).unwrap_or_default()
    );
    Ok((
        kid,
        BoundKey {
            algorithm,
            key,
            fingerprint,
        },
    ))
}

fn rsa_modulus_bits(n: &str) -> usize {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')) else {
        return 0;
    };
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

/// The `keys` of a JWKS document, each still raw so that one odd key does not hide the rest.
fn parse_jwks(bytes: &[u8]) -> Result<Vec<Value>, JwksError> {
    let document: Value =
        serde_json::from_slice(bytes).map_err(|e| JwksError::Invalid(e.to_string()))?;
    match document.get("keys") {
        Some(Value::Array(keys)) => Ok(keys.clone()),
        _ => Err(JwksError::Invalid("no \"keys\" array".into())),
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, JwksError> {
    use std::io::Read;
    let file_error = |source| JwksError::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(file_error)?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    Ok(bytes)
}

fn http_client() -> Result<reqwest::Client, JwksError> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .no_proxy()
        // A redirect may not leave https (loopback http sources never redirect in practice).
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() == "https" {
                attempt.follow()
            } else {
                attempt.error("redirect away from https")
            }
        }))
        .build()
        .map_err(JwksError::Client)
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwksError> {
    let fetch_error = |source| JwksError::Fetch {
        url: url.to_owned(),
        source,
    };
    let mut response = client
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(JwksError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(JwksError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    const ISSUER: &str = "https://id.city.example";
    const AUDIENCE: &str = "qrpark";

    // Test-only keys, made with `openssl genpkey` on the development machine.
    const ES256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguQe4RVV9VoLAlj4u
BgdX+zHdw1Ft4nWW0DD7j/MrQXehRANCAASvndDJyV1xLqFij0caHLzyBquwvOeh
rXHil3/9sCqJGAO7CiMQMLTFSClOTUfDWj+5CgYG1ceusePcTdsJVHZn
-----END PRIVATE KEY-----
";
    const ES256_ATTACKER_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgk87LfXmcr3ODNa2S
nzXC6NJhg8DXt8JJuJet5DADZuGhRANCAATtlvuc6DVm4G8ZsCriqK4ENjT5E83I
Pk5XGmTJrTPqaxkI/YDZjAU/XZatBUl5lIgJJpJxREzkJQF54XXRSUrc
-----END PRIVATE KEY-----
";
    const RS256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCIUZ7b/+lJY+U6
P0UXVDX2sqxWiFsLCiLMlBeQesi+peLQyLa0AMEXuRBW0Iz1kNhxU//Mv9Ixo0QR
Vr93e5BaLCDTuigRj3VEetYNMx4EXS21brtKXbijJ+m/0V0chOwMdFGTpzUy50bW
6FEWvkU7rbi93RcRbkWaZHL9/Re22hsFvKMaaJihfddt6edV+U4MXFlm5tnGDMRX
geFdZUPVzHtCvSHOXS77xDzhYgeJ4JJIufua8usUb4jOSRCW+yHaKkIVNOLgJAMl
syd5KiW5fOwsgSLhRamWlUKvpHQ9KLiUl3I0qxYwqHUVeU0puO9NDN3tnkUSN5j+
dF5QrlEPAgMBAAECggEABY0H96lqFHpO4UT7npbn7k3ERW8eq0pptFmWGWSxO/eB
Tu3SvW2ybzGIACD/PG3+LPngrAkQ7sMuiGOMlGRMXSpNg+b2rrsKvr50bOvXSGeK
7vJoCf/a/uR8g4/A8jevbP+85VL6ZZeUA42eOluGcjGsGNR3QKx0L8nwrMsGO4SC
5zUVnJSS2GsarHq9j+s06IkmvzXnTAE7ZQcBEcgrfB/wG6ZQ1SAYe6UP6w/XEVH5
57ny1zEsl6Lc+VFLJdRnk/AGWLxMGEe3xy5f4ouoEiN2xlAEEtFv3myIBZtnlE/r
1sVcaRcZSpWf03c3otVmIV8jzE8C7hkYLMZITv0wMQKBgQC97nXy6YDd2gu21dvw
U7U5TkdfcApv2wqmrOgZkFS+Vs2vWCpj/APmWW4OT4YSl7P6u6wjgj21OGlN8DD4
za06RCugB2AA7AZvHBYLRvRWKIfCsa/rL3Qr6UkEbM0zeThvFdin2NIPhBd8vF1y
1Mxtdlmi+XEFN2ZGllrehQGfewKBgQC3vOnAVs+cXuOZ828rAKhHShE1Ru41Kpb9
aOI6lV8Pmq2OHT8cI/2M1PdiCgxbKG7rrSwJ/2GlUGfDIcstjNk/vjHU0q2ZskNN
7IA6vatsZXNxkzwsGm1GsQhY6nM/AHwzHAQhCNI15qy/9zneWxeEtOAj64ePDIGM
KvtGHea2fQKBgQCE0ycZYcMFY1+d1aGiSGgMU3oGfExQPVcNiQ4oEo+xLPNbFMVQ
dwYjKZeV2ndguUbcqjKQAp01BuZd4wPce7oRbWs01vOEsYsuWO3xpQVq251Vwv3L
87vCmbq+pXg77yJQTW7esvr0buQeD30quTbdtk6pcthfVYbpBm02AL5J0QKBgQCu
+sUt/D6Zb7CXs8LCFE0uHzaGI3fFwDqtOM6B9jDivm7ccbPhi9Dy5vp1LpaX1cjU
v0W6e7C1a/51UeCaD5Hx56KzSLQ1NBRuyHVR+8GeaHtpxUs/wScidIQ7kYORk1e0
oNC52RnAZV9NLhe5T8z1AACZlLuzmrhhEandG6rVTQKBgQCJdVRwl3BkyLwt5oiL
SBn/kdalKwYS+Ey/YXG67G/kcJbGIiu++19tBhbHqyr8gZ2PkewTlGHNry0tMAAi
JFv5qYy3QQlajB6w0KAIawfUTJyqWtPJIgkmlR0u+CTxZqZlsszKpO+pbnm50Ww9
3WMtiKZRzKo+g0zH5AajHykUrg==
-----END PRIVATE KEY-----
";

    /// A signing key and the JWK that publishes its public half.
    struct TestKey {
        kid: &'static str,
        alg: Algorithm,
        encoding: EncodingKey,
        jwk: Value,
    }

    impl TestKey {
        fn ed(kid: &'static str, seed: u8) -> Self {
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

        fn es() -> Self {
            Self::from_pem("es-1", Algorithm::ES256, ES256_PEM)
        }

        fn rs() -> Self {
            Self::from_pem("rs-1", Algorithm::RS256, RS256_PEM)
        }

        fn attacker(kid: &'static str) -> Self {
            Self::from_pem(kid, Algorithm::ES256, ES256_ATTACKER_PEM)
        }

        fn sign(&self, claims: &Value) -> String {
            self.sign_with(self.header(), claims)
        }

        fn header(&self) -> Header {
            Header {
                kid: Some(self.kid.to_owned()),
                ..Header::new(self.alg)
            }
        }

        fn sign_with(&self, header: Header, claims: &Value) -> String {
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    fn jwks(keys: &[&TestKey]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    fn jwk_set(keys: &[&TestKey]) -> JwkSet {
        serde_json::from_value(jwks(keys)).unwrap()
    }

    /// The city's keys in these tests: one of each accepted kind.
    async fn verifier() -> CityVerifier {
        let set = jwk_set(&[&TestKey::ed("ed-1", 1), &TestKey::es(), &TestKey::rs()]);
        CityVerifier::new(JwksSource::Static(set), ISSUER.into(), AUDIENCE.into())
            .await
            .unwrap()
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "driver-42",
            "iat": now(), "nbf": now(), "exp": now() + 600,
        })
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    #[track_caller]
    fn rejected(result: Result<CityIdentity, TokenRejection>) -> TokenRejection {
        match result {
            Ok(identity) => panic!("accepted: {identity:?}"),
            Err(e) => e,
        }
    }

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
    async fn reads_roles_and_audience_lists() {
        let v = verifier().await;
        let c = with(claims(), "roles", json!(["auditor", "driver"]));
        let c = with(c, "aud", json!(["city-portal", AUDIENCE]));
        let identity = v.verify(&TestKey::es().sign(&c)).await.unwrap();
        assert_eq!(identity.roles, ["auditor", "driver"]);
        assert!(identity.is_auditor());
        // Times as fractional NumericDates, and within the leeway, are fine.
        let c = with(claims(), "nbf", json!(now() as f64 + 30.5));
        let c = with(c, "iat", json!(now() + 30));
        v.verify(&TestKey::es().sign(&c)).await.unwrap();
    }

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

    #[tokio::test]
    async fn refuses_wrong_issuer_and_audience() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (
                with(claims(), "iss", json!("https://evil.example")),
                TokenRejection::WrongIssuer("https://evil.example".into()),
            ),
            (
                without(claims(), "iss"),
                TokenRejection::MissingClaim("iss"),
            ),
            (
                with(claims(), "iss", json!([ISSUER])),
                TokenRejection::WrongType("iss"),
            ),
            (
                with(claims(), "aud", json!("someone-else")),
                TokenRejection::WrongAudience,
            ),
            (
                with(claims(), "aud", json!(["a", "b"])),
                TokenRejection::WrongAudience,
            ),
            (
                with(claims(), "aud", json!([AUDIENCE, 7])),
                TokenRejection::WrongType("aud"),
            ),
            (
                without(claims(), "aud"),
                TokenRejection::MissingClaim("aud"),
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(rejected(v.verify(&es.sign(&c)).await), expected, "{c}");
        }
    }

    #[tokio::test]
    async fn refuses_bad_times() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (with(claims(), "exp", json!(now() - 1)), "Expired"),
            (with(claims(), "exp", json!(now())), "Expired"),
            (with(claims(), "nbf", json!(now() + 120)), "NotYetValid"),
            (with(claims(), "iat", json!(now() + 120)), "IssuedInFuture"),
            (
                with(claims(), "exp", json!((now() + 600).to_string())),
                "NotANumber(\"exp\")",
            ),
            (
                with(claims(), "nbf", json!(now().to_string())),
                "NotANumber(\"nbf\")",
            ),
            (
                with(claims(), "iat", json!(now().to_string())),
                "NotANumber(\"iat\")",
            ),
            (with(claims(), "exp", Value::Null), "NotANumber(\"exp\")"),
            (
                with(claims(), "exp", json!(1e300)),
                "DateOutOfRange(\"exp\")",
            ),
            (with(claims(), "nbf", json!(-5)), "DateOutOfRange(\"nbf\")"),
            (without(claims(), "exp"), "MissingClaim(\"exp\")"),
        ];
        for (c, expected) in cases {
            let got = format!("{:?}", rejected(v.verify(&es.sign(&c)).await));
            assert!(got.starts_with(expected), "{c}: {got}");
        }
    }

    #[tokio::test]
    async fn refuses_bad_subjects_and_roles() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (
                without(claims(), "sub"),
                TokenRejection::MissingClaim("sub"),
            ),
            (
                with(claims(), "sub", json!("")),
                TokenRejection::BadSubject("is empty"),
            ),
            (
                with(claims(), "sub", json!("x".repeat(256))),
                TokenRejection::BadSubject("is longer than 255 characters"),
            ),
            (
                with(claims(), "sub", json!("a\nb")),
                TokenRejection::BadSubject("contains control characters"),
            ),
            (
                with(claims(), "sub", json!(42)),
                TokenRejection::WrongType("sub"),
            ),
            (
                with(claims(), "roles", json!("auditor")),
                TokenRejection::BadRoles,
            ),
            (
                with(claims(), "roles", json!(["auditor", 1])),
                TokenRejection::BadRoles,
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(rejected(v.verify(&es.sign(&c)).await), expected, "{c}");
        }
        let longest = with(claims(), "sub", json!("é".repeat(255)));
        v.verify(&es.sign(&longest)).await.unwrap();
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
    async fn serves_repeated_tokens_from_the_cache_and_never_caches_failures() {
        let v = verifier().await;
        let token = TestKey::es().sign(&claims());
        let first = v.verify(&token).await.unwrap();
        let second = v.verify(&token).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(v.signature_checks(), 1);

        let bad = TestKey::attacker("es-1").sign(&claims());
        for _ in 0..2 {
            assert_eq!(rejected(v.verify(&bad).await), TokenRejection::BadSignature);
        }
        assert_eq!(v.signature_checks(), 3);

        // An entry past its expiry is not served.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        v.cache
            .write()
            .unwrap()
            .get_mut(&digest)
            .unwrap()
            .expires_at = Utc::now() - TimeDelta::seconds(1);
        v.verify(&token).await.unwrap();
        assert_eq!(v.signature_checks(), 4);
    }

    #[tokio::test]
    async fn keeps_the_cache_bounded() {
        let v = verifier().await.with_cache_capacity(3);
        let es = TestKey::es();
        for i in 0..10 {
            let c = with(claims(), "sub", json!(format!("driver-{i}")));
            v.verify(&es.sign(&c)).await.unwrap();
            assert!(v.cache.read().unwrap().len() <= 3);
        }
    }

    #[tokio::test]
    async fn binds_each_key_to_one_algorithm_and_ignores_the_rest() {
        let ed = TestKey::ed("ed-1", 1);
        let es = TestKey::es();
        let rs = TestKey::rs();
        let mut declared_rs512 = rs.jwk.clone();
        declared_rs512["alg"] = json!("RS512");
        declared_rs512["kid"] = json!("rs-512");
        let mut es_claiming_rsa = es.jwk.clone();
        es_claiming_rsa["alg"] = json!("RS256");
        es_claiming_rsa["kid"] = json!("es-rsa");
        let mut for_encryption = es.jwk.clone();
        for_encryption["use"] = json!("enc");
        for_encryption["kid"] = json!("es-enc");
        let mut no_kid = ed.jwk.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let small_rsa = json!({"kty": "RSA", "kid": "rs-small", "e": "AQAB",
            "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128])});
        let p384 = json!({"kty": "EC", "crv": "P-384", "kid": "es-384",
            "x": URL_SAFE_NO_PAD.encode([1u8; 48]), "y": URL_SAFE_NO_PAD.encode([2u8; 48])});
        let secret = json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0"});
        let odd = json!({"kty": "XYZ", "kid": "odd"});
        let unusable = vec![
            declared_rs512,
            es_claiming_rsa,
            for_encryption,
            no_kid,
            small_rsa,
            p384,
            secret,
            odd,
        ];

        let ring = |keys: Vec<Value>| async move {
            let path =
                std::env::temp_dir().join(format!("qrpark-jwks-{}.json", uuid::Uuid::now_v7()));
            std::fs::write(&path, serde_json::to_vec(&json!({ "keys": keys })).unwrap()).unwrap();
            let v = CityVerifier::new(
                JwksSource::File(path.clone()),
                ISSUER.into(),
                AUDIENCE.into(),
            )
            .await;
            std::fs::remove_file(&path).unwrap();
            v
        };
        assert!(matches!(
            ring(unusable.clone()).await,
            Err(JwksError::NoUsableKey)
        ));

        let mut keys = unusable;
        let mut declared_es256 = es.jwk.clone();
        declared_es256["alg"] = json!("ES256");
        keys.push(declared_es256);
        let v = ring(keys).await.unwrap();
        let mut kids: Vec<String> = v.key_ring().keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["es-1"]);
        v.verify(&es.sign(&claims())).await.unwrap();
    }

    #[tokio::test]
    async fn refuses_bad_sources_and_settings() {
        let missing = JwksSource::File("/nonexistent/qrpark/jwks.json".into());
        assert!(matches!(
            CityVerifier::new(missing, ISSUER.into(), AUDIENCE.into()).await,
            Err(JwksError::File { .. })
        ));
        let set = jwk_set(&[&TestKey::es()]);
        assert!(matches!(
            CityVerifier::new(
                JwksSource::Static(set.clone()),
                String::new(),
                AUDIENCE.into()
            )
            .await,
            Err(JwksError::EmptySetting(_))
        ));
        assert!(matches!(
            CityVerifier::new(
                JwksSource::Static(JwkSet::default()),
                ISSUER.into(),
                AUDIENCE.into()
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

    #[test]
    fn reads_the_setting() {
        for url in [
            "https://id.city.example/.well-known/jwks.json",
            "http://127.0.0.1:8081/jwks.json",
            "http://localhost/jwks.json",
            "http://[::1]:9000/jwks.json",
        ] {
            assert!(
                matches!(JwksSource::from_setting(url), Ok(JwksSource::Url(_))),
                "{url}"
            );
        }
        for refused in [
            "http://id.city.example/jwks.json",
            "http://10.0.0.1/jwks",
            "ftp://x/y",
            "",
            "  ",
            "https://",
        ] {
            assert!(JwksSource::from_setting(refused).is_err(), "{refused}");
        }
        assert!(matches!(
            JwksSource::from_setting("/etc/qrpark/city-jwks.json"),
            Ok(JwksSource::File(p)) if p == std::path::Path::new("/etc/qrpark/city-jwks.json")
        ));
        assert!(matches!(
            JwksSource::from_setting("jwks.json"),
            Ok(JwksSource::File(_))
        ));
    }

    /// A JWKS endpoint on 127.0.0.1 that counts its requests.
    struct JwksServer {
        url: String,
        hits: Arc<AtomicUsize>,
        body: Arc<std::sync::Mutex<(u16, String)>>,
    }

    impl JwksServer {
        async fn start(body: Value) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let hits = Arc::new(AtomicUsize::new(0));
            let body = Arc::new(std::sync::Mutex::new((200, body.to_string())));
            let handler = {
                let (hits, body) = (hits.clone(), body.clone());
                move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = body.lock().unwrap().clone();
                    async move {
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            [("content-type", "application/json")],
                            body,
                        )
                    }
                }
            };
            let app = axum::Router::new().route("/jwks.json", axum::routing::get(handler));
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self {
                url: format!("http://127.0.0.1:{port}/jwks.json"),
                hits,
                body,
            }
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn publish(&self, status: u16, body: String) {
            *self.body.lock().unwrap() = (status, body);
        }

        async fn verifier(&self) -> CityVerifier {
            let source = JwksSource::from_setting(&self.url).unwrap();
            CityVerifier::new(source, ISSUER.into(), AUDIENCE.into())
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn url_source_refetches_an_unknown_kid_at_most_once_a_minute() {
        let (es, ed) = (TestKey::es(), TestKey::ed("ed-2", 2));
        let server = JwksServer::start(jwks(&[&es])).await;
        let v = server.verifier().await;
        assert_eq!(server.hits(), 1);
        v.verify(&es.sign(&claims())).await.unwrap();
        assert_eq!(server.hits(), 1, "a known kid costs no fetch");

        let token = ed.sign(&claims());
        assert_eq!(
            rejected(v.verify(&token).await),
            TokenRejection::UnknownKid("ed-2".into())
        );
        assert_eq!(server.hits(), 2, "the first unknown kid refetches");
        assert!(matches!(
            rejected(v.verify(&token).await),
            TokenRejection::UnknownKid(_)
        ));
        assert_eq!(server.hits(), 2, "not again within the minute");

        // The city publishes the key now: still within the minute, so still refused.
        server.publish(200, jwks(&[&es, &ed]).to_string());
        assert!(matches!(
            rejected(v.verify(&token).await),
            TokenRejection::UnknownKid(_)
        ));
        assert_eq!(server.hits(), 2);

        // Once the interval has passed (shortened here), the next unknown kid refetches.
        let v = v.with_refetch_interval(Duration::ZERO);
        assert_eq!(v.verify(&token).await.unwrap().subject, "driver-42");
        assert_eq!(server.hits(), 3);
        assert_eq!(v.jwks_fetches(), 3);
    }

    #[tokio::test]
    async fn url_source_picks_up_a_rotated_key_and_drops_a_withdrawn_one() {
        let (es, ed) = (TestKey::es(), TestKey::ed("ed-2", 2));
        let server = JwksServer::start(jwks(&[&es])).await;
        let v = server
            .verifier()
            .await
            .with_refetch_interval(Duration::ZERO);
        let old = es.sign(&claims());
        v.verify(&old).await.unwrap();

        // Rotation: the new key replaces the old one.
        server.publish(200, jwks(&[&ed]).to_string());
        v.verify(&ed.sign(&claims())).await.unwrap();
        assert_eq!(server.hits(), 2);
        // The old key's tokens stop working at once, cache or not.
        assert_eq!(
            rejected(v.verify(&old).await),
            TokenRejection::UnknownKid("es-1".into())
        );

        // A failing or empty JWKS keeps the keys we have.
        server.publish(500, String::new());
        assert!(matches!(
            rejected(v.verify(&old).await),
            TokenRejection::UnknownKid(_)
        ));
        server.publish(200, json!({"keys": []}).to_string());
        assert!(matches!(
            rejected(v.verify(&old).await),
            TokenRejection::UnknownKid(_)
        ));
        v.verify(&ed.sign(&with(claims(), "sub", json!("driver-7"))))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn concurrent_unknown_kids_share_one_refetch() {
        let es = TestKey::es();
        let server = JwksServer::start(jwks(&[&es])).await;
        let v = Arc::new(server.verifier().await);
        let stranger = TestKey::attacker("es-9");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let v = v.clone();
                let token = stranger.sign(&with(claims(), "sub", json!(format!("d{i}"))));
                tokio::spawn(async move { v.verify(&token).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap(),
                Err(TokenRejection::UnknownKid(_))
            ));
        }
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn never_fetches_what_a_token_points_to() {
        let es = TestKey::es();
        let city = JwksServer::start(jwks(&[&es])).await;
        let attacker = TestKey::attacker("attacker-1");
        let evil = JwksServer::start(jwks(&[&attacker])).await;
        let v = city.verifier().await;
        let mut header = attacker.header();
        header.jku = Some(evil.url.clone());
        header.x5u = Some(evil.url.clone());
        let token = attacker.sign_with(header, &claims());
        assert!(matches!(
            rejected(v.verify(&token).await),
            TokenRejection::UnknownKid(_)
        ));
        assert_eq!(evil.hits(), 0);
    }

    #[tokio::test]
    async fn url_source_refuses_failures_and_oversized_documents() {
        let server = JwksServer::start(json!({})).await;
        let new = || {
            CityVerifier::new(
                JwksSource::Url(server.url.clone()),
                ISSUER.into(),
                AUDIENCE.into(),
            )
        };
        assert!(matches!(new().await, Err(JwksError::Invalid(_))));
        server.publish(404, "{}".into());
        assert!(matches!(
            new().await,
            Err(JwksError::Status { status: 404, .. })
        ));
        server.publish(
            200,
            format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(MAX_JWKS_BYTES)),
        );
        assert!(matches!(new().await, Err(JwksError::TooLarge)));
    }
}
