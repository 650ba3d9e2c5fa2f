//! What happens to a settlement after the stop (docs/money.md): delivered and settled,
//! refused into arrears, given up into review, sent again, resolved by the city's payment
//! office. Every change is a conditional update on the state it leaves, so of two racing
//! changes exactly one happens; its ledger posting and audit event commit with it.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::audit;
use super::ledger::{self, Posting};
use super::outbox::Outcome;
use super::sessions::{SETTLEMENT_COLUMNS, Settlement};
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::ledger::Event;
use crate::domain::session::SettlementStatus;

/// A settlement by id.
pub async fn get(db: &Db, settlement_id: Uuid) -> StoreResult<Option<Settlement>> {
    let sql = format!("select {SETTLEMENT_COLUMNS} from settlement where settlement_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(sqlx::AssertSqlSafe(sql))
        .bind(settlement_id)
        .fetch_optional(pool)
        .await?))
}

/// A settlement by its reference.
pub async fn by_reference(db: &Db, reference: &str) -> StoreResult<Option<Settlement>> {
    let sql = format!("select {SETTLEMENT_COLUMNS} from settlement where reference = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(sqlx::AssertSqlSafe(sql))
        .bind(reference)
        .fetch_optional(pool)
        .await?))
}

/// Settlements in `status` (any when `None`), oldest first.
pub async fn list(
    db: &Db,
    status: Option<SettlementStatus>,
    limit: i64,
) -> StoreResult<Vec<Settlement>> {
    let sql = format!(
        "select {SETTLEMENT_COLUMNS} from settlement where ($1 is null or status = $1) \
         order by created_at, settlement_id limit $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(sqlx::AssertSqlSafe(sql))
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// A driver's settlements in arrears, oldest debt first.
pub async fn arrears_of(db: &Db, driver: &str) -> StoreResult<Vec<Settlement>> {
    let sql = format!(
        "select {SETTLEMENT_COLUMNS} from settlement where driver = $1 and status = 'arrears' \
         order by arrears_since, settlement_id"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(sqlx::AssertSqlSafe(sql))
        .bind(driver)
        .fetch_all(pool)
        .await?))
}

/// Records a payment delivery's outcome, if the settlement is still pending in the round
/// that was delivered (a late answer of an older round changes nothing).
pub async fn record_delivery(
    db: &Db,
    settlement: &Settlement,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let s = settlement;
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let (status, error) = match outcome {
            Outcome::Retry { error, next_attempt_at } => {
                let changed = sqlx::query(
                    "update settlement set attempts = attempts + 1, last_error = $3, updated_at = $4 \
                     where settlement_id = $1 and status = 'pending' and payment_round = $2",
                )
                .bind(s.settlement_id)
                .bind(s.payment_round)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // A late answer of an older round leaves the current round's schedule alone.
                if changed == 1 {
                    sqlx::query("update settlement_outbox set next_attempt_at = $2 where settlement_id = $1")
                        .bind(s.settlement_id)
                        .bind(*next_attempt_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                return Ok(());
            }
            Outcome::Accepted => (SettlementStatus::Settled, None),
            Outcome::Refused { error } => (SettlementStatus::Arrears, Some(error)),
            Outcome::GaveUp { error } => (SettlementStatus::Review, Some(error)),
        };
        let changed = sqlx::query(
            "update settlement set status = $3, attempts = attempts + 1, last_error = $4, \
             updated_at = $5, \
             settled_at = case when $3 = 'settled' then $5 end, \
             arrears_since = case when $3 = 'arrears' then $5 end \
             where settlement_id = $1 and status = 'pending' and payment_round = $2",
        )
        .bind(s.settlement_id)
        .bind(s.payment_round)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            // Only the answer that moved the settlement ends its delivery: a late answer
            // of an older round must not take away the outbox row of the current one.
            sqlx::query("delete from settlement_outbox where settlement_id = $1")
                .bind(s.settlement_id)
                .execute(&mut *tx)
                .await?;
            if status == SettlementStatus::Arrears {
                ledger::post(&mut tx, now, &posting(s, Event::Refused)).await?;
            }
            audit::append(
                &mut tx,
                now,
                &format!("settlement.{status}"),
                s.settlement_id,
                json!({
                    "settlement_id": s.settlement_id,
                    "reference": s.reference,
                    "payment_round": s.payment_round,
                    "amount_minor": s.amount_minor,
                    "currency": s.currency,
                    "error": error,
                }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await)
}

/// The ledger posting of `event` for the whole of a settlement's fee.
fn posting(s: &Settlement, event: Event) -> Posting<'_> {
    Posting {
        event,
        settlement_id: s.settlement_id,
        refund_id: None,
        driver: &s.driver,
        operator_id: s.operator_id,
        currency: &s.currency,
        amount_minor: s.amount_minor,
    }
}

/// Who sends a payment again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentBy {
    /// The driver pays their arrears.
    Driver,
    /// The city's payment office (`qrpark settlement retry`).
    PaymentOffice,
}

impl SentBy {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::PaymentOffice => "payment_office",
        }
    }
}

