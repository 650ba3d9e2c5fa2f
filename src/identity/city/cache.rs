//! Verified tokens, kept under their SHA-256 until their `exp`: a driver's repeated requests
//! cost a hash and a map lookup instead of a signature check. Only successes come here.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::CityIdentity;

/// Most verified tokens kept; when full, expired entries go first, then everything.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// The key a token is cached under: its SHA-256, so the token itself is never kept.
pub(super) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The identities proven by recently verified tokens.
pub(super) struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], CityIdentity>>,
    capacity: usize,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Changes how many tokens are kept from the next insertion on.
    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    /// The identity a token proved, unless its `exp` has come by `now`.
    pub(super) fn get(&self, digest: &[u8; 32], now: DateTime<Utc>) -> Option<CityIdentity> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(digest)
            .filter(|identity| identity.expires_at > now)
            .cloned()
    }

    /// Keeps a verified token's identity until its `exp`.
    pub(super) fn remember(&self, digest: [u8; 32], identity: &CityIdentity, now: DateTime<Utc>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, cached| cached.expires_at > now);
            if entries.len() >= self.capacity {
                // Still full of live tokens: start over rather than pay for an LRU on every
                // hit. The cost is one signature check per token on its next request.
                entries.clear();
            }
        }
        entries.insert(digest, identity.clone());
    }

    /// Forgets every token.
    pub(super) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many tokens are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
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
    }
}
