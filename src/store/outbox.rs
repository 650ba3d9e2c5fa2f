//! The settlement outbox: settlements waiting for delivery to the city's payment gateway.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::sessions::Settlement;
use super::{Db, StoreError, StoreResult, on_db};

/// Due deliveries, oldest first.
pub async fn due(
    db: &Db,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<(Uuid, DateTime<Utc>)>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
        "select settlement_id, next_attempt_at from settlement_outbox \
         where next_attempt_at <= $1 order by next_attempt_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// Claims a delivery for `until` (a lease): `false` when another process claimed it first.
pub async fn claim(
    db: &Db,
    settlement_id: Uuid,
    seen: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<bool> {
    let changed = on_db!(db, pool => sqlx::query(
        "update settlement_outbox set next_attempt_at = $3 \
         where settlement_id = $1 and next_attempt_at = $2",
    )
    .bind(settlement_id)
    .bind(seen)
    .bind(until)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// A settlement by id.
pub async fn settlement(db: &Db, settlement_id: Uuid) -> StoreResult<Option<Settlement>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(
        "select settlement_id, session_id, reference, driver, operator_id, currency, \
         amount_minor, status, attempts, last_error, created_at, updated_at, settled_at \
         from settlement where settlement_id = $1",
    )
    .bind(settlement_id)
    .fetch_optional(pool)
    .await?))
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The gateway took it: settled.
    Settled,
    /// Try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// The gateway refused it for good: failed, and the ledger postings are reversed.
    Failed { error: String },
}

/// Records an attempt's outcome in one transaction.
pub async fn record(
    db: &Db,
    settlement: &Settlement,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        match outcome {
            Outcome::Settled => {
                sqlx::query(
                    "update settlement set status = 'settled', settled_at = $2, updated_at = $2, \
                     attempts = attempts + 1, last_error = null \
                     where settlement_id = $1 and status = 'pending'",
                )
                .bind(settlement.settlement_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from settlement_outbox where settlement_id = $1")
                    .bind(settlement.settlement_id)
                    .execute(&mut *tx)
                    .await?;
                audit::append(
                    &mut tx,
                    now,
                    "settlement.settled",
                    settlement.settlement_id,
                    serde_json::json!({
                        "settlement_id": settlement.settlement_id,
                        "reference": settlement.reference,
                    })
                )
                .await?;
            }
            Outcome::Retry { error, next_attempt_at } => {
                sqlx::query(
                    "update settlement set attempts = attempts + 1, last_error = $2, updated_at = $3 \
                     where settlement_id = $1",
                )
                .bind(settlement.settlement_id)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("update settlement_outbox set next_attempt_at = $2 where settlement_id = $1")
                    .bind(settlement.settlement_id)
                    .bind(*next_attempt_at)
                    .execute(&mut *tx)
                    .await?;
            }
            Outcome::Failed { error } => {
                let changed = sqlx::query(
                    "update settlement set status = 'failed', attempts = attempts + 1, \
                     last_error = $2, updated_at = $3 where settlement_id = $1 and status = 'pending'",
                )
                .bind(settlement.settlement_id)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 && settlement.amount_minor > 0 {
                    // The ledger is append-only: a refused payment is undone by reversing
                    // entries, credit the driver and debit the operator.
                    for (account, debit, credit) in [
                        (format!("driver:{}", settlement.driver), 0, settlement.amount_minor),
                        (format!("operator:{}", settlement.operator_id), settlement.amount_minor, 0),
                    ] {
                        sqlx::query(
                            "insert into ledger_entry (ledger_entry_id, settlement_id, account, \
                             currency, debit_minor, credit_minor, created_at) \
                             values ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(Uuid::now_v7())
                        .bind(settlement.settlement_id)
                        .bind(account)
                        .bind(&settlement.currency)
                        .bind(debit)
                        .bind(credit)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                sqlx::query("delete from settlement_outbox where settlement_id = $1")
                    .bind(settlement.settlement_id)
                    .execute(&mut *tx)
                    .await?;
                audit::append(
                    &mut tx,
                    now,
                    "settlement.failed",
                    settlement.settlement_id,
                    serde_json::json!({
                        "settlement_id": settlement.settlement_id,
                        "reference": settlement.reference,
                        "error": error,
                        "reversed_minor": settlement.amount_minor,
                    })
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await)
}
