//! Where reads that may lag go: a PostgreSQL streaming replica while it is fresh, the primary
//! otherwise (`QRPARK_DATABASE_READ_URL`; docs/operations.md, "Read replica").
//!
//! Without a replica every read goes to the primary through the same calls, so there is one
//! code path. With one, a guard (a background task) compares every [`PROBE_EVERY`] how far the
//! primary has flushed its WAL with how far the replica has replayed it, and keeps the
//! instant up to which the replica is known to hold every commit the primary acknowledged
//! (`fresh_as_of`). A read goes to the replica only while that instant is at most
//! [`MAX_STALENESS`] old at the moment of the read: a replica that lags, pauses, dies or
//! whose guard stops answering is left within the bound, without anyone noticing an error.
//!
//! Why that bounds what a read can miss: a probe notes the instant *before* it asks the
//! primary for its flush position, so every commit acknowledged before that instant lies
//! below the position (qrpark commits synchronously: a commit is acknowledged once flushed).
//! Once the replica has replayed up to the position, it shows all of those commits. A read
//! on the replica at `t` therefore misses only commits acknowledged after `t - MAX_STALENESS`:
//! a QR code rotated more than [`MAX_STALENESS`] ago is never accepted on the replica.
//!
//! A replica's answer that lag could explain (a code, space, lot or tariff it does not hold
//! yet) is asked again of the primary ([`Reads::read`]); after a change through the
//! operator API or the console, this process reads from the primary until the replica is
//! seen to hold it ([`Reads::note_change`]); exports and figures wait until the replica has
//! replayed what the primary holds ([`Reads::caught_up`]).
//!
//! Physical time, not the app's [`crate::clock::Clock`]: lag is a property of the servers,
//! and a test that moves the app's clock by hours must not make the replica look stale.

use std::collections::VecDeque;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::{Db, StoreError, StoreResult, is_unavailable};
use crate::config::redact_url;

/// How old the replica's knowledge may be when a read goes there.
pub const MAX_STALENESS: Duration = Duration::from_secs(1);

/// How often the guard measures the replica.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How long a probe may take before the replica counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an export or summary waits for the replica to replay what the primary holds
/// before it reads the primary instead.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// How often that wait asks the replica how far it has replayed.
const CATCH_UP_POLL: Duration = Duration::from_millis(5);

/// How soon the guard probes again while this process's last change is not known to be on
/// the replica (for up to [`MAX_STALENESS`] after it): public reads go back to the replica
/// within milliseconds of an operator's change instead of a whole [`PROBE_EVERY`].
const CONFIRM_EVERY: Duration = Duration::from_millis(5);

/// How many probes back the guard remembers: a replica that replays more slowly than the
/// primary writes is matched against an older probe, up to this many ago.
const HISTORY: usize = 16;

/// The primary's flush position (bytes of WAL) and the cluster it belongs to.
const PRIMARY_PROBE: &str = "select pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint, \
     (select system_identifier from pg_control_system())";

/// Whether the replica is a standby, how far it has replayed, and the cluster it copies.
const REPLICA_PROBE: &str = "select pg_is_in_recovery(), \
     pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, \
     (select system_identifier from pg_control_system())";

/// The pools reads are taken from: the primary, and a replica when one is configured.
#[derive(Clone, Debug)]
pub struct Reads {
    primary: Db,
    replica: Option<Arc<Replica>>,
}

/// How many reads through [`Reads`] each server answered, since the start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub replica: u64,
    pub primary: u64,
}

/// The replica as the guard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaStatus {
    /// No read URL: every read goes to the primary.
    NotConfigured,
    /// Configured, not yet measured: reads go to the primary.
    NotYetProbed,
    /// Holds every commit older than this: reads that may lag go there.
    Fresh(Duration),
    /// Further behind than [`MAX_STALENESS`]: reads go to the primary.
    Lagging(Duration),
    /// Out of reach, or not a standby of the primary: reads go to the primary.
    Down,
}

