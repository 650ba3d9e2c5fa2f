//! The background sealer of `qrpark serve`: every `QRPARK_AUDIT_SEAL_INTERVAL_MS` it seals
//! the audit events changes wrote since (`store::audit`), a full batch after another while
//! a backlog lasts. Every process runs one; on PostgreSQL a round finding the head taken by
//! another process's sealer is skipped, not waited for. On shutdown it seals once more, so
//! a process that stops leaves nothing of its own waiting.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::store::audit::{self, BATCH, Turn};

/// A running sealer; [`Sealer::stop`] ends it after a last seal.
pub struct Sealer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Seals while batches come full (a backlog), skipping when another sealer holds the head;
/// how many events this process sealed.
pub async fn run_once(state: &AppState) -> anyhow::Result<u64> {
    // An idle system costs one read a round, not a lock on the head.
    if !audit::any_pending(&state.db).await? {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let began = std::time::Instant::now();
        let Some(sealed) = audit::seal_batch(&state.db, Turn::Skip).await? else {
            return Ok(total);
        };
        total += sealed as u64;
        if sealed > 0 {
            metrics::counter!("audit_events_sealed_total").increment(sealed as u64);
            metrics::histogram!("audit_seal_batch_seconds").record(began.elapsed().as_secs_f64());
        }
        if sealed < BATCH {
            return Ok(total);
        }
    }
}

/// Starts the sealer in the background.
pub fn spawn(state: AppState) -> Sealer {
    let interval = Duration::from_millis(state.config.audit_seal_interval_ms);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped.changed() => break,
            }
            // Each round in a task of its own: a panic is logged, and the loop goes on.
            let round = state.clone();
            let outcome = tokio::spawn(async move {
                if let Err(error) = run_once(&round).await {
                    tracing::warn!(
                        ?error,
                        "sealing the audit chain failed; the next round retries"
                    );
                }
            })
            .await;
            if let Err(panic) = outcome {
                tracing::error!(?panic, "the audit sealer's round panicked");
            }
        }
        // What this process wrote is sealed before it goes, whoever holds the head now.
        match audit::seal_pending(&state.db).await {
            Ok(sealed) => tracing::info!(sealed, "sealed the audit chain on shutdown"),
            Err(error) => tracing::warn!(
                ?error,
                "sealing the audit chain on shutdown failed; the next process to run seals it"
            ),
        }
    });
    Sealer { stop, task }
}

impl Sealer {
    /// Stops the loop after a last seal of everything pending, and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(?error, "the audit sealer ended abnormally");
        }
    }
}
