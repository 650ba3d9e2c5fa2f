//! Refunds (docs/money.md): an operator gives back part or all of a settled fee. The bound
//! "never more than was charged" is the settlement's `refunded_minor`, raised in the
//! refund's own transaction by a conditional update and held by a check: however many
//! refunds race, their sum stays within the fee.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::audit;
use super::ledger::{self, Posting};
use super::outbox::Outcome;
use super::sessions::{IdempotentAnswer, Settlement};
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::ledger::Event;
use crate::domain::session::{RefundStatus, SettlementStatus};

/// A refund as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refund {
    pub refund_id: Uuid,
    pub session_id: Uuid,
    pub settlement_id: Uuid,
    pub operator_id: Uuid,
    pub reference: String,
    pub currency: String,
    pub amount_minor: i64,
    pub reason: String,
    pub status: RefundStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "refund_id, session_id, settlement_id, operator_id, reference, currency, \
                       amount_minor, reason, status, attempts, last_error, created_at, \
                       updated_at, refunded_at";

/// Why a refund was not made.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The fee was not collected (pending, arrears or review): nothing to give back yet.
    #[error("the settlement is {0}, not settled")]
    NotSettled(SettlementStatus),
    /// With the refunds already made it would give back more than was charged.
    #[error("{refunded} of {charged} already refunded")]
    ExceedsCharge { charged: i64, refunded: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RefundError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

/// Makes `refund` against `settlement`, in one transaction with its ledger posting, its
/// outbox row (when `deliver`; otherwise it is refunded at once), its audit event and the
/// idempotency key's answer.
pub async fn create(
    db: &Db,
    settlement: &Settlement,
    refund: &Refund,
    deliver: bool,
    answer: &IdempotentAnswer,
) -> Result<(), RefundError> {
    let now = refund.created_at;
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        // The bound, raised atomically: a refund that would pass the fee changes nothing.
        let raised = sqlx::query(
            "update settlement set refunded_minor = refunded_minor + $2, updated_at = $3 \
             where settlement_id = $1 and status = 'settled' \
             and refunded_minor + $2 <= amount_minor",
        )
        .bind(settlement.settlement_id)
        .bind(refund.amount_minor)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if raised == 0 {
            let (status, charged, refunded): (SettlementStatus, i64, i64) = sqlx::query_as(
                "select status, amount_minor, refunded_minor from settlement where settlement_id = $1",
            )
            .bind(settlement.settlement_id)
            .fetch_one(&mut *tx)
            .await?;
            return Err(if status == SettlementStatus::Settled {
                RefundError::ExceedsCharge { charged, refunded }
            } else {
                RefundError::NotSettled(status)
            });
        }
        let sql = format!(
            "insert into refund ({COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(refund.refund_id)
            .bind(refund.session_id)
            .bind(refund.settlement_id)
            .bind(refund.operator_id)
            .bind(&refund.reference)
            .bind(&refund.currency)
            .bind(refund.amount_minor)
            .bind(&refund.reason)
            .bind(refund.status)
            .bind(refund.attempts)
            .bind(&refund.last_error)
            .bind(refund.created_at)
            .bind(refund.updated_at)
            .bind(refund.refunded_at)
            .execute(&mut *tx)
            .await?;
        ledger::post(&mut tx, now, &posting(refund, Event::Refund)).await?;
        if deliver {
            sqlx::query(
                "insert into refund_outbox (refund_id, next_attempt_at, created_at) \
                 values ($1, $2, $2)",
            )
            .bind(refund.refund_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        audit::append(
            &mut tx,
            now,
            "refund.created",
            refund.refund_id,
            json!({
                "refund_id": refund.refund_id,
                "reference": refund.reference,
                "session_id": refund.session_id,
                "settlement_reference": settlement.reference,
                "operator_id": refund.operator_id,
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "reason": refund.reason,
                "status": refund.status.as_str(),
            }),
        )
        .await?;
        super::idempotency::finish_in(&mut tx, answer).await?;
        tx.commit().await?;
        Ok::<(), RefundError>(())
    }
    .await)
}

/// The ledger posting of `event` for a refund (refund events never touch a driver's
/// receivable, so no driver is named).
fn posting(refund: &Refund, event: Event) -> Posting<'_> {
    Posting {
        event,
        settlement_id: refund.settlement_id,
        refund_id: Some(refund.refund_id),
        driver: "",
        operator_id: refund.operator_id,
        currency: &refund.currency,
        amount_minor: refund.amount_minor,
    }
}

/// A refund by id.
pub async fn get(db: &Db, refund_id: Uuid) -> StoreResult<Option<Refund>> {
    let sql = format!("select {COLUMNS} from refund where refund_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Refund>(sqlx::AssertSqlSafe(sql))
        .bind(refund_id)
        .fetch_optional(pool)
        .await?))
}

/// A refund by its reference.
pub async fn by_reference(db: &Db, reference: &str) -> StoreResult<Option<Refund>> {
    let sql = format!("select {COLUMNS} from refund where reference = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Refund>(sqlx::AssertSqlSafe(sql))
        .bind(reference)
        .fetch_optional(pool)
        .await?))
}

