//! Reading an export's range: the stopped sessions with `ended_at` in `[from, to)`, in the
//! order of their place in the audit chain, from one snapshot, as fast as each backend
//! allows. The encoding, chaining and signing are `crate::audit::export`'s.
//!
//! Why SQLite is read on a connection of its own, outside the pool and outside sqlx
//! (`sqlite.rs`):
//! - the pool's connections stay free for parking traffic however long an export runs (it
//!   goes at the pace of the client that downloads it);
//! - the bounds and every record come from one read transaction, so from one snapshot:
//!   writers go on meanwhile (WAL), and the export sees none of their changes;
//! - rusqlite reads typed values straight from SQLite's rows on a blocking thread, no
//!   per-row cost on top, and hands them on in batches of [`PAGE`] while the previous
//!   batch is encoded. sqlx sends every row from its worker thread to the caller and
//!   copies each value on the way, which costs more than reading the row: even with
//!   SQLite formatting 1,000 records into one text per row, the export read
//!   227,000-401,000 records/s through sqlx, against 571,000-674,000 on its own connection
//!   (docs/BENCHMARKS.md, "Auditor export": 1,000,000 sessions, two cores).
//!
//! rusqlite links the same SQLite library as sqlx; it binds the range as sqlx stores
//! values, through `sqlite_values.rs` (a test there proves the match).
//!
//! PostgreSQL streams typed rows through a cursor of one read-only, repeatable-read
//! transaction (`postgres.rs`), [`PAGE`] at a time, the next batch read while this one is
//! encoded; the server works on its own core.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, on_db};
use crate::config::Backend;
use crate::domain::session::EndedBy;

mod postgres;
mod sqlite;
mod sqlite_values;

/// Which sessions an export holds: stopped, with `ended_at` in `[from, to)`, optionally of
/// one operator or one lot.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub operator: Option<Uuid>,
    pub lot: Option<Uuid>,
}

/// A stopped session as the database holds it, borrowed from the row or batch it came in.
#[derive(Debug)]
pub struct Stored<'a> {
    pub session_id: Uuid,
    pub operator_id: Uuid,
    pub lot_id: Uuid,
    pub space_code: &'a str,
    pub driver: &'a str,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub currency: &'a str,
    pub fee_minor: Option<i64>,
    pub tariff_version: i64,
    /// The fee breakdown as stored (JSON).
    pub fee: Option<&'a str>,
    pub settlement_status: Option<&'a str>,
    pub settlement_reference: Option<&'a str>,
    pub audit_seq: i64,
    pub audit_hash: Option<[u8; 32]>,
    /// The normalised plate; `None` when none was given or retention erased it.
    pub plate: Option<&'a str>,
    /// Who or what ended the session (never null once it stopped).
    pub ended_by: EndedBy,
    /// The settlement's refunds not failed, in minor units.
    pub refunded_minor: Option<i64>,
}

/// Where [`for_each`] hands the records.
pub trait Records {
    /// Takes the next batch, in chain order; an error stops the read.
    fn take(&mut self, batch: &[Stored<'_>]) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The stopped sessions of a range (`$1`..`$4`: from, to, operator, lot), for a query on
/// `session s`: the export's and the reconciliation summary's. Sealed ones only (with their
/// place in the audit chain): a stop whose event still waits for the sealer is not in the
/// chain yet, so not in an export (callers seal what is pending first: `audit::seal_pending`).
pub(super) const IN_RANGE: &str = "s.status = 'stopped' and s.audit_seq is not null \
    and s.ended_at >= $1 and s.ended_at < $2 and ($3 is null or s.operator_id = $3) \
    and ($4 is null or s.lot_id = $4)";

/// The first and last chain position of a range's records, and their number.
/// On SQLite the range's index is named: without statistics the planner may walk the
/// whole table instead.
fn bounds_sql(backend: Backend) -> String {
    let from = match backend {
        Backend::Sqlite => "session s indexed by session_stopped_ended_idx",
        Backend::Postgres => "session s",
    };
    format!("select min(s.audit_seq), max(s.audit_seq), count(*) from {from} where {IN_RANGE}")
}

/// Records per SQLite and per PostgreSQL batch.
const PAGE: usize = 1000;

/// The columns of a record, in [`Stored`]'s order.
const COLUMNS: &str = "s.session_id, s.operator_id, s.lot_id, sp.code, s.driver, \
    s.started_at, s.ended_at, s.currency, s.fee_minor, s.tariff_version, s.fee_lines, \
    st.status, st.reference, s.audit_seq, s.audit_hash, s.plate, s.ended_by, st.refunded_minor";

/// The range's records in chain order, from the first chain position `$5` to the last
/// `$6` (found with [`bounds_sql`] in the same snapshot, so a narrow range in a long chain
/// walks only its own stretch). The plans are spelled out where the backend allows:
/// - SQLite: sessions in the chain's order as the outer loop (`indexed by`; `cross join`
///   keeps it outside), each settlement through the covering index on its session.
/// - PostgreSQL: settlements in the same order as sessions, through the covering index on
///   the session's chain place each settlement carries, so the two are merge-joined side
///   by side rather than looked up one by one (migration 0007).
fn records_sql(backend: Backend) -> String {
    let (session, space, settlement) = match backend {
        Backend::Sqlite => (
            "session s indexed by session_audit_seq_key",
            "cross join space sp",
            "left join settlement st indexed by settlement_session_export_idx \
             on st.session_id = s.session_id",
        ),
        Backend::Postgres => (
            "session s",
            "join space sp",
            "left join settlement st on st.session_audit_seq = s.audit_seq \
             and st.session_audit_seq between $5 and $6",
        ),
    };
    format!(
        "select {COLUMNS} from {session} {space} on sp.space_id = s.space_id {settlement} \
         where {IN_RANGE} and s.audit_seq between $5 and $6 order by s.audit_seq"
    )
}

fn required<T>(value: Option<T>, name: &str) -> anyhow::Result<T> {
    value.ok_or_else(|| anyhow::anyhow!("a stopped session has no {name}"))
}

/// How many records a range holds (for progress).
pub async fn count(db: &Db, range: &Range) -> StoreResult<i64> {
    let sql = bounds_sql(db.backend());
    let (_, _, count): (Option<i64>, Option<i64>, i64) = on_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .fetch_one(pool)
            .await)?;
    Ok(count)
}

/// Hands every record of the range to `records`, in chain order, from one snapshot.
pub async fn for_each(db: &Db, range: &Range, records: &mut impl Records) -> anyhow::Result<()> {
    match db {
        Db::Sqlite(pool) => sqlite::for_each(pool, range, records).await,
        Db::Postgres(pool) => postgres::for_each(pool, range, records).await,
    }
}
