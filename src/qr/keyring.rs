//! The signing keys, loaded from the database and kept fresh, so that every process on one
//! database signs with the newest key of each purpose and verifies only with keys not yet
//! retired.
//!
//! Freshness is measured on the app's clock (the caller passes `now`): every process reads
//! the keys again at most [`RELOAD_AFTER`] after it last did, whether it signs or verifies,
//! so a key retired by `qrpark keys retire` in another process stops verifying everywhere
//! within that bound (issue 16; the spec allows 60 s).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::key_purpose::KeyPurpose;
use crate::domain::qr_token::{self, QrClaims, QrSigningKey, QrTokenError};
use crate::secrets::{self, Kek};
use crate::store::{Db, StoreError, StoreResult, signing_keys};

/// How long a process trusts the keys it read before reading them again.
pub const RELOAD_AFTER: TimeDelta = TimeDelta::seconds(30);
/// [`RELOAD_AFTER`] in real time: keys read at start-up and first used later than this are
/// read again rather than trusted (a process may wait long for its first request).
const RELOAD_AFTER_REAL: std::time::Duration = std::time::Duration::from_secs(30);
/// An unknown `kid` triggers a reload at most this often (a forged kid costs no query).
const UNKNOWN_KID_RELOAD: TimeDelta = TimeDelta::seconds(5);

/// Tokens whose signature this process has checked, at most (least recently used go).
const VERIFIED_CAPACITY: usize = 50_000;

/// A public key and what it may verify.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Published {
    purpose: KeyPurpose,
    key: [u8; 32],
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The keys as last loaded.
struct Loaded {
    signing: HashMap<KeyPurpose, QrSigningKey>,
    public: HashMap<String, Published>,
    /// When they were read, on the app's clock; `None` until the first caller passes its
    /// clock (the ring is loaded at start-up, before the app's clock is at hand).
    loaded_at: Option<DateTime<Utc>>,
    /// When they were read, in real time: how old unstamped keys are.
    read_at: Instant,
}

impl Loaded {
    fn is_fresh(&self, now: DateTime<Utc>, within: TimeDelta) -> bool {
        // Unstamped keys are the caller's to judge; a clock that moved backwards counts as
        // stale.
        self.loaded_at
            .is_some_and(|at| at <= now && now - at < within)
    }
}

/// Signs and verifies with the keys stored in the database.
pub struct KeyRing {
    db: Db,
    kek: Arc<Kek>,
    loaded: RwLock<Arc<Loaded>>,
    /// Held while reading, so that concurrent callers who find the keys stale wait for one
    /// read instead of each starting their own.
    reloading: tokio::sync::Mutex<()>,
    /// Tokens already verified, with the key that verified them. A token's verification
    /// depends only on its bytes and the public key its `kid` names, so a token is taken
    /// as verified again only while that `kid` still names that very key for QR codes: a
    /// retired or replaced key un-verifies its tokens at the next reload, as before. Only
    /// successes are kept; a forged token costs a signature check every time.
    verified: Mutex<lru::LruCache<String, (QrClaims, String, Published)>>,
}