/// The refunds of these sessions, oldest first (one query however many).
pub async fn of_sessions(db: &Db, session_ids: &[Uuid]) -> StoreResult<Vec<Refund>> {
    let select = format!("select {COLUMNS} from refund where session_id");
    super::fetch_by_ids(db, &select, session_ids, "order by created_at, refund_id").await
}

/// Refunds in `status` (any when `None`), oldest first.
pub async fn list(db: &Db, status: Option<RefundStatus>, limit: i64) -> StoreResult<Vec<Refund>> {
    let sql = format!(
        "select {COLUMNS} from refund where ($1 is null or status = $1) \
         order by created_at, refund_id limit $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Refund>(sqlx::AssertSqlSafe(sql))
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// A refund's move from one state to another, and what the audit log says of it.
struct Change<'a> {
    from: RefundStatus,
    to: RefundStatus,
    /// The audit event's kind.
    kind: &'a str,
    /// A delivery attempt's error.
    error: Option<&'a str>,
    /// The payment office's note.
    note: Option<&'a str>,
}

/// Moves a refund as `change` says: a failure also posts the reversing entries and lowers
/// the settlement's bound again. `false` when the refund was not in `change.from`.
async fn finish(
    db: &Db,
    refund: &Refund,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let Change {
        from,
        to,
        kind,
        error,
        note,
    } = change;
    let attempted = i32::from(note.is_none());
    let event = match (from, to) {
        (RefundStatus::Review, RefundStatus::Failed) => Some(Event::RefundResolvedFailed),
        (_, RefundStatus::Failed) => Some(Event::RefundRefused),
        _ => None,
    };
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update refund set status = $3, attempts = attempts + $4, last_error = $5, \
             updated_at = $6, refunded_at = case when $3 = 'refunded' then $6 end \
             where refund_id = $1 and status = $2",
        )
        .bind(refund.refund_id)
        .bind(from)
        .bind(to)
        .bind(attempted)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query("delete from refund_outbox where refund_id = $1")
            .bind(refund.refund_id)
            .execute(&mut *tx)
            .await?;
        if let Some(event) = event {
            sqlx::query(
                "update settlement set refunded_minor = refunded_minor - $2, updated_at = $3 \
                 where settlement_id = $1",
            )
            .bind(refund.settlement_id)
            .bind(refund.amount_minor)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            ledger::post(&mut tx, now, &posting(refund, event)).await?;
        }
        audit::append(
            &mut tx,
            now,
            kind,
            refund.refund_id,
            json!({
                "refund_id": refund.refund_id,
                "reference": refund.reference,
                "from": from.as_str(),
                "to": to.as_str(),
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "error": error,
                "note": note,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    }
    .await)
}

/// Records a refund delivery's outcome, if the refund is still pending.
pub async fn record_delivery(
    db: &Db,
    refund: &Refund,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let delivered = |to, kind, error| Change {
        from: RefundStatus::Pending,
        to,
        kind,
        error,
        note: None,
    };
    match outcome {
        Outcome::Retry {
            error,
            next_attempt_at,
        } => {
            on_db!(db, pool => async {
                let mut tx = pool.begin().await?;
                let changed = sqlx::query(
                    "update refund set attempts = attempts + 1, last_error = $2, updated_at = $3 \
                     where refund_id = $1 and status = 'pending'",
                )
                .bind(refund.refund_id)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    sqlx::query("update refund_outbox set next_attempt_at = $2 where refund_id = $1")
                        .bind(refund.refund_id)
                        .bind(*next_attempt_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<(), StoreError>(())
            }
            .await)
        }
        Outcome::Accepted => {
            let change = delivered(RefundStatus::Refunded, "refund.refunded", None);
            finish(db, refund, change, now).await.map(drop)
        }
        Outcome::Refused { error } => {
            let change = delivered(RefundStatus::Failed, "refund.failed", Some(error));
            finish(db, refund, change, now).await.map(drop)
        }
        Outcome::GaveUp { error } => {
            let change = delivered(RefundStatus::Review, "refund.review", Some(error));
            finish(db, refund, change, now).await.map(drop)
        }
    }
}

/// The payment office's decision on a refund in review: given back (`Refunded`) or not
/// (`Failed`). `false` when it was not in review.
pub async fn resolve(
    db: &Db,
    refund: &Refund,
    to: RefundStatus,
    note: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let change = Change {
        from: RefundStatus::Review,
        to,
        kind: "refund.resolved",
        error: None,
        note: Some(note),
    };
    finish(db, refund, change, now).await
}

/// Sends a refund in review to the gateway again (its reference is its idempotency key, so
/// it is never given back twice). `false` when it was not in review.
pub async fn retry(db: &Db, refund: &Refund, now: DateTime<Utc>) -> StoreResult<bool> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "update refund set status = 'pending', attempts = 0, last_error = null, \
             updated_at = $2 where refund_id = $1 and status = 'review'",
        )
        .bind(refund.refund_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "insert into refund_outbox (refund_id, next_attempt_at, created_at) values ($1, $2, $2)",
        )
        .bind(refund.refund_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            "refund.sent_again",
            refund.refund_id,
            json!({"refund_id": refund.refund_id, "reference": refund.reference}),
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    }
    .await)
}
