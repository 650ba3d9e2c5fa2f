//! The city's keys in memory, and when to read them again: a URL source is refetched when a
//! token names a `kid` we do not know (the city rotated its keys), at most once per refetch
//! interval across all callers, so a stream of forged kids cannot turn us into a request
//! amplifier against the city.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::jwks::{self, BoundKey, JwksError, KeyMap};
use super::{JwksSource, TokenRejection, shorten};

/// Shortest time between two refetches of a URL JWKS for an unknown `kid`.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The keys last read from the source, and what is needed to read them again.
pub(super) struct CityKeys {
    source: JwksSource,
    http: Option<reqwest::Client>,
    current: RwLock<Arc<KeyMap>>,
    /// When the JWKS was last refetched for an unknown kid; held across the fetch so that
    /// concurrent callers wait for one fetch instead of starting their own. A monotonic
    /// instant, not the app's clock: this limits our requests to the city in real time.
    refetch_gate: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
    fetches: AtomicU64,
}

impl CityKeys {
    /// Reads the source once; refuses a JWKS with no usable key.
    pub(super) async fn load(source: JwksSource) -> Result<Self, JwksError> {
        let http = match &source {
            JwksSource::Url(_) => Some(jwks::http_client()?),
            _ => None,
        };
        let keys = Self {
            source,
            http,
            current: RwLock::new(Arc::new(KeyMap::new())),
            refetch_gate: tokio::sync::Mutex::new(None),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            fetches: AtomicU64::new(0),
        };
        let map = keys.read().await?;
        tracing::info!(
            source = %keys.label(),
            kids = ?map.keys().collect::<Vec<_>>(),
            "city identity keys loaded"
        );
        *keys.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        Ok(keys)
    }

    /// Sets the shortest time between two refetches for an unknown `kid`.
    pub(super) fn set_refetch_interval(&mut self, interval: Duration) {
        self.refetch_interval = interval;
    }

    /// How many times the JWKS was read, the initial load included.
    pub(super) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The kids of the keys held now.
    pub(super) fn kids(&self) -> Vec<String> {
        self.current().keys().cloned().collect()
    }

    /// Where the keys come from, for the log.
    pub(super) fn label(&self) -> String {
        self.source.label()
    }

    /// The key named `kid`; for a URL source, a JWKS refetch (rate-limited) when unknown.
    /// `on_change` runs when a refetch brought keys other than those held.
    pub(super) async fn key_for(
        &self,
        kid: &str,
        on_change: impl FnOnce(),
    ) -> Result<Arc<BoundKey>, TokenRejection> {
        if let Some(key) = self.current().get(kid) {
            return Ok(key.clone());
        }
        let unknown = || TokenRejection::UnknownKid(shorten(kid));
        if !matches!(self.source, JwksSource::Url(_)) {
            return Err(unknown());
        }
        let mut last_refetch = self.refetch_gate.lock().await;
        // Someone else may have refetched while we waited for the gate.
        if let Some(key) = self.current().get(kid) {
            return Ok(key.clone());
        }
        if let Some(at) = *last_refetch
            && at.elapsed() < self.refetch_interval
        {
            return Err(unknown());
        }
        *last_refetch = Some(Instant::now());
        match self.read().await {
            Ok(map) => {
                if self.replace(map) {
                    on_change();
                }
            }
            Err(e) => tracing::warn!(
                source = %self.label(),
                error = %e,
                "refetching the city JWKS failed; keeping the keys we have"
            ),
        }
        drop(last_refetch);
        self.current().get(kid).cloned().ok_or_else(unknown)
    }

    fn current(&self) -> Arc<KeyMap> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Holds `map` from now on; says whether it differs from the keys held before.
    fn replace(&self, map: KeyMap) -> bool {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let same = current.len() == map.len()
            && map.iter().all(|(kid, key)| {
                current
                    .get(kid)
                    .is_some_and(|old| old.fingerprint == key.fingerprint)
            });
        if same {
            return false;
        }
        tracing::info!(
            source = %self.label(),
            kids = ?map.keys().collect::<Vec<_>>(),
            "city identity keys changed"
        );
        *current = Arc::new(map);
        true
    }

    async fn read(&self) -> Result<KeyMap, JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        jwks::read(&self.source, self.http.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::jwks_server::JwksServer;
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
}