impl KeyRing {
    /// Loads the keys, making the first key of each purpose the database lacks.
    pub async fn load(db: &Db, kek: Arc<Kek>, now: DateTime<Utc>) -> StoreResult<Self> {
        let mut loaded = read_keys(db, &kek, now).await?;
        loaded.loaded_at = None;
        Ok(Self {
            db: db.clone(),
            kek,
            loaded: RwLock::new(Arc::new(loaded)),
            reloading: tokio::sync::Mutex::new(()),
            verified: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(VERIFIED_CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        })
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The keys, read again if they are older than `within` (or unstamped: then stamped).
    async fn fresh(&self, now: DateTime<Utc>, within: TimeDelta) -> StoreResult<Arc<Loaded>> {
        let loaded = self.snapshot();
        if loaded.is_fresh(now, within) {
            return Ok(loaded);
        }
        let _gate = self.reloading.lock().await;
        let loaded = self.snapshot();
        if loaded.loaded_at.is_none() && loaded.read_at.elapsed() < RELOAD_AFTER_REAL {
            // Read at start-up, moments ago: stamp it with the app's clock.
            let stamped = Arc::new(Loaded {
                signing: loaded.signing.clone(),
                public: loaded.public.clone(),
                loaded_at: Some(now),
                read_at: loaded.read_at,
            });
            self.store(stamped.clone());
            return Ok(stamped);
        }
        if loaded.is_fresh(now, within) {
            // Someone else read them while we waited.
            return Ok(loaded);
        }
        self.reload(now).await
    }

    fn store(&self, loaded: Arc<Loaded>) {
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = loaded;
    }

    /// Reads the keys again now (after `qrpark keys rotate|retire` in another process).
    pub async fn refresh(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let _gate = self.reloading.lock().await;
        self.reload(now).await.map(|_| ())
    }

    async fn reload(&self, now: DateTime<Utc>) -> StoreResult<Arc<Loaded>> {
        let fresh = Arc::new(read_keys(&self.db, &self.kek, now).await?);
        self.store(fresh.clone());
        Ok(fresh)
    }

    /// The key that signs `purpose` now (its newest active key).
    pub async fn signing_key(
        &self,
        purpose: KeyPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<QrSigningKey> {
        let loaded = self.fresh(now, RELOAD_AFTER).await?;
        loaded
            .signing
            .get(&purpose)
            .cloned()
            .ok_or_else(|| no_key(purpose))
    }

    /// The public key `kid` if it is active and signs `purpose`.
    pub async fn public_key(
        &self,
        purpose: KeyPurpose,
        kid: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<[u8; 32]>> {
        let mut loaded = self.fresh(now, RELOAD_AFTER).await?;
        if !loaded.public.contains_key(kid) {
            loaded = self.fresh(now, UNKNOWN_KID_RELOAD).await?;
        }
        Ok(loaded
            .public
            .get(kid)
            .filter(|p| p.purpose == purpose)
            .map(|p| p.key))
    }

    /// Verifies a QR token against the active QR keys only, reading the keys again when
    /// they are stale or when it names a key this process has not seen (another process
    /// may have rotated).
    pub async fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<QrClaims, QrTokenError>> {
        let mut loaded = self.fresh(now, RELOAD_AFTER).await?;
        if let Some(claims) = self.verified_before(token, &loaded) {
            return Ok(Ok(claims));
        }
        if let Ok(header) = jsonwebtoken::decode_header(token)
            && let Some(kid) = header.kid
            && !loaded.public.contains_key(&kid)
        {
            loaded = self.fresh(now, UNKNOWN_KID_RELOAD).await?;
        }
        let qr_key = |kid: &str| {
            loaded
                .public
                .get(kid)
                .copied()
                .filter(|p| p.purpose == KeyPurpose::Qr)
        };
        let verified = qr_token::verify(token, |kid| qr_key(kid).map(|p| p.key));
        if let Ok(claims) = verified
            && let Ok(header) = jsonwebtoken::decode_header(token)
            && let Some(kid) = header.kid
            && let Some(key) = qr_key(&kid)
        {
            lock(&self.verified).put(token.to_owned(), (claims, kid, key));
        }
        Ok(verified)
    }

    /// The claims of `token` if it was verified before by a key that `loaded` still holds
    /// for QR codes under the same `kid`.
    fn verified_before(&self, token: &str, loaded: &Loaded) -> Option<QrClaims> {
        let mut verified = lock(&self.verified);
        let (claims, kid, key) = verified.get(token)?;
        if loaded.public.get(kid.as_str()) == Some(key) {
            Some(*claims)
        } else {
            verified.pop(token);
            None
        }
    }

    /// Makes a new signing key for `purpose` (as `qrpark keys rotate` does) and reads the
    /// keys again, so that this process signs with it at once.
    pub async fn rotate(&self, purpose: KeyPurpose, now: DateTime<Utc>) -> StoreResult<String> {
        let kid = rotate(&self.db, &self.kek, purpose, now).await?;
        self.refresh(now).await?;
        Ok(kid)
    }

    /// The JWKS document: every active public key, with the purpose it signs. Read from
    /// the database's public columns on each call, never from the sealed seeds.
    pub async fn jwks(&self) -> StoreResult<serde_json::Value> {
        jwks(&self.db).await
    }
}

/// The JWKS document of the keys in `db`: every active key's public half and purpose.
pub async fn jwks(db: &Db) -> StoreResult<serde_json::Value> {
    let keys = signing_keys::active(db).await?;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .filter_map(|k| {
            let public: [u8; 32] = k.public_key.as_slice().try_into().ok()?;
            let mut jwk = qr_token::jwk(&k.kid, &public);
            jwk["purpose"] = serde_json::Value::from(k.purpose.as_str());
            Some(jwk)
        })
        .collect();
    Ok(serde_json::json!({ "keys": keys }))
}

/// Makes a new signing key for `purpose` numbered after the newest; the next reload of
/// every process signs with it, and what older keys signed keeps verifying until those
/// are retired.
pub async fn rotate(
    db: &Db,
    kek: &Kek,
    purpose: KeyPurpose,
    now: DateTime<Utc>,
) -> StoreResult<String> {
    signing_keys::add(db, purpose, |kid| new_key_material(kek, kid), now).await
}

/// A new key's sealed seed and public key, the seed from the operating system's random
/// source; the plain seed never leaves this function.
fn new_key_material(kek: &Kek, kid: &str) -> (Vec<u8>, [u8; 32]) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random source is available");
    let key = QrSigningKey::from_seed(kid, &seed);
    let sealed = kek.seal(&secrets::signing_key_name(kid), &seed);
    (sealed, key.public_key())
}

fn no_key(purpose: KeyPurpose) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "no usable {purpose} signing key in the database"
    )))
}

