//! The city's keys in memory, and when to read them again:
//!
//! - on a schedule, so that a key the city withdraws stops verifying here: a URL source at
//!   least every [`MAX_KEYS_AGE`] (sooner when its `Cache-Control: max-age` says so, but
//!   never more often than every [`MIN_KEYS_AGE`]); a file source is looked at every
//!   [`FILE_CHECK_INTERVAL`] and read again when its modification time or length changed
//!   (and every [`MAX_KEYS_AGE`] regardless). The schedule runs on the app's clock; the
//!   caller that finds the keys due reads them, the others go on with the keys held.
//! - a URL source also when a token names a `kid` we do not know (the city rotated its
//!   keys), at most once per refetch interval across all callers, so a stream of forged
//!   kids cannot turn us into a request amplifier against the city.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use super::jwks::{self, BoundKey, JwksError, KeyMap};
use super::{JwksSource, TokenRejection, shorten};

/// Shortest time between two refetches of a URL JWKS for an unknown `kid`.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Longest time the city's keys are held without reading the JWKS again.
pub const MAX_KEYS_AGE: Duration = Duration::from_secs(15 * 60);
/// Shortest time between two scheduled reads of a URL JWKS, whatever its `Cache-Control`.
pub const MIN_KEYS_AGE: Duration = Duration::from_secs(60);
/// How often a JWKS file is looked at (its modification time and length) for a change.
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// When the keys are next due to be read, on the app's clock.
struct Schedule {
    /// The next scheduled read of the source.
    read_at: DateTime<Utc>,
    /// The next look at a file source's modification time and length.
    check_at: DateTime<Utc>,
    /// A file source's modification time and length when last read.
    stamp: Option<(SystemTime, u64)>,
}

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
    schedule: tokio::sync::Mutex<Schedule>,
}

impl CityKeys {
    /// Reads the source once, at `now` on the app's clock; refuses a JWKS with no usable key.
    pub(super) async fn load(source: JwksSource, now: DateTime<Utc>) -> Result<Self, JwksError> {
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
            schedule: tokio::sync::Mutex::new(Schedule {
                read_at: now,
                check_at: now,
                stamp: None,
            }),
        };
        let stamp = keys.file_stamp();
        let (map, max_age) = keys.read().await?;
        *keys.schedule.lock().await = Schedule {
            read_at: now + keep_for(max_age),
            check_at: now + chrono_of(FILE_CHECK_INTERVAL),
            stamp,
        };
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
            Ok((map, _)) => {
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

    /// Reads the source again if the schedule says so (see the module documentation);
    /// `on_change` runs when the keys read differ from those held. A read that fails keeps
    /// the keys held and is tried again after [`MIN_KEYS_AGE`].
    pub(super) async fn refresh_if_due(&self, now: DateTime<Utc>, on_change: impl FnOnce()) {
        if matches!(self.source, JwksSource::Static(_)) {
            return;
        }
        // Someone is already reading: go on with the keys held.
        let Ok(mut schedule) = self.schedule.try_lock() else {
            return;
        };
        let file = matches!(self.source, JwksSource::File(_));
        let due = now >= schedule.read_at;
        let stamp = if file && (due || now >= schedule.check_at) {
            schedule.check_at = now + chrono_of(FILE_CHECK_INTERVAL);
            let stamp = self.file_stamp();
            if !due && stamp == schedule.stamp {
                return;
            }
            stamp
        } else if due {
            None
        } else {
            return;
        };
        match self.read().await {
            Ok((map, max_age)) => {
                schedule.read_at = now + keep_for(max_age);
                schedule.stamp = stamp;
                // This read counts as the latest refetch: a token naming a kid it did not
                // bring does not fetch again at once.
                if let Ok(mut last_refetch) = self.refetch_gate.try_lock() {
                    *last_refetch = Some(Instant::now());
                }
                if self.replace(map) {
                    on_change();
                }
            }
            Err(e) => {
                schedule.read_at = now + chrono_of(MIN_KEYS_AGE);
                tracing::warn!(
                    source = %self.label(),
                    error = %e,
                    "reading the city JWKS again failed; keeping the keys we have"
                );
            }
        }
    }

    /// A file source's modification time and length, to notice a change cheaply.
    fn file_stamp(&self) -> Option<(SystemTime, u64)> {
        let JwksSource::File(path) = &self.source else {
            return None;
        };
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
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

    async fn read(&self) -> Result<(KeyMap, Option<Duration>), JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        jwks::read(&self.source, self.http.as_ref()).await
    }
}

/// How long keys read with this `max-age` are held: within [`MIN_KEYS_AGE`] and
/// [`MAX_KEYS_AGE`], the longest when the source says nothing.
fn keep_for(max_age: Option<Duration>) -> chrono::TimeDelta {
    chrono_of(
        max_age
            .unwrap_or(MAX_KEYS_AGE)
            .clamp(MIN_KEYS_AGE, MAX_KEYS_AGE),
    )
}

fn chrono_of(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).expect("minutes fit a TimeDelta")
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

