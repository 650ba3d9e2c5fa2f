//! Appending to the audit chain, inside the transaction of the change it records.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use crate::domain::audit::{Event, GENESIS, canonical_json};

/// Appends an event to the audit chain within `tx`: locks the head row, takes the next
/// number and hash, writes the event and moves the head; returns the event's number and
/// hash. Runs as part of the caller's transaction, so the change and its event commit
/// together or not at all.
///
/// Generic over the backend so that both transactions call the one body: the bounds are
/// what the three statements need of it, and both SQLite and PostgreSQL meet them.
pub(crate) async fn append<DB>(
    tx: &mut Transaction<'_, DB>,
    now: DateTime<Utc>,
    kind: &str,
    entity_id: impl Display,
    payload: serde_json::Value,
) -> Result<(i64, [u8; 32]), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> (i64, Vec<u8>, Option<DateTime<Utc>>): FromRow<'r, DB::Row>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    let entity_id = entity_id.to_string();
    // The head's update is the lock: a concurrent append waits here until this
    // transaction ends, so numbers are taken in commit order.
    let (seq, prev, head_at): (i64, Vec<u8>, Option<DateTime<Utc>>) =
        sqlx::query_as("update audit_head set seq = seq + 1 where id = 1 returning seq, hash, at")
            .fetch_one(&mut **tx)
            .await?;
    // The chain's clock never runs backwards, whatever the processes' clocks say.
    let at = match head_at {
        Some(head) if head > now => head,
        _ => now,
    };
    let prev: [u8; 32] = prev.as_slice().try_into().unwrap_or(GENESIS);
    let event = Event {
        seq,
        at,
        kind: kind.to_owned(),
        entity_id,
        payload,
    };
    let hash = event.hash(&prev);
    sqlx::query(
        "insert into audit_event (seq, at, kind, entity_id, payload, prev_hash, hash) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(at)
    .bind(event.kind)
    .bind(event.entity_id)
    .bind(canonical_json(&event.payload))
    .bind(&prev[..])
    .bind(&hash[..])
    .execute(&mut **tx)
    .await?;
    sqlx::query("update audit_head set hash = $1, at = $2 where id = 1")
        .bind(&hash[..])
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok((seq, hash))
}
