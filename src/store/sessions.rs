//! Driver sessions: started on a space, stopped and settled in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::idempotency::{self, Answer, Begin, KeyUse};
use super::ledger::{self, Posting};
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::ledger::Event;
use crate::domain::session::{EndedBy, SessionStatus, SettlementStatus};
use crate::domain::space::SpaceStatus;

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub session_id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Uuid,
    pub operator_id: Uuid,
    pub driver: String,
    pub tariff_id: Uuid,
    pub tariff_version: i32,
    pub currency: String,
    pub status: SessionStatus,
    pub started_at: DateTime<Utc>,
    pub leave_by: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub fee_minor: Option<i64>,
    pub fee_lines: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The normalised plate; `None` when none was given or once it was erased.
    pub plate: Option<String>,
    /// When retention erased the plate.
    pub plate_erased_at: Option<DateTime<Utc>>,
    /// The end the driver planned at the start.
    pub stop_at: Option<DateTime<Utc>>,
    /// When the session stops itself: the earlier of `stop_at` and `leave_by`.
    pub ends_at: Option<DateTime<Utc>>,
    pub ended_by: Option<EndedBy>,
    /// The operator's reason, when the operator stopped it.
    pub stop_reason: Option<String>,
}

impl Session {
    /// Whether the session is still running.
    pub fn is_active(&self) -> bool {
        self.status == SessionStatus::Active
    }
}

/// A settlement as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Settlement {
    pub settlement_id: Uuid,
    pub session_id: Uuid,
    pub reference: String,
    pub driver: String,
    pub operator_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub status: SettlementStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// The refunds that are not failed, at most `amount_minor`.
    pub refunded_minor: i64,
    /// 1, then one more each time arrears are sent to the gateway again.
    pub payment_round: i32,
    /// Since when the driver owes it (`arrears` only).
    pub arrears_since: Option<DateTime<Utc>>,
}

impl Settlement {
    /// The gateway's idempotency key of the current payment round: the reference in round
    /// 1 (so a retried delivery is never charged twice), `reference-N` in round N (so that
    /// paying refused arrears again is a new payment, not a replay of the refusal).
    pub fn payment_key(&self) -> String {
        if self.payment_round <= 1 {
            self.reference.clone()
        } else {
            format!("{}-{}", self.reference, self.payment_round)
        }
    }
}

pub(crate) const COLUMNS: &str = "session_id, lot_id, space_id, operator_id, driver, tariff_id, \
                       tariff_version, currency, status, started_at, leave_by, ended_at, \
                       fee_minor, fee_lines, created_at, updated_at, plate, plate_erased_at, \
                       stop_at, ends_at, ended_by, stop_reason";

pub(crate) const SETTLEMENT_COLUMNS: &str = "settlement_id, session_id, reference, driver, \
    operator_id, currency, amount_minor, status, attempts, last_error, created_at, updated_at, \
    settled_at, refunded_minor, payment_round, arrears_since";

/// The answer remembered for an idempotency key, written in the transaction of what its
/// request did (a start's refusal, a refund).
#[derive(Debug, Clone)]
pub struct IdempotentAnswer {
    pub driver: String,
    pub key: String,
    pub status: u16,
    pub body: String,
}

/// A start as planned from what the process knows (its cache may be up to a second old):
/// the transaction checks again what a start depends on.
#[derive(Debug)]
pub struct NewStart<'a> {
    /// The start's `Idempotency-Key`.
    pub key: KeyUse<'a>,
    pub session: &'a Session,
    /// The answer to remember under the key when the session is written (the 201).
    pub answer: &'a Answer,
    /// The code version the driver scanned: the space's current one when planned.
    pub qr_version: i32,
    /// The keyed hash of the plate, by which the audit event commits to it.
    pub plate_hash: Option<&'a str>,
    /// The most active sessions the driver may hold, this one included.
    pub max_active: Option<i64>,
}

/// Why the start's transaction refused what was planned: what changed since, or what only
/// the database can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefusal {
    /// Another session is active on the space (the one-active-session-per-space index).
    SpaceOccupied,
    /// The driver holds `max_active` active sessions already.
    TooManyActiveSessions,
    /// The space's code was rotated after the scanned version.
    CodeReplaced,
    /// The space is out of service.
    OutOfService,
    /// The lot requires a plate and none was given.
    PlateRequired,
}

/// What a start's transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The session, its audit event and the key's answer are written.
    Started,
    /// Refused: the refusal's answer is remembered under the key; nothing else written.
    Refused(StartRefusal),
    /// The key was used before (or is in flight): nothing written; answer as it says.
    Earlier(Begin),
}

