//! Sessions that end themselves: every process runs this loop, and whichever notices a
//! session's planned end (`stop_at`) or maximum stay (`leave_by`) first stops it, priced to
//! that instant. Exactly once: the stop is a conditional update in one transaction, and on
//! PostgreSQL a process skips a session another one is stopping (`for update skip locked`).
//! Plates past their retention are erased, and idempotency keys past their 24 hours
//! forgotten, on the same loop.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Claim, end};
use crate::AppState;
use crate::domain::session::EndedBy;
use crate::store::{idempotency, sessions, vehicles};

/// How often the loop looks for due sessions: endings happen within this of their instant
/// (plus the stop itself), well inside the 5 seconds promised.
pub const TICK: Duration = Duration::from_secs(1);
/// Most sessions one round stops; the next round takes the rest at once.
const BATCH: i64 = 200;
/// How often plates past their retention are erased and old idempotency keys forgotten.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Stops every session due at the clock's now; how many this process stopped.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let mut stopped = 0;
    loop {
        let now = state.clock.now();
        let due = sessions::due(&state.db, now, BATCH).await?;
        let full = due.len() as i64 == BATCH;
        let before = stopped;
        for session in &due {
            // The ending is the session's own instant; `asked_by` only names who noticed.
            match end(
                state,
                session,
                now,
                EndedBy::MaxStay,
                None,
                Claim::SkipLocked,
            )
            .await
            {
                Ok(true) => {
                    stopped += 1;
                    let lag = now - session.ends_at.unwrap_or(now);
                    metrics::histogram!("session_end_lag_seconds")
                        .record(lag.as_seconds_f64().max(0.0));
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(session_id = %session.session_id, ?error, "could not stop a due session");
                }
            }
        }
        // Another round only while a full batch made progress: sessions that cannot be
        // stopped (logged above) must not spin the loop; the next tick retries them.
        if !full || stopped == before {
            return Ok(stopped);
        }
    }
}

/// Erases the plates of sessions stopped longer ago than the retention period.
pub async fn erase_old_plates(state: &AppState) -> anyhow::Result<u64> {
    let now = state.clock.now();
    let days = i64::from(state.config.plate_retention_days);
    let before = now
        .checked_sub_signed(TimeDelta::days(days))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let erased = vehicles::erase_plates(&state.db, before, now).await?;
    if erased > 0 {
        tracing::info!(erased, days, "erased plates past their retention");
    }
    Ok(erased)
}

/// Forgets idempotency keys past their 24 hours, so the table holds one day of starts.
pub async fn purge_idempotency_keys(state: &AppState) -> anyhow::Result<u64> {
    let purged = idempotency::purge_expired(&state.db, state.clock.now()).await?;
    if purged > 0 {
        tracing::info!(purged, "forgot idempotency keys past their 24 hours");
    }
    Ok(purged)
}

/// Runs the loop in the background for as long as the process lives.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_retention: Option<tokio::time::Instant> = None;
        loop {
            ticker.tick().await;
            let retention = last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY);
            if retention {
                last_retention = Some(tokio::time::Instant::now());
            }
            // Each round in a task of its own: a panic is logged, and the loop goes on.
            let round = state.clone();
            let outcome = tokio::spawn(async move {
                if let Err(error) = run_once(&round).await {
                    tracing::warn!(?error, "the session scheduler's round failed");
                }
                if retention && let Err(error) = erase_old_plates(&round).await {
                    tracing::warn!(?error, "erasing old plates failed");
                }
                if retention && let Err(error) = purge_idempotency_keys(&round).await {
                    tracing::warn!(?error, "purging old idempotency keys failed");
                }
            })
            .await;
            if let Err(panic) = outcome {
                tracing::error!(?panic, "the session scheduler's round panicked");
            }
        }
    });
}