/// The replica and what the guard knows about it.
#[derive(Debug)]
struct Replica {
    db: Db,
    /// The URL with its password hidden, for logs.
    shown: String,
    /// When the guard started; instants below are nanoseconds after it.
    origin: Instant,
    /// Nanoseconds after `origin` up to which the replica holds every commit the primary
    /// acknowledged, plus one; 0 while nothing is known (or the replica failed its probe).
    fresh_as_of: AtomicU64,
    /// Nanoseconds after `origin`, plus one, when this process last answered a change that
    /// public reads show (an operator's lot, space, code or tariff); 0 if never. Until the
    /// replica is known to hold it, those reads go to the primary.
    changed_at: AtomicU64,
    /// Wakes the guard after a change, to see the replica hold it sooner.
    changed: Arc<tokio::sync::Notify>,
    /// Reads (and exports) the replica answered.
    served_replica: AtomicU64,
    /// Reads (and exports) that went to the primary although a replica is configured.
    served_primary: AtomicU64,
    /// Whether the last probe failed to reach a standby of this primary: then an export does
    /// not wait for it. (Before the first probe, as in a command-line export, it gets its
    /// chance.)
    down: AtomicBool,
}

impl Reads {
    /// Every read from the primary.
    pub fn primary(primary: Db) -> Self {
        Self {
            primary,
            replica: None,
        }
    }

