//! The Ed25519 keys that sign QR tokens, shared by every process on the database.

use chrono::{DateTime, Utc};

use super::audit;
use super::{Db, StoreResult, on_db};

/// A stored signing key.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub private_seed: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredKey({}, ***)", self.kid)
    }
}

/// Keys in the order they were made: the number in `k12`, compared as a number.
const ORDER: &str = "cast(substr(kid, 2) as bigint)";

/// Every key that is not retired, oldest first; the last one signs new codes.
pub async fn active(db: &Db) -> StoreResult<Vec<StoredKey>> {
    let sql = format!(
        "select kid, private_seed, public_key, created_at, retired_at from signing_key \
         where retired_at is null order by {ORDER}"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, StoredKey>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?))
}

/// Every key, retired or not, oldest first.
pub async fn all(db: &Db) -> StoreResult<Vec<StoredKey>> {
    let sql = format!(
        "select kid, private_seed, public_key, created_at, retired_at from signing_key \
         order by {ORDER}"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, StoredKey>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?))
}

/// Adds a key numbered after the newest one. `make` gets the new kid and returns the seed
/// and public key. Of concurrent callers (several processes starting at once) only one
/// wins: the primary key refuses the others' insert with a unique violation.
pub async fn add(
    db: &Db,
    make: impl Fn(&str) -> ([u8; 32], [u8; 32]),
    now: DateTime<Utc>,
) -> StoreResult<String> {
    let sql = format!("select coalesce(max({ORDER}), 0) + 1 from signing_key");
    let next: i64 = on_db!(db, pool => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await)?;
    let kid = format!("k{next}");
    let (seed, public) = make(&kid);
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "insert into signing_key (kid, private_seed, public_key, created_at) \
             values ($1, $2, $3, $4)",
        )
        .bind(&kid)
        .bind(&seed[..])
        .bind(&public[..])
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            "signing_key.created",
            &kid,
            serde_json::json!({"kid": kid, "public_key": crate::domain::audit::hex(&public)})
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
