//! The operator console's sign-ins: a session per signed-in browser, stored only as the hash
//! of its cookie's token, ended by signing out, by 12 hours idle, or by revoking its key.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::audit;
use super::operators::KeyOwner;
use super::{Db, StoreResult, on_db};

/// A console session as stored (never its token).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ConsoleSession {
    pub console_session_id: Uuid,
    pub operator_id: Uuid,
    pub operator_key_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

const COLUMNS: &str = "console_session_id, operator_id, operator_key_id, created_at, last_seen_at";

/// Opens a session for `owner` under `token_hash`, in the audit log as `console.signed_in`;
/// sessions idle longer than `idle` are cleared on the way.
pub async fn open(
    db: &Db,
    token_hash: &[u8; 32],
    owner: KeyOwner,
    now: DateTime<Utc>,
    idle: TimeDelta,
) -> StoreResult<ConsoleSession> {
    let session = ConsoleSession {
        console_session_id: Uuid::now_v7(),
        operator_id: owner.operator_id,
        operator_key_id: owner.operator_key_id,
        created_at: now,
        last_seen_at: now,
    };
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query("delete from console_session where last_seen_at <= $1")
            .bind(now - idle)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into console_session (console_session_id, token_hash, operator_id, \
             operator_key_id, created_at, last_seen_at) values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(session.console_session_id)
        .bind(&token_hash[..])
        .bind(session.operator_id)
        .bind(session.operator_key_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            "console.signed_in",
            session.console_session_id,
            serde_json::json!({
                "console_session_id": session.console_session_id,
                "operator_id": session.operator_id,
                "key_id": session.operator_key_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }
    .await)?;
    Ok(session)
}

/// The live session under `token_hash`, its idle clock moved to `now`; `None` when there is
/// none, it has been idle longer than `idle`, or its key was revoked.
pub async fn touch(
    db: &Db,
    token_hash: &[u8; 32],
    now: DateTime<Utc>,
    idle: TimeDelta,
) -> StoreResult<Option<ConsoleSession>> {
    let sql = format!(
        "update console_session set last_seen_at = $2 \
         where token_hash = $1 and last_seen_at > $3 and last_seen_at <= $2 \
         and exists (select 1 from operator_key k \
                     where k.operator_key_id = console_session.operator_key_id \
                     and k.revoked_at is null) \
         returning {COLUMNS}"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, ConsoleSession>(sqlx::AssertSqlSafe(sql))
        .bind(&token_hash[..])
        .bind(now)
        .bind(now - idle)
        .fetch_optional(pool)
        .await?))
}

/// Ends the session under `token_hash`, in the audit log as `console.signed_out`; `false`
/// when there was none.
pub async fn close(db: &Db, token_hash: &[u8; 32], now: DateTime<Utc>) -> StoreResult<bool> {
    let sql = format!("delete from console_session where token_hash = $1 returning {COLUMNS}");
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let gone = sqlx::query_as::<_, ConsoleSession>(sqlx::AssertSqlSafe(sql))
            .bind(&token_hash[..])
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(session) = &gone {
            audit::append(
                &mut tx,
                now,
                "console.signed_out",
                session.console_session_id,
                serde_json::json!({
                    "console_session_id": session.console_session_id,
                    "operator_id": session.operator_id,
                    "key_id": session.operator_key_id,
                }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(gone.is_some())
    }
    .await)
    .map_err(Into::into)
}
