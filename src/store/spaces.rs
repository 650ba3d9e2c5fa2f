//! Spaces, reached only through a lot the calling operator owns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Constraint, Db, StoreError, StoreResult, on_db};
use crate::domain::space::{SpaceCode, SpaceStatus};

/// A space as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Space {
    pub space_id: Uuid,
    pub lot_id: Uuid,
    pub code: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Space {
    /// The stored status; the schema's check constraint admits only known values.
    pub fn status(&self) -> SpaceStatus {
        self.status.parse().unwrap_or(SpaceStatus::OutOfService)
    }
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
                       space.created_at, space.updated_at";

/// Creates all the spaces or none of them. The caller has checked that the lot is the
/// operator's and that the codes are distinct; the unique constraint settles races.
pub async fn create_many(
    db: &Db,
    lot_id: Uuid,
    codes: &[SpaceCode],
    now: DateTime<Utc>,
) -> Result<Vec<Space>, CreateSpacesError> {
    let spaces: Vec<Space> = codes
        .iter()
        .map(|code| Space {
            space_id: Uuid::now_v7(),
            lot_id,
            code: code.as_str().to_owned(),
            status: SpaceStatus::Active.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let inserted = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        for space in &spaces {
            sqlx::query(
                "insert into space (space_id, lot_id, code, status, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(space.space_id)
            .bind(space.lot_id)
            .bind(&space.code)
            .bind(&space.status)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
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
            let taken: Vec<String> = codes
                .iter()
                .filter(|c| existing.iter().any(|s| s.code == c.as_str()))
                .map(|c| c.as_str().to_owned())
                .collect();
            Err(CreateSpacesError::CodesTaken(taken))
        }
        Err(other) => Err(other.into()),
    }
}

/// A lot's spaces in code order.
pub async fn list(db: &Db, lot_id: Uuid) -> StoreResult<Vec<Space>> {
    let sql = format!("select {COLUMNS} from space where lot_id = $1 order by code");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Space>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .fetch_all(pool)
        .await?))
}

/// One space of a lot the operator owns; `None` otherwise.
pub async fn get(db: &Db, operator_id: Uuid, space_id: Uuid) -> StoreResult<Option<Space>> {
    let sql = format!(
        "select {COLUMNS} from space join lot on lot.lot_id = space.lot_id \
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
    let sql = "update space set status = $3, updated_at = $4 \
               where space_id = $1 \
               and lot_id in (select lot_id from lot where operator_id = $2) \
               returning space_id, lot_id, code, status, created_at, updated_at";
    on_db!(db, pool => Ok(sqlx::query_as::<_, Space>(sql)
        .bind(space_id)
        .bind(operator_id)
        .bind(status.as_str())
        .bind(now)
        .fetch_optional(pool)
        .await?))
}
