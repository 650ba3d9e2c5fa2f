//! The audit chain in the database: events written with the change they record, into
//! `audit_pending`, and sealed into `audit_event` by a sealer (docs/audit.md, "Sealing").
//!
//! A change's transaction touches no row another writer needs: it only inserts its event.
//! The sealer alone takes the chain's head (`audit_head`), in a transaction of its own,
//! and moves a batch of pending events into the chain in the order they were written.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use super::{Db, StoreError, StoreResult, on_db, placeholders};
use crate::domain::audit::{self, Head, Pending, Sealed, canonical_json};

/// The row that takes an event's place in the chain (its number and hash) when the event
/// is sealed: the row points at its pending event until then (`audit_pending` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A stopped session: `session.audit_seq` and `audit_hash` (exports are in that order).
    Session,
    /// A recorded violation: `violation.audit_seq`.
    Violation,
}

impl Place {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Violation => "violation",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "session" => Some(Self::Session),
            "violation" => Some(Self::Violation),
            _ => None,
        }
    }
}

/// Writes an event for the audit chain within `tx`, the change's own transaction, so the
/// change and its event commit together or not at all; the sealer links it into the chain
/// later (within the sealing interval). Takes no lock: only a new row is written.
///
/// Write it after the statements whose locks the change waits for (on PostgreSQL the
/// pending id is drawn here, not at commit): then an event that depends on another
/// committed change always has the larger id, and the chain keeps causal order.
///
/// Generic over the backend so that both transactions call the one body: the bounds are
/// what the statement needs of it, and both SQLite and PostgreSQL meet them.
pub(crate) async fn append<DB>(
    tx: &mut Transaction<'_, DB>,
    now: DateTime<Utc>,
    kind: &str,
    entity_id: impl Display,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    sqlx::query("insert into audit_pending (at, kind, entity_id, payload) values ($1, $2, $3, $4)")
        .bind(now)
        .bind(kind.to_owned())
        .bind(entity_id.to_string())
        .bind(canonical_json(&payload))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Like [`append`], for an event whose chain place `place`'s row takes once it is sealed;
/// returns the pending event's id, which that row must hold in its `audit_pending` column
/// (written in the same transaction).
pub(crate) async fn append_placed<DB>(
    tx: &mut Transaction<'_, DB>,
    place: Place,
    now: DateTime<Utc>,
    kind: &str,
    entity_id: impl Display,
    payload: serde_json::Value,
) -> Result<i64, sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let (id,): (i64,) = sqlx::query_as(
        "insert into audit_pending (at, kind, entity_id, payload, place) \
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(now)
    .bind(kind.to_owned())
    .bind(entity_id.to_string())
    .bind(canonical_json(&payload))
    .bind(place.as_str().to_owned())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Most pending events one sealing transaction moves into the chain.
pub const BATCH: usize = 5000;

/// Rows per multi-row statement of the sealer: 7 values each stays far below both
/// backends' limits on bound parameters.
const CHUNK: usize = 1000;

/// Whether a sealer waits for the chain's head or leaves the round to whoever holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Wait (a read that must see every event committed before it).
    Wait,
    /// Skip the round if another sealer holds the head (the background sealers of every
    /// process). SQLite has one writer at a time: there every sealer waits its turn.
    Skip,
}

/// Seals at most [`BATCH`] pending events, oldest first, in one transaction; how many, or
/// `None` when another process's sealer held the head (`Turn::Skip`, PostgreSQL).
pub async fn seal_batch(db: &Db, turn: Turn) -> StoreResult<Option<usize>> {
    let (begin, head, settlements) = match (db, turn) {
        // One writer at a time: take the write lock at once, so that no other write slips
        // between reading the head and moving it.
        (Db::Sqlite(_), _) => ("begin immediate", HEAD, None),
        (Db::Postgres(_), Turn::Wait) => ("begin", HEAD_WAIT, Some(LOCK_SETTLEMENTS)),
        (Db::Postgres(_), Turn::Skip) => ("begin", HEAD_SKIP, Some(LOCK_SETTLEMENTS)),
    };
    on_db!(db, pool => async {
        let mut tx = pool.begin_with(begin).await?;
        let sealed = seal_in(&mut tx, head, settlements).await?;
        if sealed.is_some_and(|n| n > 0) {
            tx.commit().await?;
        }
        Ok::<_, StoreError>(sealed)
    }
    .await)
}

/// Seals everything pending, waiting for the head if another sealer holds it: what a read
/// of the chain or of the sessions' chain places calls first, so that it sees every change
/// committed before it (exports, the summary). How many events it sealed.
pub async fn seal_pending(db: &Db) -> StoreResult<u64> {
    // Usually the background sealers have sealed everything already: then a read takes no
    // lock at all. (A pending row seen here is sealed below; one deleted by a sealer that
    // has not committed yet is still seen, and waited for.)
    if !any_pending(db).await? {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let sealed = seal_batch(db, Turn::Wait).await?.unwrap_or(0);
        total += sealed as u64;
        if sealed < BATCH {
            return Ok(total);
        }
    }
}

/// Whether any event waits to be sealed (committed ones, or ones being sealed right now),
/// read without a lock: sealers check it before they take the head.
pub async fn any_pending(db: &Db) -> StoreResult<bool> {
    let sql = "select count(*) from (select 1 from audit_pending limit 1) as any_pending";
    let pending: i64 = on_db!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?;
    Ok(pending > 0)
}

const HEAD: &str = "select seq, hash, at from audit_head where id = 1";
const HEAD_WAIT: &str = "select seq, hash, at from audit_head where id = 1 for update";
const HEAD_SKIP: &str = "select seq, hash, at from audit_head where id = 1 for update skip locked";

/// PostgreSQL: the settlements of the stops being sealed are locked before their sessions.
/// Sealing a stop changes the session's unique chain place (a key lock on the session row)
/// and then, by trigger, its settlement's copy of it; a refund locks the settlement and
/// then key-shares the session (its foreign key). Taking the settlements first puts both
/// in the same order, so neither can wait on the other crosswise.
const LOCK_SETTLEMENTS: &str = "select settlement_id from settlement where session_id in \
     (select session_id from session where audit_pending in ({ids})) \
     order by settlement_id for no key update";

/// A pending row as read: id, at, kind, entity_id, payload, place.
type PendingRow = (i64, DateTime<Utc>, String, String, String, Option<String>);

/// The sealer's work within `tx`: takes the head with `head_sql` (`None` back: another
/// sealer has it), reads the oldest pending events, chains them, writes them into
/// `audit_event`, gives their rows their chain places, deletes them from `audit_pending`
/// and moves the head. All of it commits together or not at all, under the head's lock,
/// so each event is sealed exactly once.
async fn seal_in<DB>(
    tx: &mut Transaction<'_, DB>,
    head_sql: &'static str,
    lock_settlements: Option<&'static str>,
) -> Result<Option<usize>, StoreError>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    DB::QueryResult: Affected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> (i64, Vec<u8>, Option<DateTime<Utc>>): FromRow<'r, DB::Row>,
    for<'r> PendingRow: FromRow<'r, DB::Row>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    let head: Option<(i64, Vec<u8>, Option<DateTime<Utc>>)> =
        sqlx::query_as(head_sql).fetch_optional(&mut **tx).await?;
    let Some((seq, hash, at)) = head else {
        return Ok(None);
    };
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| corrupt("the chain's head hash is not 32 bytes".to_owned()))?;
    // Every pending event this transaction can see, oldest first. One whose transaction
    // has not committed is not seen, and waits for a later batch: it is never skipped,
    // because each batch reads whatever is left, not what follows the last id sealed.
    let rows: Vec<PendingRow> = sqlx::query_as(
        "select id, at, kind, entity_id, payload, place from audit_pending order by id limit $1",
    )
    .bind(BATCH as i64)
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(Some(0));
    }
    let mut pending = Vec::with_capacity(rows.len());
    let mut places = Vec::new();
    for (id, at, kind, entity_id, payload, place) in rows {
        let payload = serde_json::from_str(&payload)
            .map_err(|e| corrupt(format!("pending audit event {id}: payload: {e}")))?;
        if let Some(place) = place {
            let place = Place::parse(&place)
                .ok_or_else(|| corrupt(format!("pending audit event {id}: place {place}")))?;
            places.push((id, place));
        }
        pending.push(Pending {
            id,
            at,
            kind,
            entity_id,
            payload,
        });
    }
    let head = Head { seq, hash, at };
    let (sealed, head) = audit::seal(&head, pending);

    for chunk in sealed.chunks(CHUNK) {
        insert_events(tx, chunk).await?;
    }
    let by_id = |id: i64| {
        sealed
            .binary_search_by_key(&id, |s| s.pending_id)
            .map(|i| &sealed[i])
            .map_err(|_| corrupt(format!("pending audit event {id} was not sealed")))
    };
    for place in [Place::Session, Place::Violation] {
        let ids: Vec<i64> = places
            .iter()
            .filter(|(_, p)| *p == place)
            .map(|(id, _)| *id)
            .collect();
        for chunk in ids.chunks(CHUNK) {
            let events = chunk
                .iter()
                .map(|id| by_id(*id))
                .collect::<Result<Vec<_>, _>>()?;
            if place == Place::Session
                && let Some(lock) = lock_settlements
            {
                let sql = lock.replace("{ids}", &placeholders(1, chunk.len()));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut **tx).await?;
            }
            place_events(tx, place, &events).await?;
        }
    }
    let ids: Vec<i64> = sealed.iter().map(|s| s.pending_id).collect();
    let mut deleted = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "delete from audit_pending where id in ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        deleted += query.execute(&mut **tx).await?.affected();
    }
    if deleted != ids.len() as u64 {
        return Err(corrupt(format!(
            "sealed {} pending audit events but deleted {deleted}",
            ids.len()
        )));
    }
    // The head's instant is the last sealed event's (the batch is not empty).
    let at = head
        .at
        .ok_or_else(|| corrupt("a sealed batch left the head without an instant".to_owned()))?;
    sqlx::query("update audit_head set seq = $1, hash = $2, at = $3 where id = 1")
        .bind(head.seq)
        .bind(head.hash.to_vec())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(Some(sealed.len()))
}

