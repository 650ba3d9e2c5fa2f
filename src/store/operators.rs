//! Operators and their API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::{Db, StoreResult, on_db};

/// An operator as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Operator {
    pub operator_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// One of an operator's API keys (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorKey {
    pub operator_key_id: Uuid,
    pub operator_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The operator a valid key belongs to.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct KeyOwner {
    pub operator_id: Uuid,
    pub operator_key_id: Uuid,
}

/// Creates an operator together with its first key, in one transaction.
pub async fn create(
    db: &Db,
    name: &str,
    key_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> StoreResult<(Operator, OperatorKey)> {
    let operator = Operator {
        operator_id: Uuid::now_v7(),
        name: name.to_owned(),
        created_at: now,
    };
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into operator (operator_id, name, created_at) values ($1, $2, $3)")
            .bind(operator.operator_id)
            .bind(&operator.name)
            .bind(operator.created_at)
            .execute(&mut *tx)
            .await
            ?;
        let key = new_key(operator.operator_id, now);
        sqlx::query(INSERT_KEY)
            .bind(key.operator_key_id)
            .bind(key.operator_id)
            .bind(&key_hash[..])
            .bind(now)
            .execute(&mut *tx)
            .await
            ?;
        audit::append(
            &mut tx,
            now,
            "operator.created",
            operator.operator_id,
            serde_json::json!({
                "operator_id": operator.operator_id,
                "name": operator.name,
                "key_id": key.operator_key_id,
            })
        )
        .await?;
        tx.commit().await?;
        Ok((operator, key))
    })
}

/// Finds an operator by its id (a UUID) or else by its exact name.
pub async fn find(db: &Db, name_or_id: &str) -> StoreResult<Option<Operator>> {
    let id = Uuid::parse_str(name_or_id).ok();
    on_db!(db, pool => {
        let found = match id {
            Some(id) => sqlx::query_as::<_, Operator>(
                "select operator_id, name, created_at from operator where operator_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?,
            None => None,
        };
        match found {
            Some(operator) => Ok(Some(operator)),
            None => Ok(sqlx::query_as::<_, Operator>(
                "select operator_id, name, created_at from operator where name = $1",
            )
            .bind(name_or_id)
            .fetch_optional(pool)
            .await?),
        }
    })
}

/// The names of up to `limit` operators not named `name`, in the order they were created.
pub async fn others(db: &Db, name: &str, limit: i64) -> StoreResult<Vec<String>> {
    on_db!(db, pool => Ok(sqlx::query_scalar(
        "select name from operator where name <> $1 order by created_at, name limit $2",
    )
    .bind(name)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// Adds another key to an operator.
pub async fn add_key(
    db: &Db,
    operator_id: Uuid,
    key_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> StoreResult<OperatorKey> {
    let key = new_key(operator_id, now);
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query(INSERT_KEY)
            .bind(key.operator_key_id)
            .bind(key.operator_id)
            .bind(&key_hash[..])
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            now,
            "operator.key_issued",
            key.operator_key_id,
            serde_json::json!({"operator_id": operator_id, "key_id": key.operator_key_id})
        )
        .await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }
    .await
    )?;
    Ok(key)
}

const INSERT_KEY: &str = "insert into operator_key (operator_key_id, operator_id, key_hash, created_at) \
     values ($1, $2, $3, $4)";

fn new_key(operator_id: Uuid, now: DateTime<Utc>) -> OperatorKey {
    OperatorKey {
        operator_key_id: Uuid::now_v7(),
        operator_id,
        created_at: now,
        revoked_at: None,
    }
}

/// Revokes one of an operator's keys; `None` if the operator has no such key.
/// Revoking an already revoked key keeps its first revocation time.
pub async fn revoke_key(
    db: &Db,
    operator_id: Uuid,
    operator_key_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Option<OperatorKey>> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let key = sqlx::query_as::<_, OperatorKey>(
            "update operator_key set revoked_at = coalesce(revoked_at, $3) \
             where operator_id = $1 and operator_key_id = $2 \
             returning operator_key_id, operator_id, created_at, revoked_at",
        )
        .bind(operator_id)
        .bind(operator_key_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if key.is_some() {
            // A revoked key ends every console session signed in with it.
            sqlx::query("delete from console_session where operator_key_id = $1")
                .bind(operator_key_id)
                .execute(&mut *tx)
                .await?;
        }
        if key.as_ref().is_some_and(|k| k.revoked_at == Some(now)) {
            audit::append(
                &mut tx,
                now,
                "operator.key_revoked",
                operator_key_id,
                serde_json::json!({"operator_id": operator_id, "key_id": operator_key_id})
            )
            .await?;
        }
        tx.commit().await?;
        Ok(key)
    }
    .await)
}

/// The operator owning an unrevoked key with this hash.
pub async fn authenticate(db: &Db, key_hash: &[u8; 32]) -> StoreResult<Option<KeyOwner>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, KeyOwner>(
        "select operator_id, operator_key_id from operator_key \
         where key_hash = $1 and revoked_at is null",
    )
    .bind(&key_hash[..])
    .fetch_optional(pool)
    .await?))
}
