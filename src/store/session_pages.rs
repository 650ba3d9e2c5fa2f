//! An operator's sessions a page at a time, for the console: newest first, continued after
//! the last row of the previous page (a keyset cursor, stable while sessions start).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sessions::{COLUMNS, Session, SessionFilter};
use super::{Db, StoreResult, on_db};

/// Where a page continues: strictly after this session in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub started_at: DateTime<Utc>,
    pub session_id: Uuid,
}

/// Up to `limit` of the operator's sessions matching `filter`, newest first, after `after`.
pub async fn page(
    db: &Db,
    operator_id: Uuid,
    filter: &SessionFilter,
    after: Option<After>,
    limit: i64,
) -> StoreResult<Vec<Session>> {
    let sql = format!(
        "select {COLUMNS} from session where operator_id = $1 \
         and ($2 is null or lot_id = $2) \
         and ($3 is null or started_at >= $3) \
         and ($4 is null or started_at < $4) \
         and ($5 is null or status = $5) \
         and ($6 is null or started_at < $6 or (started_at = $6 and session_id < $7)) \
         order by started_at desc, session_id desc limit $8"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(operator_id)
        .bind(filter.lot_id)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.status)
        .bind(after.map(|a| a.started_at))
        .bind(after.map(|a| a.session_id))
        .bind(limit)
        .fetch_all(pool)
        .await?))
}