/// Inserts sealed events into `audit_event`, one statement for the chunk.
async fn insert_events<DB>(
    tx: &mut Transaction<'_, DB>,
    chunk: &[Sealed],
) -> Result<(), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    let sql = format!(
        "insert into audit_event (seq, at, kind, entity_id, payload, prev_hash, hash) values {}",
        rows_of(chunk.len(), 7)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in chunk {
        query = query
            .bind(s.event.seq)
            .bind(s.event.at)
            .bind(s.event.kind.clone())
            .bind(s.event.entity_id.clone())
            .bind(canonical_json(&s.event.payload))
            .bind(s.prev_hash.to_vec())
            .bind(s.hash.to_vec());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Gives each sealed event's row (`place`) its chain place, and clears its pointer to the
/// pending event; every one of them must be there.
async fn place_events<DB>(
    tx: &mut Transaction<'_, DB>,
    place: Place,
    events: &[&Sealed],
) -> Result<(), StoreError>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    DB::QueryResult: Affected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    // `update ... from (values ...)`: both backends name a VALUES list's columns column1,
    // column2...; each row is found through its partial index on `audit_pending`.
    let sql = match place {
        Place::Session => format!(
            "update session set audit_seq = v.column2, audit_hash = v.column3, \
             audit_pending = null from (values {}) as v where session.audit_pending = v.column1",
            rows_of(events.len(), 3)
        ),
        Place::Violation => format!(
            "update violation set audit_seq = v.column2, audit_pending = null \
             from (values {}) as v where violation.audit_pending = v.column1",
            rows_of(events.len(), 2)
        ),
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in events {
        query = query.bind(s.pending_id).bind(s.event.seq);
        if place == Place::Session {
            query = query.bind(s.hash.to_vec());
        }
    }
    let placed = query.execute(&mut **tx).await?.affected();
    if placed != events.len() as u64 {
        return Err(corrupt(format!(
            "{} sealed events belong to a {}, but {placed} were found waiting",
            events.len(),
            place.as_str()
        )));
    }
    Ok(())
}

/// The rows a statement changed, on either backend (sqlx has no trait for it).
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// `($1, $2, $3), ($4, $5, $6), ...`: `rows` rows of `width` placeholders.
fn rows_of(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the chain's tables hold contradicts itself: sealing stops rather than seal it.
fn corrupt(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("audit chain: {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_placeholders_number_on() {
        assert_eq!(rows_of(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(rows_of(1, 1), "($1)");
    }
}
