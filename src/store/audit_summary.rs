//! The auditors' reconciliation totals, over the same range and filters as the export.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt as _;
use uuid::Uuid;

use super::export::{IN_RANGE, Range};
use super::{Db, StoreResult, on_db};
use crate::domain::session::SettlementStatus;

/// The totals of one operator's lot on one local day, in one currency (minor units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotals {
    pub operator_id: Uuid,
    pub lot_id: Uuid,
    /// The lot's local date the sessions ended on.
    pub day: NaiveDate,
    pub currency: String,
    pub sessions: u64,
    pub fees: i64,
    pub settled: i64,
    /// Fees without a settlement yet, or with one still being delivered.
    pub pending: i64,
    /// Fees the gateway refused: the drivers owe them.
    pub arrears: i64,
    /// Fees whose delivery gave up: the payment office decides.
    pub review: i64,
    /// Refunds not failed, of these sessions (at most `fees`).
    pub refunded: i64,
}

impl DayTotals {
    /// Whether the row reconciles: `fees = settled + pending + arrears + review` and
    /// `refunded <= fees` (checked sums: an overflow does not reconcile).
    pub fn reconciles(&self) -> bool {
        let parts = self
            .settled
            .checked_add(self.pending)
            .and_then(|sum| sum.checked_add(self.arrears))
            .and_then(|sum| sum.checked_add(self.review));
        parts == Some(self.fees) && self.refunded <= self.fees
    }
}

#[derive(sqlx::FromRow)]
struct Source {
    operator_id: Uuid,
    lot_id: Uuid,
    timezone: String,
    currency: String,
    ended_at: DateTime<Utc>,
    fee_minor: i64,
    settlement_status: Option<SettlementStatus>,
    refunded_minor: Option<i64>,
}

/// Sessions, fees and settled, pending, arrears, review and refunded totals per operator, lot, local day and
/// currency, in that order; over the export's own range, so their sums match the export's.
pub async fn per_lot_day(db: &Db, range: &Range) -> StoreResult<Vec<DayTotals>> {
    let sql = format!(
        "select s.operator_id, s.lot_id, l.timezone, s.currency, s.ended_at, s.fee_minor, \
         st.status as settlement_status, st.refunded_minor from session s \
         join lot l on l.lot_id = s.lot_id \
         left join settlement st on st.session_id = s.session_id \
         where {IN_RANGE}"
    );
    // Aggregated as rows arrive: memory grows with lots x days, not with sessions.
    let mut totals: BTreeMap<(Uuid, Uuid, NaiveDate, String), DayTotals> = BTreeMap::new();
    on_db!(db, pool => {
        let mut rows = sqlx::query_as::<_, Source>(sqlx::AssertSqlSafe(sql))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let tz: chrono_tz::Tz = row.timezone.parse().unwrap_or(chrono_tz::UTC);
            let day = row.ended_at.with_timezone(&tz).date_naive();
            let entry = totals
                .entry((row.operator_id, row.lot_id, day, row.currency))
                .or_insert_with_key(|(operator_id, lot_id, day, currency)| DayTotals {
                    operator_id: *operator_id,
                    lot_id: *lot_id,
                    day: *day,
                    currency: currency.clone(),
                    sessions: 0,
                    fees: 0,
                    settled: 0,
                    pending: 0,
                    arrears: 0,
                    review: 0,
                    refunded: 0,
                });
            entry.sessions += 1;
            let fee = row.fee_minor;
            let part = match row.settlement_status {
                Some(SettlementStatus::Settled) => &mut entry.settled,
                Some(SettlementStatus::Arrears) => &mut entry.arrears,
                Some(SettlementStatus::Review) => &mut entry.review,
                Some(SettlementStatus::Pending) | None => &mut entry.pending,
            };
            // Checked: sums that overflow are a fault to report, not a wrap to publish.
            *part = checked(part.checked_add(fee))?;
            entry.fees = checked(entry.fees.checked_add(fee))?;
            entry.refunded = checked(entry.refunded.checked_add(row.refunded_minor.unwrap_or(0)))?;
        }
    });
    Ok(totals.into_values().collect())
}

fn checked(sum: Option<i64>) -> StoreResult<i64> {
    sum.ok_or_else(|| {
        super::StoreError::Database(sqlx::Error::Protocol(
            "an audit summary total overflows 64 bits".to_owned(),
        ))
    })
}
