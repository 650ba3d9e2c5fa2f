//! What a lot's metrics are computed from: the sessions touching a range of time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, on_db};

/// The part of a session the metrics read.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct SessionSpan {
    pub started_at: DateTime<Utc>,
    /// `None` while active.
    pub ended_at: Option<DateTime<Utc>>,
    /// The fee charged, once stopped (minor units of the lot's currency).
    pub fee_minor: Option<i64>,
}

/// The lot's sessions that started before `to` and had not ended before `from`: every one
/// that counts, occupies or earns in `[from, to)`.
pub async fn spans(
    db: &Db,
    lot_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<Vec<SessionSpan>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, SessionSpan>(
        "select started_at, ended_at, fee_minor from session \
         where lot_id = $1 and started_at < $3 and (ended_at is null or ended_at >= $2) \
         order by started_at",
    )
    .bind(lot_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?))
}