/// Sends a settlement in `arrears` (a new payment round) or, for the payment office only, in
/// `review` (the same round again: the gateway's idempotency key keeps a charge from
/// happening twice) to the gateway again. Without a gateway (`deliver` false) arrears are
/// settled at once. `None` when the settlement was in neither state (nothing changed: read
/// it again); otherwise the settlement as it is now.
pub async fn send_again(
    db: &Db,
    settlement_id: Uuid,
    deliver: bool,
    by: SentBy,
    now: DateTime<Utc>,
) -> StoreResult<Option<Settlement>> {
    let Some(before) = get(db, settlement_id).await? else {
        return Ok(None);
    };
    let from = before.status;
    let round = match (from, by) {
        (SettlementStatus::Arrears, _) => before.payment_round + 1,
        (SettlementStatus::Review, SentBy::PaymentOffice) => before.payment_round,
        _ => return Ok(None),
    };
    // Nothing to charge is settled at once, as at the stop.
    let deliver = deliver && before.amount_minor > 0;
    let to = if deliver {
        SettlementStatus::Pending
    } else {
        SettlementStatus::Settled
    };
    let changed = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update settlement set status = $3, payment_round = $4, attempts = 0, \
             last_error = null, updated_at = $5, arrears_since = null, \
             settled_at = case when $3 = 'settled' then $5 end \
             where settlement_id = $1 and status = $2 and payment_round = $6",
        )
        .bind(settlement_id)
        .bind(from)
        .bind(to)
        .bind(round)
        .bind(now)
        .bind(before.payment_round)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        if from == SettlementStatus::Arrears {
            ledger::post(&mut tx, now, &posting(&before, Event::Repay)).await?;
        }
        if deliver {
            sqlx::query(
                "insert into settlement_outbox (settlement_id, next_attempt_at, created_at) \
                 values ($1, $2, $2)",
            )
            .bind(settlement_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        audit::append(
            &mut tx,
            now,
            "settlement.sent_again",
            settlement_id,
            json!({
                "settlement_id": settlement_id,
                "reference": before.reference,
                "from": from.as_str(),
                "to": to.as_str(),
                "payment_round": round,
                "by": by.as_str(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    }
    .await)?;
    if changed {
        get(db, settlement_id).await
    } else {
        Ok(None)
    }
}

/// The payment office's decision on a settlement in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The gateway did charge: settled.
    Settled,
    /// It did not: the driver owes it.
    Arrears,
}

/// Resolves a settlement in `review` as the payment office decided, with its note in the
/// audit log. `None` when it was not in review.
pub async fn resolve(
    db: &Db,
    settlement_id: Uuid,
    resolution: Resolution,
    note: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Settlement>> {
    let Some(before) = get(db, settlement_id).await? else {
        return Ok(None);
    };
    let to = match resolution {
        Resolution::Settled => SettlementStatus::Settled,
        Resolution::Arrears => SettlementStatus::Arrears,
    };
    let changed = on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update settlement set status = $2, updated_at = $3, \
             settled_at = case when $2 = 'settled' then $3 end, \
             arrears_since = case when $2 = 'arrears' then $3 end \
             where settlement_id = $1 and status = 'review'",
        )
        .bind(settlement_id)
        .bind(to)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        if to == SettlementStatus::Arrears {
            ledger::post(&mut tx, now, &posting(&before, Event::ResolvedArrears)).await?;
        }
        audit::append(
            &mut tx,
            now,
            "settlement.resolved",
            settlement_id,
            json!({
                "settlement_id": settlement_id,
                "reference": before.reference,
                "as": to.as_str(),
                "note": note,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    }
    .await)?;
    if changed {
        get(db, settlement_id).await
    } else {
        Ok(None)
    }
}