/// Starts a session in **one transaction**: the key's claim with its answer, the driver's
/// cap, the session (only if its space is still in service, on the scanned code version,
/// and free), its audit event. A refusal met in the transaction is remembered under the
/// key instead, with `refusal`'s answer, in the same commit. After a crash either all of it
/// is there or none; a failure (an `Err`) rolls everything back, the claim included.
pub async fn start(
    db: &Db,
    new: &NewStart<'_>,
    refusal: impl Fn(StartRefusal) -> Answer,
) -> StoreResult<Started> {
    let session = new.session;
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        if matches!(db, Db::Postgres(_)) && new.max_active.is_some() {
            sqlx::query("select pg_advisory_xact_lock(hashtext($1))")
                .bind(&session.driver)
                .execute(&mut *tx)
                .await?;
        }
        // A write first: on SQLite it takes the write lock, so what is read below cannot
        // change before the commit.
        match idempotency::claim_in(&mut tx, new.key, Some(new.answer)).await? {
            Begin::Proceed => {}
            earlier => return Ok(Started::Earlier(earlier)),
        }
        let refused = 'checks: {
            // The cap on active sessions: SQLite writes one transaction at a time, and
            // PostgreSQL serialises one driver's starts on the lock above.
            if let Some(cap) = new.max_active {
                let count: i64 = sqlx::query_scalar(
                    "select count(*) from session where driver = $1 and status = 'active'",
                )
                .bind(&session.driver)
                .fetch_one(&mut *tx)
                .await?;
                if count >= cap {
                    break 'checks Some(StartRefusal::TooManyActiveSessions);
                }
            }
            // Written only if the space is as planned; a taken space is the partial unique
            // index's conflict, which here inserts nothing instead of failing the
            // transaction (PostgreSQL waits for a concurrent start on it to end first).
            let inserted = sqlx::query(
                "insert into session (session_id, lot_id, space_id, operator_id, driver, \
                 tariff_id, tariff_version, currency, status, started_at, leave_by, created_at, \
                 updated_at, plate, stop_at, ends_at) \
                 select $1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $11, $12, $13, $14 \
                 where exists (select 1 from space join lot on lot.lot_id = space.lot_id \
                   where space.space_id = $3 and space.status = 'active' \
                   and space.qr_version = $15 and (not lot.plate_required or $12 is not null)) \
                 on conflict (space_id) where status = 'active' do nothing",
            )
            .bind(session.session_id)
            .bind(session.lot_id)
            .bind(session.space_id)
            .bind(session.operator_id)
            .bind(&session.driver)
            .bind(session.tariff_id)
            .bind(session.tariff_version)
            .bind(&session.currency)
            .bind(session.started_at)
            .bind(session.leave_by)
            .bind(session.created_at)
            .bind(&session.plate)
            .bind(session.stop_at)
            .bind(session.ends_at)
            .bind(new.qr_version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                break 'checks Some(why_not_inserted(&mut tx, new).await?);
            }
            None
        };
        if let Some(refused) = refused {
            let Answer { status, body } = refusal(refused);
            let answer = IdempotentAnswer {
                driver: new.key.driver.to_owned(),
                key: new.key.key.to_owned(),
                status,
                body,
            };
            idempotency::finish_in(&mut tx, &answer).await?;
            tx.commit().await?;
            return Ok(Started::Refused(refused));
        }
        audit::append(
            &mut tx,
            session.started_at,
            "session.started",
            session.session_id,
            serde_json::json!({
                "session_id": session.session_id,
                "lot_id": session.lot_id,
                "space_id": session.space_id,
                "operator_id": session.operator_id,
                "driver": session.driver,
                "tariff_id": session.tariff_id,
                "tariff_version": session.tariff_version,
                "started_at": crate::domain::audit::instant(session.started_at),
                "stop_at": session.stop_at.map(crate::domain::audit::instant),
                // The chain commits to the plate without holding it (docs/enforcement.md).
                "plate_hmac": new.plate_hash,
            })
        )
        .await?;
        tx.commit().await?;
        Ok::<Started, StoreError>(Started::Started)
    }
    .await)
}

