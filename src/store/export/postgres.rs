//! The export's PostgreSQL read: a cursor of one read-only, repeatable-read transaction.

use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PAGE, Range, Records, Stored, bounds_sql, records_sql, required};
use crate::config::Backend;
use crate::domain::session::EndedBy;

fn record(row: &PgRow) -> anyhow::Result<Stored<'_>> {
    let audit_hash: Option<&[u8]> = row.try_get(14)?;
    Ok(Stored {
        session_id: row.try_get(0)?,
        operator_id: row.try_get(1)?,
        lot_id: row.try_get(2)?,
        space_code: row.try_get(3)?,
        driver: row.try_get(4)?,
        started_at: row.try_get(5)?,
        ended_at: row.try_get(6)?,
        currency: row.try_get(7)?,
        fee_minor: row.try_get(8)?,
        tariff_version: i64::from(row.try_get::<i32, _>(9)?),
        fee: row.try_get(10)?,
        settlement_status: row.try_get(11)?,
        settlement_reference: row.try_get(12)?,
        audit_seq: row.try_get(13)?,
        audit_hash: audit_hash.map(<[u8; 32]>::try_from).transpose()?,
        plate: row.try_get(15)?,
        ended_by: required(row.try_get::<Option<EndedBy>, _>(16)?, "ending")?,
        refunded_minor: row.try_get(17)?,
    })
}

/// Hands every record of the range to `records`, [`PAGE`] at a time.
pub(super) async fn for_each(
    pool: &sqlx::PgPool,
    range: &Range,
    records: &mut impl Records,
) -> anyhow::Result<()> {
    // One snapshot for the bounds and the records.
    let mut tx = pool
        .begin_with("begin isolation level repeatable read, read only")
        .await?;
    // Compiling the plan costs more than a streamed walk gains from it.
    sqlx::query("set local jit = off").execute(&mut *tx).await?;
    let (first, last, _): (Option<i64>, Option<i64>, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(bounds_sql(Backend::Postgres)))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .fetch_one(&mut *tx)
            .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    // A cursor: PostgreSQL plans it to start streaming at once (walking the chain's index)
    // rather than to sort the whole range first, and its batches let the server read the
    // next one while this process encodes.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "declare export no scroll cursor for {}",
        records_sql(Backend::Postgres)
    )))
    .bind(range.from)
    .bind(range.to)
    .bind(range.operator)
    .bind(range.lot)
    .bind(first)
    .bind(last)
    .execute(&mut *tx)
    .await?;
    let fetch = format!("fetch forward {PAGE} from export");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(fetch.clone()))
        .fetch_all(&mut *tx)
        .await?;
    while !rows.is_empty() {
        let encode = async {
            let batch = rows
                .iter()
                .map(record)
                .collect::<anyhow::Result<Vec<_>>>()?;
            records.take(&batch).await
        };
        let (next, encoded) = tokio::join!(
            sqlx::query(sqlx::AssertSqlSafe(fetch.clone())).fetch_all(&mut *tx),
            encode
        );
        encoded?;
        rows = next?;
    }
    tx.rollback().await?;
    Ok(())
}