    /// Reads that may lag from the replica at `url` while it is fresh, and a guard that
    /// watches it. Connects lazily: a replica that is down when qrpark starts is read once it
    /// is back. Only for a PostgreSQL primary and a `postgres://` replica URL.
    pub fn with_replica(primary: Db, url: &str, max_connections: u32) -> Result<Self, String> {
        let Db::Postgres(primary_pool) = &primary else {
            return Err(
                "a read replica needs a PostgreSQL primary (database_url is SQLite)".into(),
            );
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "`{}` must be a postgres:// URL of a streaming replica",
                redact_url(url)
            ));
        }
        let options =
            PgConnectOptions::from_str(url).map_err(|e| format!("`{}`: {e}", redact_url(url)))?;
        // A read waits for a replica connection no longer than the guard would take to give
        // up on the replica; then it asks the primary.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(MAX_STALENESS)
            .connect_lazy_with(options.clone());
        let replica = Arc::new(Replica {
            db: Db::Postgres(pool),
            shown: redact_url(url),
            origin: Instant::now(),
            fresh_as_of: AtomicU64::new(0),
            changed_at: AtomicU64::new(0),
            changed: Arc::default(),
            served_replica: AtomicU64::new(0),
            served_primary: AtomicU64::new(0),
            down: AtomicBool::new(false),
        });
        let primary_options = (*primary_pool.connect_options()).clone();
        tokio::spawn(guard(
            Arc::downgrade(&replica),
            replica.changed.clone(),
            primary_options,
            options,
        ));
        Ok(Self {
            primary,
            replica: Some(replica),
        })
    }

    /// Whether a replica is configured.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// Whether reads that may lag go to the replica now.
    pub fn on_replica(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.usable())
    }

    /// Notes that this process has just committed a change that public reads show (an
    /// operator's lot, space, code or tariff): they read the primary until the replica is
    /// known to hold it, so whoever made the change sees it at once through this process.
    /// Other processes see it within [`MAX_STALENESS`].
    pub fn note_change(&self) {
        if let Some(replica) = &self.replica {
            let now = replica.now().saturating_add(1);
            replica.changed_at.fetch_max(now, Ordering::AcqRel);
            replica.changed.notify_one();
        }
    }

    /// How old the replica's knowledge is now; `None` without a replica or while nothing is
    /// known of it (unreachable, not yet probed).
    pub fn staleness(&self) -> Option<Duration> {
        self.replica.as_ref().and_then(|r| r.staleness())
    }

    /// What the guard knows of the replica now.
    pub fn status(&self) -> ReplicaStatus {
        let Some(replica) = &self.replica else {
            return ReplicaStatus::NotConfigured;
        };
        match replica.staleness() {
            Some(staleness) if staleness <= MAX_STALENESS => ReplicaStatus::Fresh(staleness),
            Some(staleness) => ReplicaStatus::Lagging(staleness),
            None if replica.down.load(Ordering::Relaxed) => ReplicaStatus::Down,
            None => ReplicaStatus::NotYetProbed,
        }
    }

    /// Runs `read` on the replica while it is fresh (else on the primary), and again on the
    /// primary when the replica's answer is one its lag could explain (`lag_could_explain`:
    /// a code, space, lot or tariff not found, say, that may be newer than the replica) or
    /// the replica failed to answer. So lag can make an answer older by at most [`MAX_STALENESS`], never make a genuine
    /// thing look missing, and a replica outage never fails a read.
    pub async fn read<T, F, Fut>(
        &self,
        read: F,
        lag_could_explain: impl Fn(&T) -> bool,
    ) -> StoreResult<T>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        match &self.replica {
            Some(replica) if replica.usable() => self.on(replica, read, lag_could_explain).await,
            Some(replica) => {
                replica.served_primary.fetch_add(1, Ordering::Relaxed);
                read(self.primary.clone()).await
            }
            None => read(self.primary.clone()).await,
        }
    }

    /// How many reads each server answered (all the primary's without a replica: 0, 0).
    pub fn served(&self) -> Served {
        self.replica
            .as_ref()
            .map_or_else(Served::default, |r| Served {
                replica: r.served_replica.load(Ordering::Relaxed),
                primary: r.served_primary.load(Ordering::Relaxed),
            })
    }

    /// Runs `read` where [`Reads::caught_up`] says, and again on the primary if the replica
    /// fails to answer: for figures that must include every change made before the call
    /// (summaries, an operator's metrics).
    pub async fn read_caught_up<T, F, Fut>(&self, read: F) -> StoreResult<T>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        match self.caught_up_replica().await {
            Some(replica) => self.on(replica, read, |_| false).await,
            None => {
                self.count_primary();
                read(self.primary.clone()).await
            }
        }
    }

    /// `read` on the replica; on the primary too if the answer or a failure says so.
    async fn on<T, F, Fut>(
        &self,
        replica: &Replica,
        read: F,
        lag_could_explain: impl Fn(&T) -> bool,
    ) -> StoreResult<T>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        match read(replica.db.clone()).await {
            Ok(answer) if !lag_could_explain(&answer) => {
                replica.served_replica.fetch_add(1, Ordering::Relaxed);
                return Ok(answer);
            }
            Ok(_) => {}
            Err(StoreError::Database(error)) if replica_failed(&error) => {
                tracing::warn!(replica = %replica.shown, %error, "a read failed on the replica; reading the primary");
                if is_unavailable(&error) {
                    replica.mark_unreachable();
                }
            }
            Err(error) => return Err(error),
        }
        replica.served_primary.fetch_add(1, Ordering::Relaxed);
        read(self.primary.clone()).await
    }

    /// The pool for a read that must see everything the primary holds now (an export, a
    /// summary): the replica once it has replayed up to the primary's flush position taken
    /// here, waiting up to [`CATCH_UP_WAIT`] for it; else the primary. Call it after
    /// whatever must be visible (sealing the audit chain's pending events) has committed.
    pub async fn caught_up(&self) -> Db {
        match self.caught_up_replica().await {
            Some(replica) => {
                replica.served_replica.fetch_add(1, Ordering::Relaxed);
                replica.db.clone()
            }
            None => {
                self.count_primary();
                self.primary.clone()
            }
        }
    }

    fn count_primary(&self) {
        if let Some(replica) = &self.replica {
            replica.served_primary.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The replica once it holds what the primary holds now, if it gets there in time.
    async fn caught_up_replica(&self) -> Option<&Replica> {
        let replica = self.replica.as_deref()?;
        // A replica found unreachable costs no wait; a lagging one gets its chance.
        if replica.down.load(Ordering::Relaxed) {
            return None;
        }
        // The primary's trouble shows in the read that follows, not as the replica's.
        let asked = Instant::now();
        let (target, system) = primary_position(&self.primary).await.ok()?;
        match replica.catch_up(asked, target, system, CATCH_UP_WAIT).await {
            Ok(true) => Some(replica),
            Ok(false) => {
                tracing::warn!(replica = %replica.shown, wait = ?CATCH_UP_WAIT, "the replica did not catch up in time; reading the primary");
                None
            }
            Err(error) => {
                tracing::warn!(replica = %replica.shown, %error, "cannot tell how far the replica is; reading the primary");
                if is_unavailable(&error) {
                    replica.mark_unreachable();
                }
                None
            }
        }
    }

    /// Closes the replica's connections (the primary's are the caller's).
    pub async fn close(&self) {
        if let Some(replica) = &self.replica {
            replica.db.close().await;
        }
    }
}

/// Errors after which a read is asked again on the primary: the replica is out of reach, or
/// cancelled the query because replay needed what it read (SQLSTATE 40001 on a standby).
fn replica_failed(error: &sqlx::Error) -> bool {
    is_unavailable(error)
        || matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

impl Replica {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn staleness(&self) -> Option<Duration> {
        match self.fresh_as_of.load(Ordering::Acquire) {
            0 => None,
            known => Some(Duration::from_nanos(self.now().saturating_sub(known - 1))),
        }
    }

    fn is_fresh(&self) -> bool {
        self.staleness().is_some_and(|s| s <= MAX_STALENESS)
    }

    /// Whether this process's last change, made less than [`MAX_STALENESS`] ago, is not yet
    /// known to be on the replica.
    fn change_unconfirmed(&self) -> bool {
        let changed = self.changed_at.load(Ordering::Acquire);
        changed > self.fresh_as_of.load(Ordering::Acquire)
            && self.now().saturating_sub(changed)
                < u64::try_from(MAX_STALENESS.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Fresh, and holding this process's last change.
    fn usable(&self) -> bool {
        self.is_fresh()
            && self.fresh_as_of.load(Ordering::Acquire) >= self.changed_at.load(Ordering::Acquire)
    }

    /// Notes that the replica holds every commit acknowledged before `at` (never moving back).
    fn fresh_at(&self, at: Instant) {
        let at = u64::try_from(at.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        self.fresh_as_of
            .fetch_max(at.saturating_add(1), Ordering::AcqRel);
    }

    /// Takes every read away from the replica until a probe finds it fresh again.
    fn mark_unreachable(&self) {
        self.down.store(true, Ordering::Relaxed);
        self.fresh_as_of.store(0, Ordering::Release);
    }

    /// Waits until the replica (a standby of cluster `system`) has replayed up to `target`,
    /// the primary's flush position asked at `asked`; `false` if that takes longer than
    /// `wait`.
    async fn catch_up(
        &self,
        asked: Instant,
        target: i64,
        primary_system: i64,
        wait: Duration,
    ) -> Result<bool, sqlx::Error> {
        let Db::Postgres(replica) = &self.db else {
            return Ok(false);
        };
        let mut replica = replica.acquire().await?;
        loop {
            let (standby, replayed, system): (bool, Option<i64>, i64) =
                sqlx::query_as(REPLICA_PROBE)
                    .fetch_one(&mut *replica)
                    .await?;
            if !standby || system != primary_system {
                return Ok(false);
            }
            if replayed.is_some_and(|r| r >= target) {
                self.fresh_at(asked);
                return Ok(true);
            }
            if asked.elapsed() >= wait {
                return Ok(false);
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }
}

/// The primary's flush position (bytes of WAL) and its cluster's system identifier.
async fn primary_position(primary: &Db) -> Result<(i64, i64), sqlx::Error> {
    let Db::Postgres(pool) = primary else {
        return Err(sqlx::Error::Configuration(
            "the primary is not PostgreSQL".into(),
        ));
    };
    sqlx::query_as(PRIMARY_PROBE).fetch_one(pool).await
}

/// What one probe found.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// A standby of this primary that has replayed `replayed` bytes of WAL.
    Standby { replayed: i64 },
    /// Reached, but not a standby of this primary: its reads would not be this primary's.
    Foreign(&'static str),
    /// Out of reach (or the primary is).
    Unreachable(String),
}

/// A connection of the guard's own, outside the pools: exports holding every pooled
/// connection must not make the replica look unreachable.
struct Link {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl Link {
    fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            connection: None,
        }
    }

    /// Runs `sql` for one row, connecting first if needed; a failure drops the connection.
    async fn row<R>(&mut self, sql: &'static str) -> Result<R, String>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let attempt = async {
            if self.connection.is_none() {
                self.connection = Some(PgConnection::connect_with(&self.options).await?);
            }
            let connection = self.connection.as_mut().expect("connected just above");
            sqlx::query_as::<_, R>(sql).fetch_one(connection).await
        };
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(row)) => return Ok(row),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        };
        self.connection = None;
        Err(outcome)
    }
}

/// The guard: probes the replica every [`PROBE_EVERY`] until the replica is dropped.
async fn guard(
    replica: Weak<Replica>,
    changed: Arc<tokio::sync::Notify>,
    primary_options: PgConnectOptions,
    replica_options: PgConnectOptions,
) {
    let mut primary = Link::new(primary_options);
    let mut standby = Link::new(replica_options);
    // (instant before asking the primary, the primary's flush position then), oldest first.
    let mut history: VecDeque<(Instant, i64)> = VecDeque::with_capacity(HISTORY);
    let mut due = tokio::time::Instant::now();
    let mut was_fresh = false;
    let mut last_trouble = String::new();
    loop {
        // The replica is not held while waiting, so that dropping it ends the guard.
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = changed.notified() => {}
        }
        let Some(replica) = replica.upgrade() else {
            return;
        };
        let probe = probe(&mut primary, &mut standby, &mut history).await;
        match &probe {
            Probe::Standby { replayed } => {
                replica.down.store(false, Ordering::Relaxed);
                // The latest probe whose position the replica has replayed past.
                if let Some((at, _)) = history.iter().rev().find(|(_, lsn)| lsn <= replayed) {
                    replica.fresh_at(*at);
                }
                last_trouble.clear();
            }
            Probe::Foreign(why) => {
                replica.mark_unreachable();
                if last_trouble != *why {
                    tracing::error!(replica = %replica.shown, "{why}: reading the primary only");
                    last_trouble = (*why).to_owned();
                }
            }
            Probe::Unreachable(why) => {
                replica.mark_unreachable();
                if last_trouble != *why {
                    tracing::warn!(replica = %replica.shown, error = %why, "the replica does not answer: reading the primary");
                    last_trouble.clone_from(why);
                }
            }
        }
        due = tokio::time::Instant::now()
            + if matches!(probe, Probe::Standby { .. }) && replica.change_unconfirmed() {
                CONFIRM_EVERY
            } else {
                PROBE_EVERY
            };
        let fresh = replica.is_fresh();
        if fresh != was_fresh {
            match (fresh, replica.staleness()) {
                (true, _) => {
                    tracing::info!(replica = %replica.shown, "reads that may lag go to the replica")
                }
                (false, Some(staleness)) => {
                    tracing::warn!(replica = %replica.shown, ?staleness, bound = ?MAX_STALENESS, "the replica lags: reading the primary")
                }
                (false, None) => {}
            }
            was_fresh = fresh;
        }
    }
}

/// One measurement: the primary's flush position (noted in `history`), then the replica's.
async fn probe(
    primary: &mut Link,
    standby: &mut Link,
    history: &mut VecDeque<(Instant, i64)>,
) -> Probe {
    let asked = Instant::now();
    let (flushed, primary_system): (i64, i64) = match primary.row(PRIMARY_PROBE).await {
        Ok(row) => row,
        Err(error) => return Probe::Unreachable(format!("the primary: {error}")),
    };
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back((asked, flushed));
    let (in_recovery, replayed, system): (bool, Option<i64>, i64) =
        match standby.row(REPLICA_PROBE).await {
            Ok(row) => row,
            Err(error) => return Probe::Unreachable(error),
        };
    if system != primary_system {
        return Probe::Foreign(
            "the read URL names a server of another cluster, not a replica of the primary",
        );
    }
    match (in_recovery, replayed) {
        (true, Some(replayed)) => Probe::Standby { replayed },
        _ => Probe::Foreign(
            "the read URL names a server that is not a standby (the primary itself, or a promoted replica)",
        ),
    }
}