/// Why the conditional insert of [`start`] wrote nothing, read in its transaction.
async fn why_not_inserted<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    new: &NewStart<'_>,
) -> Result<StartRefusal, sqlx::Error>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> (SpaceStatus, i32, bool): sqlx::FromRow<'r, DB::Row>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let space: Option<(SpaceStatus, i32, bool)> = sqlx::query_as(
        "select space.status, space.qr_version, lot.plate_required from space \
         join lot on lot.lot_id = space.lot_id where space.space_id = $1",
    )
    .bind(new.session.space_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match space {
        // Spaces are never deleted; a space that is gone names no current code either.
        None => StartRefusal::CodeReplaced,
        Some((_, version, _)) if version != new.qr_version => StartRefusal::CodeReplaced,
        Some((status, _, _)) if status != SpaceStatus::Active => StartRefusal::OutOfService,
        Some((_, _, true)) if new.session.plate.is_none() => StartRefusal::PlateRequired,
        Some(_) => StartRefusal::SpaceOccupied,
    })
}

/// A driver's session; `None` when it does not exist or is someone else's.
pub async fn get_for_driver(
    db: &Db,
    session_id: Uuid,
    driver: &str,
) -> StoreResult<Option<Session>> {
    let sql = format!("select {COLUMNS} from session where session_id = $1 and driver = $2");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(session_id)
        .bind(driver)
        .fetch_optional(pool)
        .await?))
}

/// A driver's sessions, newest first.
pub async fn list_for_driver(db: &Db, driver: &str, limit: i64) -> StoreResult<Vec<Session>> {
    let sql = format!(
        "select {COLUMNS} from session where driver = $1 \
         order by started_at desc, session_id desc limit $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(driver)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Filters of an operator's session list.
#[derive(Debug, Default, Clone)]
pub struct SessionFilter {
    pub lot_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only sessions in this state.
    pub status: Option<SessionStatus>,
}

/// An operator's sessions (started in [from, to)), newest first.
pub async fn list_for_operator(
    db: &Db,
    operator_id: Uuid,
    filter: &SessionFilter,
    limit: i64,
) -> StoreResult<Vec<Session>> {
    super::session_pages::page(db, operator_id, filter, None, limit).await
}

/// Spaces of a lot and how many of them have an active session.
pub async fn occupancy(db: &Db, lot_id: Uuid) -> StoreResult<(i64, i64, i64)> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (i64, i64, i64)>(
        "select count(*), \
         cast(coalesce(sum(case when space.status = 'active' then 1 else 0 end), 0) as bigint), \
         (select count(*) from session where session.lot_id = $1 and session.status = 'active') \
         from space where space.lot_id = $1",
    )
    .bind(lot_id)
    .fetch_one(pool)
    .await?))
}

/// Whether a session is active on the space right now.
pub async fn space_occupied(db: &Db, space_id: Uuid) -> StoreResult<bool> {
    let sql = "select count(*) from session where space_id = $1 and status = 'active'";
    let count: i64 = on_db!(db, pool => sqlx::query_scalar::<_, i64>(sql)
        .bind(space_id)
        .fetch_one(pool)
        .await?);
    Ok(count > 0)
}

/// How an ender waits for a session another ender is stopping right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Wait, then read the outcome (a driver or an operator wants the stopped session).
    Wait,
    /// Move on to the next one (the scheduler: whoever holds it will stop it).
    SkipLocked,
}

/// What the stop writes: the end, the fee and the settlement.
#[derive(Debug, Clone)]
pub struct Stop {
    pub ended_at: DateTime<Utc>,
    pub ended_by: EndedBy,
    /// The operator's reason, for `EndedBy::Operator`.
    pub reason: Option<String>,
    pub fee_minor: i64,
    pub fee_lines: String,
    pub settlement: Settlement,
    /// Queue the settlement for the city's payment gateway.
    pub deliver: bool,
}

