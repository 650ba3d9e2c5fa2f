//! Spaces, reached only through a lot the calling operator owns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::cache::{self, Changed};
use super::space_qr::{self, NewSpaceQr};
use super::{Constraint, Db, StoreError, StoreResult, on_db};
use crate::domain::space::{SpaceCode, SpaceStatus};

/// A space as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Space {
    pub space_id: Uuid,
    pub lot_id: Uuid,
    pub code: String,
    pub status: SpaceStatus,
    pub qr_version: i32,
    /// The current code's token; `None` only for a space whose code is being rotated.
    pub qr_token: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A space about to be created, with its first signed code.
#[derive(Debug, Clone)]
pub struct NewSpace {
    pub code: SpaceCode,
    pub qr: NewSpaceQr,
}

/// Why a bulk creation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CreateSpacesError {
    #[error("space codes already used in this lot: {0:?}")]
    CodesTaken(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "space.space_id, space.lot_id, space.code, space.status, \
                       space.qr_version, space_qr.token as qr_token, \
                       space.created_at, space.updated_at";

/// Every read joins the current code.
const FROM: &str = "space left join space_qr on space_qr.space_id = space.space_id";

/// Creates all the spaces, each with its first code, or none of them. The caller has
/// checked that the lot is the operator's and that the codes are distinct; the unique
/// constraint settles races.
pub async fn create_many(
    db: &Db,
    lot_id: Uuid,
    new: &[NewSpace],
    now: DateTime<Utc>,
) -> Result<Vec<Space>, CreateSpacesError> {
    let spaces: Vec<Space> = new
        .iter()
        .map(|n| Space {
            space_id: n.qr.space_id,
            lot_id,
            code: n.code.as_str().to_owned(),
            status: SpaceStatus::Active,
            qr_version: n.qr.qr_version,
            qr_token: Some(n.qr.token.clone()),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let inserted = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        for (space, n) in spaces.iter().zip(new) {
            sqlx::query(
                "insert into space (space_id, lot_id, code, status, qr_version, created_at, \
                 updated_at) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(space.space_id)
            .bind(space.lot_id)
            .bind(&space.code)
            .bind(space.status)
            .bind(space.qr_version)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            ?;
            space_qr::insert_in(&mut tx, &n.qr).await?;
            audit::append(
                &mut tx,
                now,
                "space.created",
                space.space_id,
                serde_json::json!({
                    "space_id": space.space_id,
                    "lot_id": space.lot_id,
                    "code": space.code,
                    "qr_version": space.qr_version,
                    "kid": n.qr.kid,
                })
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await);
    match inserted {
        Ok(()) => Ok(spaces),
        Err(StoreError::Conflict(Constraint::SpaceCode)) => {
            // Name every taken code, not just the first the database tripped on.
            let existing = list(db, lot_id).await?;
            let taken: Vec<String> = new
                .iter()
                .filter(|n| existing.iter().any(|s| s.code == n.code.as_str()))
                .map(|n| n.code.as_str().to_owned())
                .collect();
            Err(CreateSpacesError::CodesTaken(taken))
        }
        Err(other) => Err(other.into()),
    }
}

/// A lot's spaces in code order.
pub async fn list(db: &Db, lot_id: Uuid) -> StoreResult<Vec<Space>> {
    let sql = format!("select {COLUMNS} from {FROM} where space.lot_id = $1 order by space.code");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Space>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .fetch_all(pool)
        .await?))
}

/// One space of a lot the operator owns; `None` otherwise.
pub async fn get(db: &Db, operator_id: Uuid, space_id: Uuid) -> StoreResult<Option<Space>> {
    let sql = format!(
        "select {COLUMNS} from {FROM} join lot on lot.lot_id = space.lot_id \
         where space.space_id = $1 and lot.operator_id = $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Space>(sqlx::AssertSqlSafe(sql))
        .bind(space_id)
        .bind(operator_id)
        .fetch_optional(pool)
        .await?))
}

/// Sets a space's status if the operator owns it; `None` otherwise.
pub async fn set_status(
    db: &Db,
    operator_id: Uuid,
    space_id: Uuid,
    status: SpaceStatus,
    now: DateTime<Utc>,
) -> StoreResult<Option<Space>> {
    let changed = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update space set status = $3, updated_at = $4 \
             where space_id = $1 and lot_id in (select lot_id from lot where operator_id = $2)",
        )
        .bind(space_id)
        .bind(operator_id)
        .bind(status)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            audit::append(
                &mut tx,
                now,
                "space.status_changed",
                space_id,
                serde_json::json!({"space_id": space_id, "status": status.as_str()})
            )
            .await?;
            cache::note_change(&mut tx, Changed::Space(space_id)).await?;
        }
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(changed)
    }
    .await)?;
    if changed == 0 {
        return Ok(None);
    }
    get(db, operator_id, space_id).await
}

