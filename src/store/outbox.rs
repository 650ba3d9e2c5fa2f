//! The outbox: payments and refunds waiting for delivery to the city's payment gateway, one
//! queue each (`settlement_outbox`, `refund_outbox`), claimed with a lease so that several
//! processes deliver each one once at a time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, on_db};

/// Which queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Payments,
    Refunds,
}

impl Queue {
    /// The table and its key column.
    const fn table(self) -> (&'static str, &'static str) {
        match self {
            Self::Payments => ("settlement_outbox", "settlement_id"),
            Self::Refunds => ("refund_outbox", "refund_id"),
        }
    }
}

/// Due deliveries of `queue`, oldest first: `(id, next_attempt_at)`.
pub async fn due(
    db: &Db,
    queue: Queue,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<(Uuid, DateTime<Utc>)>> {
    let (table, key) = queue.table();
    let sql = format!(
        "select {key}, next_attempt_at from {table} \
         where next_attempt_at <= $1 order by next_attempt_at limit $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Claims a delivery for `until` (a lease): `false` when another process claimed it first.
pub async fn claim(
    db: &Db,
    queue: Queue,
    id: Uuid,
    seen: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<bool> {
    let (table, key) = queue.table();
    let sql = format!(
        "update {table} set next_attempt_at = $3 where {key} = $1 and next_attempt_at = $2"
    );
    let changed = on_db!(db, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(seen)
        .bind(until)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The gateway took it.
    Accepted,
    /// Try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// The gateway refused it for good: a payment becomes arrears, a refund fails.
    Refused { error: String },
    /// Delivery gave up after its retries: nobody knows what the gateway did; review.
    GaveUp { error: String },
}
