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

#[derive(sqlx::FromRow)]
struct Row {
    request_hash: Vec<u8>,
    status: KeyState,
    response_status: Option<i32>,
    response_body: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Claims `key` for this request, or says how an earlier use of it decides the answer.
pub async fn begin(
    db: &Db,
    driver: &str,
    key: &str,
    request_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> StoreResult<Begin> {
    // Two rounds at most: the second after clearing an expired or abandoned claim.
    for _ in 0..2 {
        let inserted = on_db!(db, pool => sqlx::query(
            "insert into idempotency_key (driver, key, request_hash, status, created_at, expires_at) \
             values ($1, $2, $3, 'in_flight', $4, $5) on conflict do nothing",
        )
        .bind(driver)
        .bind(key)
        .bind(&request_hash[..])
        .bind(now)
        .bind(now + KEEP_FOR)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(Begin::Proceed);
        }
        let row = on_db!(db, pool => sqlx::query_as::<_, Row>(
            "select request_hash, status, response_status, response_body, created_at, expires_at \
             from idempotency_key where driver = $1 and key = $2",
        )
        .bind(driver)
        .bind(key)
        .fetch_optional(pool)
        .await)?;
        let Some(row) = row else { continue };
        let stale = row.expires_at <= now
            || (row.status == KeyState::InFlight && now - row.created_at > ABANDONED_AFTER);
        if stale {
            // Only the caller that deletes the row it saw may retry the insert.
            on_db!(db, pool => sqlx::query(
                "delete from idempotency_key where driver = $1 and key = $2 and created_at = $3",
            )
            .bind(driver)
            .bind(key)
            .bind(row.created_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
            continue;
        }
        if row.request_hash != request_hash[..] {
            return Ok(Begin::Mismatch);
        }
        return Ok(match (row.status, row.response_status, row.response_body) {
            (KeyState::Done, Some(status), Some(body)) => Begin::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            _ => Begin::InFlight,
        });
    }
    Ok(Begin::InFlight)
}

/// Remembers the answer of a request that did not create anything (a refusal).
pub async fn finish(db: &Db, driver: &str, key: &str, status: u16, body: &str) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "update idempotency_key set status = 'done', response_status = $3, response_body = $4 \
         where driver = $1 and key = $2",
    )
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
    sqlx::query(
        "update idempotency_key set status = 'done', response_status = $3, \
         response_body = $4 where driver = $1 and key = $2",
    )
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
