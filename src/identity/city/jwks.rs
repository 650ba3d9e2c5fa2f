//! Reading the city's JWKS: from a file, over HTTP or from the program, size-limited, and
//! binding each usable key to the one algorithm it may verify.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::{JwksSource, shorten};

/// Largest JWKS document we read, from a file or over HTTP.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Time allowed for fetching a JWKS over HTTP, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The smallest RSA modulus accepted in the JWKS, in bits.
const MIN_RSA_BITS: usize = 2048;

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

/// A key from the JWKS, bound to the one algorithm it may verify.
pub(super) struct BoundKey {
    pub(super) algorithm: Algorithm,
    pub(super) key: DecodingKey,
    /// The key's public material and algorithm, to notice a changed JWKS.
    pub(super) fingerprint: String,
}

/// The usable keys of a JWKS, by `kid`.
pub(super) type KeyMap = HashMap<String, Arc<BoundKey>>;

/// Reads the JWKS from the source and keeps its usable keys, with how long a URL source
/// says they may be kept (`Cache-Control: max-age`); `http` is the client for a URL source.
pub(super) async fn read(
    source: &JwksSource,
    http: Option<&reqwest::Client>,
) -> Result<(KeyMap, Option<Duration>), JwksError> {
    let mut max_age = None;
    let jwks: Vec<Value> = match source {
        JwksSource::File(path) => parse_jwks(&read_file(path)?)?,
        JwksSource::Url(url) => {
            let client = http.expect("a URL source has a client");
            let (body, age) = fetch(client, url).await?;
            max_age = age;
            parse_jwks(&body)?
        }
        JwksSource::Static(set) => set
            .keys
            .iter()
            .map(|jwk| serde_json::to_value(jwk).map_err(|e| JwksError::Invalid(e.to_string())))
            .collect::<Result<_, _>>()?,
    };
    let mut keys = KeyMap::new();
    for raw in jwks {
        let kid = shorten(raw.get("kid").and_then(Value::as_str).unwrap_or(""));
        match bind_key(raw) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(key));
                }
                Entry::Occupied(slot) => tracing::warn!(
                    kid = %shorten(slot.key()),
                    "JWKS names this kid twice; keeping the first"
                ),
            },
            Err(reason) => tracing::info!(kid = %kid, reason, "JWKS key ignored"),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok((keys, max_age))
}

/// How long a `Cache-Control` header lets the document be kept: its `max-age`, zero for
/// `no-cache` or `no-store`, `None` when it says neither (bounds are the caller's).
pub(super) fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
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

fn read_file(path: &Path) -> Result<Vec<u8>, JwksError> {
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

/// The client that fetches a URL source: bounded in time, no proxy, https redirects only.
pub(super) fn http_client() -> Result<reqwest::Client, JwksError> {
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

async fn fetch(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Vec<u8>, Option<Duration>), JwksError> {
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
    let age = response
        .headers()
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(max_age)
        .min();
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
    Ok((body, age))
}

#[cfg(test)]
mod tests {
    use super::super::CityVerifier;
    use super::super::test_support::jwks_server::JwksServer;
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
                clock(),
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
        let mut kids = v.keys.kids();
        kids.sort();
        assert_eq!(kids, ["es-1"]);
        v.verify(&es.sign(&claims())).await.unwrap();
    }

    #[test]
    fn cache_control_gives_the_age() {
        assert_eq!(max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            max_age("public, MAX-AGE=60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("max-age=60, no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[tokio::test]
    async fn url_source_refuses_failures_and_oversized_documents() {
        let server = JwksServer::start(json!({})).await;
        let new = || {
            CityVerifier::new(
                JwksSource::Url(server.url.clone()),
                ISSUER.into(),
                AUDIENCE.into(),
                clock(),
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