    /// Claims valid for a day: these tests move the clock by many minutes.
    fn long_lived() -> serde_json::Value {
        with(claims(), "exp", json!(now() + 86_400))
    }

    #[tokio::test]
    async fn url_source_is_read_again_on_schedule_within_the_bounds() {
        let (es, ed) = (TestKey::es(), TestKey::ed("ed-2", 2));
        let server = JwksServer::start(jwks(&[&es])).await;
        let clock = clock();
        let v = server.verifier_on(clock.clone()).await;
        let old = es.sign(&long_lived());
        v.verify(&old).await.unwrap();
        assert_eq!(server.hits(), 1);

        // The city withdraws its key and says nothing about caching: kept 15 minutes.
        server.publish(200, jwks(&[&ed]).to_string());
        clock.advance(chrono::TimeDelta::minutes(14));
        v.verify(&old).await.unwrap();
        assert_eq!(server.hits(), 1, "not yet due");
        clock.advance(chrono::TimeDelta::minutes(1));
        assert_eq!(
            rejected(v.verify(&old).await),
            TokenRejection::UnknownKid("es-1".into()),
            "the withdrawn key stops verifying, cached token or not"
        );
        assert_eq!(server.hits(), 2);
        v.verify(&ed.sign(&long_lived())).await.unwrap();

        // `max-age` is honoured within [1 min, 15 min].
        for (header, due) in [
            ("max-age=120", 120),
            ("public, max-age=5", 60),
            ("max-age=86400", 900),
            ("no-store", 60),
        ] {
            server.cache_control(Some(header));
            // Due now (the last read's age has passed): this read learns the header.
            clock.advance(chrono::TimeDelta::minutes(15));
            let before = server.hits();
            v.verify(&ed.sign(&long_lived())).await.unwrap();
            assert_eq!(server.hits(), before + 1, "{header}");
            clock.advance(chrono::TimeDelta::seconds(due - 1));
            v.verify(&ed.sign(&long_lived())).await.unwrap();
            assert_eq!(server.hits(), before + 1, "{header}: read too early");
            clock.advance(chrono::TimeDelta::seconds(1));
            v.verify(&ed.sign(&long_lived())).await.unwrap();
            assert_eq!(server.hits(), before + 2, "{header}: not read when due");
        }

        // A failing read keeps the keys and is tried again a minute later.
        server.publish(500, String::new());
        clock.advance(chrono::TimeDelta::minutes(15));
        v.verify(&ed.sign(&long_lived())).await.unwrap();
        let failed = server.hits();
        clock.advance(chrono::TimeDelta::seconds(59));
        v.verify(&ed.sign(&long_lived())).await.unwrap();
        assert_eq!(server.hits(), failed);
        clock.advance(chrono::TimeDelta::seconds(1));
        v.verify(&ed.sign(&long_lived())).await.unwrap();
        assert_eq!(server.hits(), failed + 1);
    }

    #[tokio::test]
    async fn a_file_source_is_read_again_when_it_changes() {
        let (es, ed) = (TestKey::es(), TestKey::ed("ed-2", 2));
        let dir = std::env::temp_dir().join(format!("qrpark-jwks-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks(&[&es]).to_string()).unwrap();
        let clock = clock();
        let v = super::super::CityVerifier::new(
            JwksSource::File(path.clone()),
            ISSUER.into(),
            AUDIENCE.into(),
            clock.clone(),
        )
        .await
        .unwrap();
        let old = es.sign(&long_lived());
        v.verify(&old).await.unwrap();
        let fetches = v.jwks_fetches();

        // Unchanged, the file is looked at but not read.
        clock.advance(chrono::TimeDelta::seconds(5));
        v.verify(&old).await.unwrap();
        assert_eq!(v.jwks_fetches(), fetches);

        // The city rotates: the file is rewritten.
        std::fs::write(&path, jwks(&[&ed]).to_string()).unwrap();
        v.verify(&old).await.unwrap();
        assert_eq!(
            v.jwks_fetches(),
            fetches,
            "looked at every 5 s, not on every token"
        );
        clock.advance(chrono_of(FILE_CHECK_INTERVAL));
        assert_eq!(
            rejected(v.verify(&old).await),
            TokenRejection::UnknownKid("es-1".into())
        );
        assert_eq!(v.jwks_fetches(), fetches + 1);
        v.verify(&ed.sign(&long_lived())).await.unwrap();

        // A file half written (not a JWKS) keeps the keys held.
        std::fs::write(&path, "{\"keys\": [").unwrap();
        clock.advance(chrono::TimeDelta::seconds(5));
        v.verify(&ed.sign(&long_lived())).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
