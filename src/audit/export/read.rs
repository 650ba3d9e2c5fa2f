//! Reading a range's stopped sessions in chain order, as fast as each backend allows.
//!
//! - SQLite's driver hands every row from its worker thread to the caller, which costs
//!   more than the row itself. So SQLite writes a page of [`PAGE`] records as one text (see
//!   [`sqlite_page_sql`]: free text length-prefixed, so no content can pass for a
//!   separator); pages are read by keyset on the chain position in one read transaction,
//!   the next page read on SQLite's thread while this one is encoded.
//! - PostgreSQL streams typed rows through a cursor (one snapshot), [`PAGE`] at a time,
//!   the next batch read while this one is encoded; the server works on its own core.

use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::encode::Stored;
use super::{Output, Range};
use crate::config::Backend;
use crate::domain::audit::parse_hash;

/// The stopped sessions of a range (`$1`..`$4`: from, to, operator, lot), for a query on
/// `session s`: the export's and the reconciliation summary's.
pub const IN_RANGE: &str = "s.status = 'stopped' and s.ended_at >= $1 and s.ended_at < $2 \
    and ($3 is null or s.operator_id = $3) and ($4 is null or s.lot_id = $4)";

/// The first and last chain position of a range's records, and their number.
/// On SQLite the range's index is named: without statistics the planner may walk the
/// whole table instead.
pub(super) fn bounds_sql(backend: Backend) -> String {
    let from = match backend {
        Backend::Sqlite => "session s indexed by session_stopped_ended_idx",
        Backend::Postgres => "session s",
    };
    format!("select min(s.audit_seq), max(s.audit_seq), count(*) from {from} where {IN_RANGE}")
}

/// Records per SQLite page (about half a megabyte of text) and per PostgreSQL batch.
const PAGE: i64 = 1000;

/// The columns of a record, in [`Stored`]'s order.
const COLUMNS: &str = "s.session_id, s.operator_id, s.lot_id, sp.code, s.driver, \
    s.started_at, s.ended_at, s.currency, s.fee_minor, s.tariff_version, s.fee_lines, \
    st.status, st.reference, s.audit_seq, s.audit_hash";

const JOINS: &str = "join space sp on sp.space_id = s.space_id \
    left join settlement st on st.session_id = s.session_id";

/// One SQLite page: the records after chain position `$5` up to `$6`, `$7` at most, as one
/// text, with the page's count and last position. The plan is spelled out so that it does
/// not depend on whether the connection has statistics: sessions in the chain's order as
/// the outer loop (`cross join` keeps it outside), the covering index for settlements. Each record is written by one `printf`
/// (concatenating with `||` copies the record once per operator): the ids and the audit
/// hash in fixed-width hex; the chain position, instants, currency, amounts and settlement
/// status each ended by `;`; the texts a driver or an operator chose, and the breakdown,
/// as `<byte length>:<bytes>`, so no content can pass for a separator. Nulls are `-`
/// where the schema allows them.
fn sqlite_page_sql() -> String {
    format!(
        "select group_concat(rec, ''), count(*), max(seq) from (\
         select s.audit_seq as seq, printf('%s%s%s%s%d;%s;%s;%s;%d;%d;%s;%d:%s%d:%s%s%d:%s', \
         hex(s.session_id), hex(s.operator_id), hex(s.lot_id), hex(s.audit_hash), \
         s.audit_seq, s.started_at, s.ended_at, s.currency, s.fee_minor, s.tariff_version, \
         ifnull(st.status, '-'), octet_length(sp.code), sp.code, octet_length(s.driver), s.driver, \
         ifnull(octet_length(st.reference) || ':' || st.reference, '-'), \
         octet_length(s.fee_lines), s.fee_lines) as rec \
         from session s indexed by session_audit_seq_key \
         cross join space sp on sp.space_id = s.space_id \
         left join settlement st indexed by settlement_session_export_idx \
         on st.session_id = s.session_id \
         where {IN_RANGE} and s.audit_seq > $5 and s.audit_seq <= $6 \
         order by s.audit_seq limit $7) page"
    )
}

fn postgres_sql() -> String {
    format!("select {COLUMNS} from session s {JOINS} where {IN_RANGE} order by s.audit_seq")
}

/// A cursor over a SQLite page (see [`sqlite_page_sql`]).
struct Page<'a> {
    text: &'a str,
}

impl<'a> Page<'a> {
    fn malformed() -> anyhow::Error {
        anyhow::anyhow!("an export page is malformed")
    }