/// A space of any lot, for the public scan of its code.
pub async fn get_public(db: &Db, space_id: Uuid) -> StoreResult<Option<Space>> {
    let sql = format!("select {COLUMNS} from {FROM} where space.space_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Space>(sqlx::AssertSqlSafe(sql))
        .bind(space_id)
        .fetch_optional(pool)
        .await?))
}

/// Replaces a space's code with a new version (`make` signs it), in one transaction: from
/// the commit on, the old token names an old version and is revoked. `None` if the space
/// is not the operator's.
pub async fn rotate_code(
    db: &Db,
    operator_id: Uuid,
    space_id: Uuid,
    make: impl FnOnce(i32) -> NewSpaceQr,
    now: DateTime<Utc>,
) -> StoreResult<Option<NewSpaceQr>> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        // Writing first takes the write lock at once (SQLite) or the row lock (PostgreSQL),
        // so concurrent rotations queue instead of reading a stale version.
        sqlx::query(
            "delete from space_qr where space_id = $1 and space_id in \
             (select space_id from space join lot on lot.lot_id = space.lot_id \
              where lot.operator_id = $2)",
        )
        .bind(space_id)
        .bind(operator_id)
        .execute(&mut *tx)
        .await?;
        let version: Option<i32> = sqlx::query_scalar(
            "update space set qr_version = qr_version + 1, updated_at = $3 \
             where space_id = $1 and lot_id in (select lot_id from lot where operator_id = $2) \
             returning qr_version",
        )
        .bind(space_id)
        .bind(operator_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else {
            return Ok(None);
        };
        let qr = make(version);
        space_qr::insert_in(&mut tx, &qr).await?;
        audit::append(
            &mut tx,
            now,
            "space.code_rotated",
            space_id,
            serde_json::json!({"space_id": space_id, "qr_version": version, "kid": qr.kid})
        )
        .await?;
        cache::note_change(&mut tx, Changed::Space(space_id)).await?;
        tx.commit().await?;
        Ok(Some(qr))
    }
    .await)
}

/// Spaces that have no code (created before codes existed), to be given one at start.
pub async fn without_code(db: &Db) -> StoreResult<Vec<(Uuid, i32)>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (Uuid, i32)>(
        "select space_id, qr_version from space \
         where not exists (select 1 from space_qr where space_qr.space_id = space.space_id)",
    )
    .fetch_all(pool)
    .await?))
}

/// Gives a space without a code its code.
pub async fn add_missing_code(db: &Db, qr: &NewSpaceQr) -> StoreResult<()> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        space_qr::insert_in(&mut tx, qr).await?;
        // Processes already serving may hold the space without its code.
        cache::note_change(&mut tx, Changed::Space(qr.space_id)).await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await)
}

/// The codes of these spaces, by id (one query however many).
pub async fn codes(
    db: &Db,
    space_ids: &[Uuid],
) -> StoreResult<std::collections::HashMap<Uuid, String>> {
    let select = "select space_id, code from space where space_id";
    let rows: Vec<(Uuid, String)> = super::fetch_by_ids(db, select, space_ids, "").await?;
    Ok(rows.into_iter().collect())
}
