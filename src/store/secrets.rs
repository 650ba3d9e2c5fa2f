//! Sealed secrets: the server secrets (plate key, pseudonym key) and the plaintext that
//! earlier versions left, until it is sealed. Sealing and opening happen in
//! `crate::secrets`; this module only moves the sealed bytes.

use super::{Db, StoreResult, on_db};

/// A plaintext secret of an earlier version, waiting to be sealed.
#[derive(sqlx::FromRow)]
pub struct Unsealed {
    pub name: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unsealed({}, ***)", self.name)
    }
}

/// Whether anything in the database is sealed: then a key-encryption key exists somewhere,
/// and a process without it must not make a new one.
pub async fn any_sealed(db: &Db) -> StoreResult<bool> {
    on_db!(db, pool => Ok(sqlx::query_scalar::<_, bool>(
        "select exists (select 1 from server_secret) \
             or exists (select 1 from signing_key where sealed_seed is not null)",
    )
    .fetch_one(pool)
    .await?))
}

/// The plaintext secrets waiting to be sealed.
pub async fn unsealed(db: &Db) -> StoreResult<Vec<Unsealed>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, Unsealed>(
        "select name, secret from unsealed_secret order by name"
    )
    .fetch_all(pool)
    .await?))
}

/// Replaces the plaintext `name` by its sealed form, in one transaction: the signing key's
/// `sealed_seed` for `signing_key:KID`, a server secret otherwise. Of several processes
/// sealing at once the first wins and the others change nothing.
pub async fn seal_unsealed(db: &Db, name: &str, sealed: &[u8]) -> StoreResult<()> {
    let store = match name.strip_prefix("signing_key:") {
        Some(_) => {
            "update signing_key set sealed_seed = $2 \
             where 'signing_key:' || kid = $1 and sealed_seed is null"
        }
        None => "insert into server_secret (name, sealed) values ($1, $2) on conflict do nothing",
    };
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(store).bind(name).bind(sealed).execute(&mut *tx).await?;
        sqlx::query("delete from unsealed_secret where name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Rewrites the tables that held plaintext, so that no page the database still uses keeps
/// it: SQLite zeroes freed pages itself (`secure_delete`, set on every connection), and
/// PostgreSQL keeps dead row versions until a full vacuum.
pub async fn scrub(db: &Db) -> StoreResult<()> {
    if let Db::Postgres(pool) = db {
        for sql in ["vacuum full signing_key", "vacuum full unsealed_secret"] {
            sqlx::query(sql).execute(pool).await?;
        }
    }
    Ok(())
}

/// The sealed server secret `name`, if it exists.
pub async fn sealed(db: &Db, name: &str) -> StoreResult<Option<Vec<u8>>> {
    on_db!(db, pool => Ok(sqlx::query_scalar::<_, Vec<u8>>(
        "select sealed from server_secret where name = $1"
    )
    .bind(name)
    .fetch_optional(pool)
    .await?))
}

/// Stores a new sealed server secret unless one exists (another process made it first);
/// either way answers the one stored.
pub async fn add_sealed(db: &Db, name: &str, sealed: &[u8]) -> StoreResult<Vec<u8>> {
    on_db!(db, pool => {
        sqlx::query("insert into server_secret (name, sealed) values ($1, $2) on conflict do nothing")
            .bind(name)
            .bind(sealed)
            .execute(pool)
            .await?;
        Ok(sqlx::query_scalar::<_, Vec<u8>>("select sealed from server_secret where name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?)
    })
}
