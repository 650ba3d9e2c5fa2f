//! Verified tokens, kept under their SHA-256 until their `exp`: a driver's repeated requests
//! cost a hash and a map lookup instead of a signature check. Only successes come here. When
//! full, the least recently used token goes: the drivers active right now stay cached however
//! many tokens an attacker has signed for.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::CityIdentity;

/// Most verified tokens kept; when full, the least recently used goes.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// The key a token is cached under: its SHA-256, so the token itself is never kept.
pub(super) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The identities proven by recently verified tokens.
pub(super) struct TokenCache {
    entries: Mutex<LruCache<[u8; 32], CityIdentity>>,
}

fn bound(capacity: usize) -> NonZeroUsize {
    NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(bound(capacity))),
        }
    }

    /// Changes how many tokens are kept, dropping the least recently used beyond it.
    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.lock().resize(bound(capacity));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], CityIdentity>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The identity a token proved, unless its `exp` has come by `now`; a hit makes the
    /// token the most recently used.
    pub(super) fn get(&self, digest: &[u8; 32], now: DateTime<Utc>) -> Option<CityIdentity> {
        let mut entries = self.lock();
        match entries.get(digest) {
            Some(identity) if identity.expires_at > now => Some(identity.clone()),
            Some(_) => {
                entries.pop(digest);
                None
            }
            None => None,
        }
    }

    /// Keeps a verified token's identity until its `exp`, evicting the least recently used
    /// token when full.
    pub(super) fn remember(&self, digest: [u8; 32], identity: &CityIdentity) {
        self.lock().put(digest, identity.clone());
    }

    /// Forgets every token.
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// How many tokens are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::TokenRejection;
    use super::super::test_support::*;
    use chrono::TimeDelta;
    use serde_json::json;

    #[tokio::test]
    async fn serves_repeated_tokens_from_the_cache_and_never_caches_failures() {
        let clock = clock();
        let v = verifier_on(clock.clone()).await;
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

        // Up to the last second before its expiry the entry is served...
        clock.advance(TimeDelta::seconds(599));
        assert_eq!(v.verify(&token).await.unwrap(), first);
        assert_eq!(v.signature_checks(), 3);
        // ...and from its expiry on it is not: the token is checked again, and refused.
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(
            rejected(v.verify(&token).await),
            TokenRejection::Expired(first.expires_at)
        );
        assert_eq!(v.signature_checks(), 4);
    }

    #[tokio::test]
    async fn keeps_the_cache_bounded() {
        let v = verifier().await.with_cache_capacity(3);
        let es = TestKey::es();
        for i in 0..10 {
            let c = with(claims(), "sub", json!(format!("driver-{i}")));
            v.verify(&es.sign(&c)).await.unwrap();
            assert!(v.cache.len() <= 3);
        }
        assert_eq!(v.cache.len(), 3);
    }

    #[tokio::test]
    async fn evicts_the_least_recently_used_token_when_full() {
        let v = verifier().await.with_cache_capacity(3);
        let es = TestKey::es();
        let token = |i: usize| es.sign(&with(claims(), "sub", json!(format!("driver-{i}"))));
        let (a, b, c, d) = (token(1), token(2), token(3), token(4));
        for t in [&a, &b, &c] {
            v.verify(t).await.unwrap();
        }
        assert_eq!(v.signature_checks(), 3);
        // `a` is used again, so `b` is now the least recently used...
        v.verify(&a).await.unwrap();
        assert_eq!(v.signature_checks(), 3);
        // ...and a fourth token pushes out `b` alone, not the whole cache.
        v.verify(&d).await.unwrap();
        assert_eq!(v.signature_checks(), 4);
        for t in [&a, &c, &d] {
            v.verify(t).await.unwrap();
        }
        assert_eq!(v.signature_checks(), 4, "a, c and d are still cached");
        v.verify(&b).await.unwrap();
        assert_eq!(
            v.signature_checks(),
            5,
            "b was evicted and is checked again"
        );
    }
}