    fn take(&mut self, length: usize) -> anyhow::Result<&'a str> {
        let value = self.text.get(..length).ok_or_else(Self::malformed)?;
        self.text = &self.text[length..];
        Ok(value)
    }

    /// A field ended by `;`.
    fn until_semicolon(&mut self) -> anyhow::Result<&'a str> {
        let (value, rest) = self.text.split_once(';').ok_or_else(Self::malformed)?;
        self.text = rest;
        Ok(value)
    }

    /// A `<byte length>:<bytes>` field, or `-` for null.
    fn prefixed(&mut self) -> anyhow::Result<Option<&'a str>> {
        if let Some(rest) = self.text.strip_prefix('-') {
            self.text = rest;
            return Ok(None);
        }
        let (length, rest) = self.text.split_once(':').ok_or_else(Self::malformed)?;
        self.text = rest;
        let length = length.parse().map_err(|_| Self::malformed())?;
        self.take(length).map(Some)
    }

    fn record(&mut self) -> anyhow::Result<Stored<'a>> {
        let id = |hex: &str| Uuid::try_parse(hex);
        let session_id = id(self.take(32)?)?;
        let operator_id = id(self.take(32)?)?;
        let lot_id = id(self.take(32)?)?;
        let audit_hash = parse_hash(self.take(64)?).ok_or_else(Self::malformed)?;
        Ok(Stored {
            session_id,
            operator_id,
            lot_id,
            audit_hash: Some(audit_hash),
            audit_seq: self.until_semicolon()?.parse()?,
            started_at: instant(self.until_semicolon()?)?,
            ended_at: Some(instant(self.until_semicolon()?)?),
            currency: self.until_semicolon()?,
            fee_minor: Some(self.until_semicolon()?.parse()?),
            tariff_version: self.until_semicolon()?.parse()?,
            settlement_status: Some(self.until_semicolon()?).filter(|s| *s != "-"),
            space_code: required(self.prefixed()?, "space")?,
            driver: required(self.prefixed()?, "driver")?,
            settlement_reference: self.prefixed()?,
            fee: Some(required(self.prefixed()?, "breakdown")?),
        })
    }
}

fn required<T>(value: Option<T>, name: &str) -> anyhow::Result<T> {
    value.ok_or_else(|| anyhow::anyhow!("a stopped session has no {name}"))
}

/// An instant as SQLite holds it (RFC 3339).
fn instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

fn postgres_record(row: &PgRow) -> anyhow::Result<Stored<'_>> {
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
    })
}

/// Hands every record of the range to `output`, in chain order, from one snapshot.
pub(super) async fn for_each(
    db: &crate::store::Db,
    range: &Range,
    output: &mut Output<'_>,
) -> anyhow::Result<()> {
    match db {
        crate::store::Db::Sqlite(pool) => sqlite_pages(pool, range, output).await,
        crate::store::Db::Postgres(pool) => postgres_rows(pool, range, output).await,
    }
}

