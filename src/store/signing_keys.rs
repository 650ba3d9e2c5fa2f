//! The Ed25519 keys that sign QR codes, proofs of parking, export checkpoints and gateway
//! requests, shared by every process on the database. Seeds are stored sealed under the
//! key-encryption key (`crate::secrets`); what the JWKS reads never includes them.

use chrono::{DateTime, Utc};

use super::audit;
use super::{Db, StoreResult, on_db};
use crate::domain::key_purpose::KeyPurpose;

/// An active key with its sealed seed: what a process needs to sign.
#[derive(Clone, sqlx::FromRow)]
pub struct SealedKey {
    pub kid: String,
    pub purpose: String,
    /// Null only for a seed of an earlier version not yet sealed (see `crate::secrets`).
    pub sealed_seed: Option<Vec<u8>>,
    pub public_key: Vec<u8>,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedKey({}, {}, ***)", self.kid, self.purpose)
    }
}

/// A key's public facts: what the JWKS and `qrpark keys list` show.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PublicKey {
    pub kid: String,
    pub purpose: String,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Keys in the order they were made: the number in `k12`, compared as a number.
const ORDER: &str = "cast(substr(kid, 2) as bigint)";

/// Every key that is not retired, with its sealed seed, oldest first; per purpose, the last
/// one signs.
pub async fn active_sealed(db: &Db) -> StoreResult<Vec<SealedKey>> {
    let sql = format!(
        "select kid, purpose, sealed_seed, public_key from signing_key \
         where retired_at is null order by {ORDER}"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, SealedKey>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?))
}

const PUBLIC_COLUMNS: &str = "kid, purpose, public_key, created_at, retired_at";

/// Every key that is not retired, oldest first, without its seed: the JWKS.
pub async fn active(db: &Db) -> StoreResult<Vec<PublicKey>> {
    let sql = format!(
        "select {PUBLIC_COLUMNS} from signing_key where retired_at is null order by {ORDER}"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, PublicKey>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?))
}

/// Every key, retired or not, oldest first, without its seed.
pub async fn all(db: &Db) -> StoreResult<Vec<PublicKey>> {
    let sql = format!("select {PUBLIC_COLUMNS} from signing_key order by {ORDER}");
    on_db!(db, pool => Ok(sqlx::query_as::<_, PublicKey>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?))
}

/// Adds a key for `purpose` numbered after the newest one. `make` gets the new kid and
/// returns the sealed seed and the public key. Of concurrent callers (several processes
/// starting at once) only one wins: the primary key refuses the others' insert with a
/// unique violation.
pub async fn add(
    db: &Db,
    purpose: KeyPurpose,
    make: impl Fn(&str) -> (Vec<u8>, [u8; 32]),
    now: DateTime<Utc>,
) -> StoreResult<String> {
    let sql = format!("select coalesce(max({ORDER}), 0) + 1 from signing_key");
    let next: i64 = on_db!(db, pool => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await)?;
    let kid = format!("k{next}");
    let (sealed_seed, public) = make(&kid);
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "insert into signing_key (kid, purpose, sealed_seed, public_key, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(purpose.as_str())
        .bind(&sealed_seed)
        .bind(&public[..])
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            "signing_key.created",
            &kid,
            serde_json::json!({
                "kid": kid,
                "purpose": purpose.as_str(),
                "public_key": crate::domain::audit::hex(&public),
            })
        )
        .await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }
    .await
    )?;
    Ok(kid)
}

/// Retires a key; `None` if there is no such active key.
pub async fn retire(db: &Db, kid: &str, now: DateTime<Utc>) -> StoreResult<Option<()>> {
    let changed = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update signing_key set retired_at = $2 where kid = $1 and retired_at is null",
        )
        .bind(kid)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            let payload = serde_json::json!({"kid": kid});
            audit::append(&mut tx, now, "signing_key.retired", kid, payload).await?;
        }
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(changed)
    }
    .await)?;
    Ok((changed == 1).then_some(()))
}
