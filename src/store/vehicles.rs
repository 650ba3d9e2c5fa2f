//! What is stored about vehicles: the erasure of old plates, and what
//! wardens ask about spaces and plates. Violations are written here too.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::sessions::Session;
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::session::PaidStatus;

/// Erases the plates of sessions stopped before `before`; how many were erased.
pub async fn erase_plates(db: &Db, before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
    on_db!(db, pool => Ok(sqlx::query(
        "update session set plate = null, plate_erased_at = $2 \
         where status = 'stopped' and plate is not null and ended_at < $1",
    )
    .bind(before)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected()))
}

/// A space as a warden sees it, with its lot.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpaceOnStreet {
    pub space_id: Uuid,
    pub space_code: String,
    pub lot_id: Uuid,
    pub lot_name: String,
    pub operator_id: Uuid,
}

const SPACE_COLUMNS: &str = "space.space_id, space.code as space_code, lot.lot_id, \
                             lot.name as lot_name, lot.operator_id";

/// These spaces with their lots, whoever operates them (unknown ids are left out).
pub async fn spaces(db: &Db, space_ids: &[Uuid]) -> StoreResult<Vec<SpaceOnStreet>> {
    let select = format!(
        "select {SPACE_COLUMNS} from space join lot on lot.lot_id = space.lot_id \
         where space.space_id"
    );
    super::fetch_by_ids(db, &select, space_ids, "order by space.code").await
}

/// Every lot of every operator, by name: where wardens walk.
pub async fn lots(db: &Db) -> StoreResult<Vec<(Uuid, String, Option<String>)>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (Uuid, String, Option<String>)>(
        "select lot_id, name, address from lot order by name, lot_id"
    )
    .fetch_all(pool)
    .await?))
}

/// Every space of a lot, in code order.
pub async fn lot_spaces(db: &Db, lot_id: Uuid) -> StoreResult<Vec<SpaceOnStreet>> {
    let sql = format!(
        "select {SPACE_COLUMNS} from space join lot on lot.lot_id = space.lot_id \
         where space.lot_id = $1 order by space.code"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, SpaceOnStreet>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .fetch_all(pool)
        .await?))
}

/// The sessions of these spaces that are active, or the latest that stopped: at most two
/// per space, so that a check sees what is on the space now and how the last one ended.
pub async fn latest_sessions(db: &Db, space_ids: &[Uuid]) -> StoreResult<Vec<Session>> {
    if space_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = super::placeholders(1, space_ids.len());
    let columns = super::sessions::COLUMNS;
    // Active sessions (one index entry per space), and per space the stopped one that
    // ended last: one seek of (space_id, ended_at) each, however long the space's history.
    let sql = format!(
        "select {columns} from session where space_id in ({list}) and status = 'active' \
         union all \
         select {columns} from session where session_id in ( \
             select (select t.session_id from session t \
                     where t.space_id = space.space_id and t.status = 'stopped' \
                     order by t.ended_at desc limit 1) \
             from space where space.space_id in ({list}))"
    );
    on_db!(db, pool => {
        let mut query = sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql));
        for id in space_ids {
            query = query.bind(*id);
        }
        Ok(query.fetch_all(pool).await?)
    })
}

/// The active sessions of a plate, newest first.
pub async fn active_by_plate(db: &Db, plate: &str) -> StoreResult<Vec<Session>> {
    let sql = format!(
        "select {} from session where plate = $1 and status = 'active' \
         order by started_at desc",
        super::sessions::COLUMNS
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(plate)
        .fetch_all(pool)
        .await?))
}

/// A violation as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Violation {
    pub violation_id: Uuid,
    pub space_id: Uuid,
    pub lot_id: Uuid,
    pub operator_id: Uuid,
    pub plate: String,
    pub note: Option<String>,
    pub warden: String,
    pub observed_at: DateTime<Utc>,
    pub status_at_observation: PaidStatus,
    pub session_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const VIOLATION_COLUMNS: &str = "violation_id, space_id, lot_id, operator_id, plate, note, \
                                 warden, observed_at, status_at_observation, session_id, \
                                 created_at";

/// Records a violation and its event in the audit chain, in one transaction, unless the
/// space is paid for that vehicle (`Ok(None)`). What the space shows is read inside the
/// transaction (PostgreSQL: the active session locked `for share`; SQLite: the write lock
/// taken at `begin immediate`), so a start or a stop cannot slip between the check and the
/// record. A session without a plate covers any vehicle. The event holds the plate's keyed
/// hash, never the plate.
pub async fn record_violation(
    db: &Db,
    mut v: Violation,
    plate_hmac: &str,
) -> StoreResult<Option<Violation>> {
    let (begin, lock) = match db {
        Db::Sqlite(_) => ("begin immediate", ""),
        Db::Postgres(_) => ("begin", " for share"),
    };
    let sql = format!(
        "select session_id, plate from session where space_id = $1 and status = 'active' \
         and (ends_at is null or ends_at > $2){lock}"
    );
    on_db!(db, pool => async {
        let mut tx = pool.begin_with(begin).await?;
        let on_space: Option<(Uuid, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(v.space_id)
                .bind(v.observed_at)
                .fetch_optional(&mut *tx)
                .await?;
        match on_space {
            Some((_, None)) => return Ok(None),
            Some((_, Some(plate))) if plate == v.plate => return Ok(None),
            Some((session_id, Some(_))) => {
                v.status_at_observation = PaidStatus::Paid;
                v.session_id = Some(session_id);
            }
            None => {
                v.status_at_observation = PaidStatus::Unpaid;
                v.session_id = None;
            }
        }
        // The violation takes its place in the chain when the sealer seals this event.
        let pending = audit::append_placed(
            &mut tx,
            audit::Place::Violation,
            v.observed_at,
            "violation.recorded",
            v.violation_id,
            serde_json::json!({
                "violation_id": v.violation_id,
                "space_id": v.space_id,
                "lot_id": v.lot_id,
                "plate_hmac": plate_hmac,
                "warden": v.warden,
                "observed_at": crate::domain::audit::instant(v.observed_at),
                "status_at_observation": v.status_at_observation,
                "session_id": v.session_id,
            })
        )
        .await?;
        let sql = format!(
            "insert into violation ({VIOLATION_COLUMNS}, audit_pending) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(v.violation_id)
            .bind(v.space_id)
            .bind(v.lot_id)
            .bind(v.operator_id)
            .bind(&v.plate)
            .bind(&v.note)
            .bind(&v.warden)
            .bind(v.observed_at)
            .bind(v.status_at_observation)
            .bind(v.session_id)
            .bind(v.created_at)
            .bind(pending)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<Option<Violation>, StoreError>(Some(v))
    }
    .await)
}

/// Violations observed in [from, to), optionally in one lot, newest first.
pub async fn violations(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    lot_id: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<Violation>> {
    let sql = format!(
        "select {VIOLATION_COLUMNS} from violation where observed_at >= $1 and observed_at < $2 \
         and ($3 is null or lot_id = $3) order by observed_at desc, violation_id desc limit $4"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Violation>(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(lot_id)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}
