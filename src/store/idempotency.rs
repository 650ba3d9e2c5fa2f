//! Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field"), scoped to a driver.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Db, StoreResult, on_db};

/// How long a key remembers its answer.
pub const KEEP_FOR: TimeDelta = TimeDelta::hours(24);
/// A request still "in flight" after this long died with its process; a retry may take over.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::seconds(60);

/// What to do with a request carrying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use (or the first use's process died): go ahead.
    Proceed,
    /// Same key, same request, answered before: answer exactly that again.
    Replay { status: u16, body: String },
    /// Same key, another request: 422.
    Mismatch,
    /// Same key, same request, still being processed: 409.
    InFlight,
}

/// Where a claimed key is: its request still running, or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    InFlight,
    Done,
}

impl KeyState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Done => "done",
        }
    }
}

impl std::str::FromStr for KeyState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "in_flight" => Ok(Self::InFlight),
            "done" => Ok(Self::Done),
            other => Err(format!("unknown idempotency key state `{other}`")),
        }
    }
}

/// One use of a key: whose, which, the request's fingerprint and when.
#[derive(Debug, Clone, Copy)]
pub struct KeyUse<'a> {
    pub driver: &'a str,
    pub key: &'a str,
    pub request_hash: &'a [u8; 32],
    pub now: DateTime<Utc>,
}

/// An answer remembered under a key: its HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// A key as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    request_hash: Vec<u8>,
    status: KeyState,
    response_status: Option<i32>,
    response_body: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

const SELECT: &str = "select request_hash, status, response_status, response_body, created_at, \
                      expires_at from idempotency_key where driver = $1 and key = $2";

impl Row {
    /// How this stored key decides the answer to `used`; `None` when it is past its 24
    /// hours, or a claim abandoned by a process that died: it may be taken over.
    fn decide(self, used: KeyUse<'_>) -> Option<Begin> {
        let stale = self.expires_at <= used.now
            || (self.status == KeyState::InFlight && used.now - self.created_at > ABANDONED_AFTER);
        if stale {
            return None;
        }
        if self.request_hash != used.request_hash[..] {
            return Some(Begin::Mismatch);
        }
        Some(
            match (self.status, self.response_status, self.response_body) {
                (KeyState::Done, Some(status), Some(body)) => Begin::Replay {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                },
                _ => Begin::InFlight,
            },
        )
    }
}

/// Claims the key within `tx`: `Proceed` when this transaction now holds it (with `answer`
/// already remembered, or `in_flight` without one), otherwise how its earlier use decides.
///
/// Nothing is visible to others before `tx` commits: a concurrent use of the same key
/// waits for that commit at the insert (PostgreSQL's unique index; SQLite's single writer)
/// and then finds the answer, or takes the key if `tx` rolled back. A key claimed and
/// answered in one transaction is therefore never seen in flight.
pub(crate) async fn claim_in<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    used: KeyUse<'_>,
    answer: Option<&Answer>,
) -> Result<Begin, sqlx::Error>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::QueryResult: super::RowsAffected,
    for<'r> Row: sqlx::FromRow<'r, DB::Row>,
    for<'q> Option<i32>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let state = if answer.is_some() {
        KeyState::Done
    } else {
        KeyState::InFlight
    };
    // Two rounds at most: the second after clearing an expired or abandoned claim.
    for _ in 0..2 {
        let inserted = sqlx::query(
            "insert into idempotency_key (driver, key, request_hash, status, response_status, \
             response_body, created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             on conflict do nothing",
        )
        .bind(used.driver)
        .bind(used.key)
        .bind(&used.request_hash[..])
        .bind(state.as_str())
        .bind(answer.map(|a| i32::from(a.status)))
        .bind(answer.map(|a| a.body.as_str()))
        .bind(used.now)
        .bind(used.now + KEEP_FOR)
        .execute(&mut **tx)
        .await
        .map(|done| super::RowsAffected::rows(&done))?;
        if inserted == 1 {
            return Ok(Begin::Proceed);
        }
        let row: Option<Row> = sqlx::query_as(SELECT)
            .bind(used.driver)
            .bind(used.key)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { continue };
        let created_at = row.created_at;
        match row.decide(used) {
            Some(decided) => return Ok(decided),
            None => {
                // Only the caller that deletes the row it saw may retry the insert.
                sqlx::query(
                    "delete from idempotency_key where driver = $1 and key = $2 \
                     and created_at = $3",
                )
                .bind(used.driver)
                .bind(used.key)
                .bind(created_at)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(Begin::InFlight)
}

/// Claims `key` for this request (`in_flight` until [`finish`]), or says how an earlier use
/// of it decides the answer.
pub async fn begin(
    db: &Db,
    driver: &str,
    key: &str,
    request_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> StoreResult<Begin> {
    let used = KeyUse {
        driver,
        key,
        request_hash,
        now,
    };
    claim(db, used, None).await
}

/// Remembers `answer` under the key in one transaction (a refusal decided before anything
/// was written): `Proceed` when it is remembered, otherwise how the key's earlier use
/// decides the answer.
pub async fn remember(db: &Db, used: KeyUse<'_>, answer: &Answer) -> StoreResult<Begin> {
    claim(db, used, Some(answer)).await
}

async fn claim(db: &Db, used: KeyUse<'_>, answer: Option<&Answer>) -> StoreResult<Begin> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let begun = claim_in(&mut tx, used, answer).await?;
        tx.commit().await?;
        Ok::<Begin, super::StoreError>(begun)
    }
    .await)
}

/// How an earlier use of the key decides the answer, without claiming it: `None` when the
/// key is free (never used, or stale).
pub async fn earlier(db: &Db, used: KeyUse<'_>) -> StoreResult<Option<Begin>> {
    let row: Option<Row> = on_db!(db, pool => sqlx::query_as(SELECT)
        .bind(used.driver)
        .bind(used.key)
        .fetch_optional(pool)
        .await)?;
    Ok(row.and_then(|row| row.decide(used)))
}

/// What remembers the answer of a claimed key.
const FINISH: &str = "update idempotency_key set status = 'done', response_status = $3, \
                      response_body = $4 where driver = $1 and key = $2";

/// Remembers the answer of a request that did not create anything (a refusal).
pub async fn finish(db: &Db, driver: &str, key: &str, status: u16, body: &str) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(FINISH)
    .bind(driver)
    .bind(key)
    .bind(i32::from(status))
    .bind(body)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Remembers the answer of a request within the transaction of what it created, so that
/// both are there after a crash or neither is.
pub(crate) async fn finish_in<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    answer: &super::sessions::IdempotentAnswer,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(FINISH)
        .bind(answer.driver.as_str())
        .bind(answer.key.as_str())
        .bind(i32::from(answer.status))
        .bind(answer.body.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets a claim whose request failed on our side, so that a retry runs again.
pub async fn release(db: &Db, driver: &str, key: &str) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "delete from idempotency_key where driver = $1 and key = $2 and status = 'in_flight'",
    )
    .bind(driver)
    .bind(key)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Deletes keys past their 24 hours.
pub async fn purge_expired(db: &Db, now: DateTime<Utc>) -> StoreResult<u64> {
    on_db!(db, pool => Ok(sqlx::query("delete from idempotency_key where expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
}