async fn read_keys(db: &Db, kek: &Kek, now: DateTime<Utc>) -> StoreResult<Loaded> {
    let mut active = signing_keys::active_sealed(db).await?;
    let missing: Vec<KeyPurpose> = KeyPurpose::ALL
        .into_iter()
        .filter(|p| !active.iter().any(|k| k.purpose == p.as_str()))
        .collect();
    if !missing.is_empty() {
        // First start (or the first after keys got purposes): make each missing key.
        // Several processes may race here; a loser's insert is refused by the primary key
        // and it reads the winner's keys (a purpose may then hold two, the newer signs).
        for purpose in missing {
            match rotate(db, kek, purpose, now).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(StoreError::Database(e))
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) => {}
                Err(e) => return Err(e),
            }
        }
        active = signing_keys::active_sealed(db).await?;
    }
    let mut public = HashMap::new();
    let mut signing = HashMap::new();
    for key in &active {
        let (Some(purpose), Ok(pk)) = (
            KeyPurpose::parse(&key.purpose),
            <[u8; 32]>::try_from(key.public_key.as_slice()),
        ) else {
            continue;
        };
        public.insert(key.kid.clone(), Published { purpose, key: pk });
        let Some(sealed) = &key.sealed_seed else {
            // Not sealed yet (an earlier version's seed): it verifies but does not sign.
            continue;
        };
        let seed = kek
            .open(&secrets::signing_key_name(&key.kid), sealed)
            .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e.to_string())))?;
        signing.insert(purpose, QrSigningKey::from_seed(&key.kid, &seed));
    }
    if let Some(purpose) = KeyPurpose::ALL
        .into_iter()
        .find(|p| !signing.contains_key(p))
    {
        return Err(no_key(purpose));
    }
    Ok(Loaded {
        signing,
        public,
        loaded_at: Some(now),
        read_at: Instant::now(),
    })
}