async fn postgres_rows(
    pool: &sqlx::PgPool,
    range: &Range,
    output: &mut Output<'_>,
) -> anyhow::Result<()> {
    // A cursor: PostgreSQL plans it to start streaming at once (walking the chain's index)
    // rather than to sort the whole range first, and its batches let the server read the
    // next one while this process encodes.
    let mut tx = pool.begin().await?;
    // Compiling the plan costs more than a streamed walk gains from it.
    sqlx::query("set local jit = off").execute(&mut *tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "declare export no scroll cursor for {}",
        postgres_sql()
    )))
    .bind(range.from)
    .bind(range.to)
    .bind(range.operator)
    .bind(range.lot)
    .execute(&mut *tx)
    .await?;
    let fetch = format!("fetch forward {PAGE} from export");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(fetch.clone()))
        .fetch_all(&mut *tx)
        .await?;
    while !rows.is_empty() {
        let encode = async {
            let records = rows
                .iter()
                .map(postgres_record)
                .collect::<anyhow::Result<Vec<_>>>()?;
            output.take(&records).await
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

async fn sqlite_pages(
    pool: &sqlx::SqlitePool,
    range: &Range,
    output: &mut Output<'_>,
) -> anyhow::Result<()> {
    // One read transaction: every page reads the same snapshot.
    let mut tx = pool.begin().await?;
    let (first, last, _): (Option<i64>, Option<i64>, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(bounds_sql(Backend::Sqlite)))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .fetch_one(&mut *tx)
            .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    let sql = sqlite_page_sql();
    macro_rules! fetch {
        ($after:expr) => {
            sqlx::query_as::<_, (Option<String>, i64, Option<i64>)>(sqlx::AssertSqlSafe(
                sql.clone(),
            ))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .bind($after)
            .bind(last)
            .bind(PAGE)
            .fetch_one(&mut *tx)
        };
    }
    let mut next = fetch!(first - 1).await?;
    loop {
        let (text, rows, page_last) = next;
        let more = rows == PAGE && page_last.is_some_and(|seq| seq < last);
        let encode = async {
            let records = page_records(text.as_deref().unwrap_or(""), rows)?;
            output.take(&records).await
        };
        let Some(after) = page_last.filter(|_| more) else {
            encode.await?;
            break;
        };
        // SQLite reads the next page on its worker thread while this one is encoded.
        let (fetched, encoded) = tokio::join!(fetch!(after), encode);
        encoded?;
        next = fetched?;
    }
    tx.rollback().await?;
    Ok(())
}

/// The records of a SQLite page, in chain order.
fn page_records(text: &str, rows: i64) -> anyhow::Result<Vec<Stored<'_>>> {
    let mut page = Page { text };
    let mut records = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
    while !page.text.is_empty() {
        records.push(page.record()?);
    }
    // A record the schema should have refused (a null where none may be) would be missing
    // from the text: never export less than the page holds.
    anyhow::ensure!(
        i64::try_from(records.len()) == Ok(rows),
        "an export page holds {} of its {rows} records",
        records.len()
    );
    // SQLite aggregates in the order the ordered subquery yields, which it does not
    // promise; sorting an already sorted page costs one pass.
    records.sort_by_key(|record| record.audit_seq);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as SQLite's `printf` writes it.
    fn sqlite_text(seq: i64, driver: &str, reference: Option<&str>, status: &str) -> String {
        let prefixed = |t: &str| format!("{}:{t}", t.len());
        format!(
            "{}{}{}{}{seq};2026-09-29T02:00:00+00:00;2026-09-29T03:00:00.5+00:00;CNY;1000;2;{status};{}{}{}{}",
            "0190F0A2B3C47D8E9F00112233445566",
            "0190F0A2B3C47D8E9F00112233445567",
            "0190F0A2B3C47D8E9F00112233445568",
            "AB".repeat(32),
            prefixed("A-1"),
            prefixed(driver),
            reference.map_or("-".to_owned(), prefixed),
            prefixed(r#"{"total":"10.00"}"#),
        )
    }

    #[test]
    fn pages_read_back_every_field_whatever_the_texts_hold() {
        let driver = "d;1:2-3, \"ü中\"\n";
        let text = format!(
            "{}{}",
            sqlite_text(9, driver, None, "-"),
            sqlite_text(7, "x", Some("QRP-1;2"), "settled")
        );
        let records = page_records(&text, 2).unwrap();
        // In chain order whatever order the page came in.
        assert_eq!(records[0].audit_seq, 7);
        assert_eq!(records[1].audit_seq, 9);
        let first = &records[1];
        assert_eq!(first.driver, driver);
        assert_eq!(first.settlement_reference, None);
        assert_eq!(first.settlement_status, None);
        assert_eq!(first.space_code, "A-1");
        assert_eq!(first.fee, Some(r#"{"total":"10.00"}"#));
        assert_eq!(first.fee_minor, Some(1000));
        assert_eq!(first.tariff_version, 2);
        assert_eq!(first.audit_hash, Some([0xab; 32]));
        assert_eq!(
            first.session_id.to_string(),
            "0190f0a2-b3c4-7d8e-9f00-112233445566"
        );
        assert_eq!(
            first.ended_at.unwrap().to_rfc3339(),
            "2026-09-29T03:00:00.500+00:00"
        );
        assert_eq!(records[0].settlement_reference, Some("QRP-1;2"));
        assert_eq!(records[0].settlement_status, Some("settled"));
    }

    #[test]
    fn malformed_or_short_pages_are_errors_not_fewer_records() {
        let good = sqlite_text(1, "d", None, "-");
        assert!(page_records(&good, 2).is_err(), "a record missing");
        assert!(
            page_records(&good[..good.len() - 1], 1).is_err(),
            "truncated"
        );
        assert!(page_records(&good.replacen("3:A-1", "9:A-1", 1), 1).is_err());
        assert!(page_records(&good.replacen("CNY;", "CNY", 1), 1).is_err());
        assert!(page_records(&good.replacen("0190F0A2", "0190F0AZ", 1), 1).is_err());
        assert!(page_records("", 0).unwrap().is_empty());
    }
}
