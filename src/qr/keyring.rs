//! The signing keys, loaded from the database and kept fresh, so that every process on one
//! database signs with the newest key and verifies with every key not yet retired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::qr_token::{self, QrClaims, QrSigningKey, QrTokenError};
use crate::store::{Db, StoreError, StoreResult, signing_keys};

/// How long a process signs with the key it loaded before looking for a newer one.
const REFRESH_AFTER: Duration = Duration::from_secs(60);
/// An unknown `kid` triggers a reload at most this often (a forged kid costs no query).
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(5);

/// The keys as last loaded.
struct Loaded {
    signing: QrSigningKey,
    public: HashMap<String, [u8; 32]>,
    loaded_at: Instant,
}

/// Signs and verifies QR tokens with the keys stored in the database.
pub struct KeyRing {
    db: Db,
    loaded: RwLock<Arc<Loaded>>,
}

impl KeyRing {
    /// Loads the keys, creating the first one if the database has none.
    pub async fn load(db: &Db, now: DateTime<Utc>) -> StoreResult<Self> {
        let loaded = read_keys(db, now).await?;
        Ok(Self {
            db: db.clone(),
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the keys again now (after `qrpark keys rotate|retire` in another process).
    pub async fn refresh(&self) -> StoreResult<()> {
        self.reload().await.map(|_| ())
    }

    async fn reload(&self) -> StoreResult<Arc<Loaded>> {
        let fresh = Arc::new(read_keys(&self.db, Utc::now()).await?);
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    /// The key new codes are signed with (the newest active key).
    pub async fn signing_key(&self) -> StoreResult<QrSigningKey> {
        let mut loaded = self.snapshot();
        if loaded.loaded_at.elapsed() > REFRESH_AFTER {
            loaded = self.reload().await?;
        }
        Ok(loaded.signing.clone())
    }

    /// Verifies a token against every active key, reloading once if it names a key this
    /// process has not seen (another process may have rotated).
    pub async fn verify(&self, token: &str) -> StoreResult<Result<QrClaims, QrTokenError>> {
        let mut loaded = self.snapshot();
        if let Ok(header) = jsonwebtoken::decode_header(token)
            && let Some(kid) = header.kid
            && !loaded.public.contains_key(&kid)
            && loaded.loaded_at.elapsed() > UNKNOWN_KID_RELOAD
        {
            loaded = self.reload().await?;
        }
        Ok(qr_token::verify(token, |kid| {
            loaded.public.get(kid).copied()
        }))
    }

    /// The JWKS document: every active public key.
    pub async fn jwks(&self) -> StoreResult<serde_json::Value> {
        let keys = signing_keys::active(&self.db).await?;
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .filter_map(|k| {
                let public: [u8; 32] = k.public_key.as_slice().try_into().ok()?;
                Some(qr_token::jwk(&k.kid, &public))
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

/// Makes a new signing key numbered after the newest; the next reload of every process
/// signs with it, and codes signed by older keys keep verifying until those are retired.
pub async fn rotate(db: &Db, now: DateTime<Utc>) -> StoreResult<String> {
    signing_keys::add(db, new_key_material, now).await
}

/// A new key's seed and public key, the seed from the operating system's random source.
fn new_key_material(kid: &str) -> ([u8; 32], [u8; 32]) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random source is available");
    let key = QrSigningKey::from_seed(kid, &seed);
    (key.seed(), key.public_key())
}

async fn read_keys(db: &Db, now: DateTime<Utc>) -> StoreResult<Loaded> {
    let mut active = signing_keys::active(db).await?;
    if active.is_empty() {
        // First start: make k1. Several processes may race here; the loser's insert is
        // refused by the primary key and it simply reads the winner's key.
        match signing_keys::add(db, new_key_material, now).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(StoreError::Database(e))
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) => {}
            Err(e) => return Err(e),
        }
        active = signing_keys::active(db).await?;
    }
    let mut public = HashMap::new();
    let mut signing = None;
    for key in &active {
        let (Ok(seed), Ok(pk)) = (
            <[u8; 32]>::try_from(key.private_seed.as_slice()),
            <[u8; 32]>::try_from(key.public_key.as_slice()),
        ) else {
            continue;
        };
        public.insert(key.kid.clone(), pk);
        signing = Some(QrSigningKey::from_seed(&key.kid, &seed));
    }
    let signing = signing.ok_or_else(|| {
        StoreError::Database(sqlx::Error::Protocol(
            "no usable QR signing key in the database".into(),
        ))
    })?;
    Ok(Loaded {
        signing,
        public,
        loaded_at: Instant::now(),
    })
}
