//! The append-only double-entry ledger (docs/money.md): postings written in the
//! transaction of the change they book, and the reconciliation of every account's balance
//! with the settlements' and refunds' states.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};
use uuid::Uuid;

use super::{Db, StoreResult, on_db};
use crate::domain::ledger::{Account, Event};

/// One money event to book: `amount_minor` of `currency` on the event's two accounts.
#[derive(Debug, Clone)]
pub struct Posting<'a> {
    pub event: Event,
    pub settlement_id: Uuid,
    pub refund_id: Option<Uuid>,
    pub driver: &'a str,
    pub operator_id: Uuid,
    pub currency: &'a str,
    pub amount_minor: i64,
}

/// Books `posting` within `tx`: a debit and a credit of the same amount. A zero amount
/// books nothing (the ledger holds no empty entries).
pub(crate) async fn post<DB>(
    tx: &mut Transaction<'_, DB>,
    at: DateTime<Utc>,
    posting: &Posting<'_>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    if posting.amount_minor <= 0 {
        return Ok(());
    }
    let (debit, credit) = posting.event.posting(posting.driver, posting.operator_id);
    // Both legs in one statement: one round trip, and never one leg without the other.
    sqlx::query(
        "insert into ledger_entry (ledger_entry_id, settlement_id, refund_id, event, account, \
         currency, debit_minor, credit_minor, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, 0, $8), ($9, $2, $3, $4, $10, $6, 0, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(posting.settlement_id)
    .bind(posting.refund_id)
    .bind(posting.event.as_str())
    .bind(debit.to_string())
    .bind(posting.currency)
    .bind(posting.amount_minor)
    .bind(at)
    .bind(Uuid::now_v7())
    .bind(credit.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Debits and credits per currency over the whole ledger (they must be equal).
pub async fn totals(db: &Db) -> StoreResult<Vec<(String, i64, i64)>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "select currency, cast(coalesce(sum(debit_minor), 0) as bigint), \
         cast(coalesce(sum(credit_minor), 0) as bigint) \
         from ledger_entry group by currency order by currency",
    )
    .fetch_all(pool)
    .await?))
}

/// An account's balance (debit minus credit) beside what the states say it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCheck {
    pub account: String,
    pub currency: String,
    pub balance: i64,
    pub expected: i64,
}

/// The books against the states: per currency the debits and credits, and every account
/// that has a balance or should have one.
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    /// `(currency, debits, credits)`.
    pub totals: Vec<(String, i64, i64)>,
    pub accounts: Vec<AccountCheck>,
}

impl Reconciliation {
    /// Every discrepancy, said in words; empty when the books reconcile.
    pub fn problems(&self) -> Vec<String> {
        let unbalanced = self
            .totals
            .iter()
            .filter(|(_, debit, credit)| debit != credit)
            .map(|(currency, debit, credit)| {
                format!("{currency}: debits {debit} but credits {credit}")
            });
        let mismatched = self
            .accounts
            .iter()
            .filter(|a| a.balance != a.expected)
            .map(|a| {
                format!(
                    "{} ({}): balance {} but the states say {}",
                    a.account, a.currency, a.balance, a.expected
                )
            });
        unbalanced.chain(mismatched).collect()
    }
}

/// Reconciles the ledger with the settlements and refunds: debits equal credits per
/// currency, each driver's receivable is the sum of their arrears, gateway clearing holds
/// the fees pending, settled or in review less the refunds not failed, each operator's
/// revenue is the sum of its fees and its refunds account the sum of its refunds not
/// failed; accounts from before migration 0009 are at zero.
pub async fn reconcile(db: &Db) -> StoreResult<Reconciliation> {
    let totals = totals(db).await?;
    let mut checks: BTreeMap<(String, String), AccountCheck> = BTreeMap::new();
    fn slot(
        checks: &mut BTreeMap<(String, String), AccountCheck>,
        account: String,
        currency: String,
    ) -> &mut AccountCheck {
        checks
            .entry((account.clone(), currency.clone()))
            .or_insert(AccountCheck {
                account,
                currency,
                balance: 0,
                expected: 0,
            })
    }
    let balances: Vec<(String, String, i64)> = on_db!(db, pool => sqlx::query_as(
        "select account, currency, cast(sum(debit_minor) - sum(credit_minor) as bigint) \
         from ledger_entry group by account, currency",
    )
    .fetch_all(pool)
    .await?);
    for (account, currency, balance) in balances {
        slot(&mut checks, account, currency).balance += balance;
    }
    // What the states say. Operators' accounts are named here, in Rust, so that the ids are
    // written alike on both backends (SQLite stores them as blobs).
    let arrears: Vec<(String, String, i64)> = on_db!(db, pool => sqlx::query_as(
        "select driver, currency, cast(sum(amount_minor) as bigint) from settlement \
         where status = 'arrears' group by driver, currency",
    )
    .fetch_all(pool)
    .await?);
    for (driver, currency, amount) in arrears {
        slot(
            &mut checks,
            Account::DriverReceivable(driver).to_string(),
            currency,
        )
        .expected += amount;
    }
    let by_operator = |table: &str, filter: &str| {
        format!(
            "select operator_id, currency, cast(sum(amount_minor) as bigint) from {table} \
             where {filter} group by operator_id, currency"
        )
    };
    let fees: Vec<(Uuid, String, i64)> = on_db!(db, pool => sqlx::query_as(
        sqlx::AssertSqlSafe(by_operator("settlement", "status <> 'arrears'")),
    )
    .fetch_all(pool)
    .await?);
    let owed: Vec<(Uuid, String, i64)> = on_db!(db, pool => sqlx::query_as(
        sqlx::AssertSqlSafe(by_operator("settlement", "status = 'arrears'")),
    )
    .fetch_all(pool)
    .await?);
    let refunds: Vec<(Uuid, String, i64)> = on_db!(db, pool => sqlx::query_as(
        sqlx::AssertSqlSafe(by_operator("refund", "status <> 'failed'")),
    )
    .fetch_all(pool)
    .await?);
    for (operator, currency, amount) in fees {
        slot(
            &mut checks,
            Account::GatewayClearing.to_string(),
            currency.clone(),
        )
        .expected += amount;
        slot(
            &mut checks,
            Account::OperatorRevenue(operator).to_string(),
            currency,
        )
        .expected -= amount;
    }
    for (operator, currency, amount) in owed {
        slot(
            &mut checks,
            Account::OperatorRevenue(operator).to_string(),
            currency,
        )
        .expected -= amount;
    }
    for (operator, currency, amount) in refunds {
        slot(
            &mut checks,
            Account::GatewayClearing.to_string(),
            currency.clone(),
        )
        .expected -= amount;
        slot(
            &mut checks,
            Account::Refunds(operator).to_string(),
            currency,
        )
        .expected += amount;
    }
    Ok(Reconciliation {
        totals,
        accounts: checks.into_values().collect(),
    })
}