/// Stops an active session and settles it, in one transaction: the end, the fee, the
/// settlement, its ledger posting (gateway clearing debited, the operator's revenue
/// credited) and the outbox row. `false` when the session was not active any more (someone stopped it first: the
/// caller reads the stored outcome). The caller has checked who may stop it.
pub async fn stop(db: &Db, session_id: Uuid, stop: &Stop, claim: Claim) -> StoreResult<bool> {
    let s = &stop.settlement;
    let lock = match (db, claim) {
        (Db::Sqlite(_), _) => None,
        (Db::Postgres(_), Claim::Wait) => Some("for update"),
        (Db::Postgres(_), Claim::SkipLocked) => Some("for update skip locked"),
    };
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        // PostgreSQL: the session's row lock is taken first, before the stop's audit event
        // is written (whose pending id must come after every lock the stop waits for:
        // `audit::append`). (SQLite writes one transaction at a time.)
        if let Some(lock) = lock {
            let sql = format!("select status from session where session_id = $1 {lock}");
            let status: Option<SessionStatus> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?;
            if status != Some(SessionStatus::Active) {
                return Ok(false);
            }
        }
        // The stop's audit event comes first: the session row points at it in the same
        // update that stops it, and takes its place in the chain (`audit_seq`,
        // `audit_hash`) when the sealer seals it (the schema refuses a stopped session
        // that neither has a place nor waits for one).
        let pending = audit::append_placed(
            &mut tx,
            audit::Place::Session,
            stop.ended_at,
            "session.stopped",
            session_id,
            serde_json::json!({
                "session_id": session_id,
                "ended_at": crate::domain::audit::instant(stop.ended_at),
                "fee_minor": stop.fee_minor,
                "currency": s.currency,
                "fee_sha256": crate::domain::audit::hex(&<sha2::Sha256 as sha2::Digest>::digest(stop.fee_lines.as_bytes())),
                "settlement_id": s.settlement_id,
                "settlement_reference": s.reference,
                "settlement_status": s.status.as_str(),
                "ended_by": stop.ended_by.as_str(),
                "reason": stop.reason,
            })
        )
        .await?;
        // The conditional update is the lock: of concurrent stops exactly one changes the
        // row; the others find it stopped, change nothing and roll their event back.
        let changed = sqlx::query(
            "update session set status = 'stopped', ended_at = $2, fee_minor = $3, \
             fee_lines = $4, updated_at = $2, audit_pending = $5, ended_by = $6, \
             stop_reason = $7 \
             where session_id = $1 and status = 'active'",
        )
        .bind(session_id)
        .bind(stop.ended_at)
        .bind(stop.fee_minor)
        .bind(&stop.fee_lines)
        .bind(pending)
        .bind(stop.ended_by)
        .bind(&stop.reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        let sql = format!(
            "insert into settlement ({SETTLEMENT_COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(s.settlement_id)
            .bind(s.session_id)
            .bind(&s.reference)
            .bind(&s.driver)
            .bind(s.operator_id)
            .bind(&s.currency)
            .bind(s.amount_minor)
            .bind(s.status)
            .bind(s.attempts)
            .bind(&s.last_error)
            .bind(s.created_at)
            .bind(s.updated_at)
            .bind(s.settled_at)
            .bind(s.refunded_minor)
            .bind(s.payment_round)
            .bind(s.arrears_since)
            .execute(&mut *tx)
            .await?;
        ledger::post(&mut tx, s.created_at, &Posting {
            event: Event::Stop,
            settlement_id: s.settlement_id,
            refund_id: None,
            driver: &s.driver,
            operator_id: s.operator_id,
            currency: &s.currency,
            amount_minor: s.amount_minor,
        })
        .await?;
        if stop.deliver {
            sqlx::query(
                "insert into settlement_outbox (settlement_id, next_attempt_at, created_at) \
                 values ($1, $2, $2)",
            )
            .bind(s.settlement_id)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    }
    .await)
}

/// The settlement of a stopped session.
pub async fn settlement(db: &Db, session_id: Uuid) -> StoreResult<Option<Settlement>> {
    let sql = format!("select {SETTLEMENT_COLUMNS} from settlement where session_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Settlement>(sqlx::AssertSqlSafe(sql))
        .bind(session_id)
        .fetch_optional(pool)
        .await?))
}

/// The settlements of these sessions (one query however many; sessions without one are
/// left out).
pub async fn settlements(db: &Db, session_ids: &[Uuid]) -> StoreResult<Vec<Settlement>> {
    let select = format!("select {SETTLEMENT_COLUMNS} from settlement where session_id");
    super::fetch_by_ids(db, &select, session_ids, "").await
}

/// Active sessions due to stop themselves at or before `now` (their planned end or their
/// maximum stay), the most overdue first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Session>> {
    let sql = format!(
        "select {COLUMNS} from session where status = 'active' and ends_at is not null \
         and ends_at <= $1 order by ends_at limit $2"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// A session in one of the operator's lots; `None` when it does not exist or is another
/// operator's.
pub async fn get_for_operator(
    db: &Db,
    session_id: Uuid,
    operator_id: Uuid,
) -> StoreResult<Option<Session>> {
    let sql = format!("select {COLUMNS} from session where session_id = $1 and operator_id = $2");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Session>(sqlx::AssertSqlSafe(sql))
        .bind(session_id)
        .bind(operator_id)
        .fetch_optional(pool)
        .await?))
}
