//! Persistence through sqlx on SQLite (the embedded default) or PostgreSQL, chosen by the URL.
//!
//! Both backends run the same SQL text (`$1` placeholders work on both) through runtime
//! `query_as` with derived `FromRow` rows; [`on_db!`] writes each query once and lets the
//! compiler instantiate it for whichever pool is live.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::Backend;

pub mod audit;
pub mod audit_summary;
pub mod cache;
pub mod console;
pub mod export;
pub mod idempotency;
pub mod ledger;
pub mod lots;
pub mod metrics;
pub mod operators;
pub mod outbox;
pub mod reads;
pub mod refunds;
pub mod secrets;
pub mod session_pages;
pub mod sessions;
pub mod settlements;
pub mod signing_keys;
pub mod space_qr;
pub mod spaces;
pub mod states;
pub mod tariffs;
pub mod vehicles;

/// Runs `$body` with `$pool` bound to the live backend's pool (or transaction source).
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Failures of the storage layer that callers treat differently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule of the schema refused the write.
    #[error("conflicts with an existing record ({0:?})")]
    Conflict(Constraint),
    /// Anything else the database said; a server-side failure.
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Uniqueness constraints that callers report to users, by name on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    OperatorName,
    OperatorKeyHash,
    LotName,
    SpaceCode,
    TariffVersion,
    /// One active session per space (a partial unique index).
    ActiveSessionPerSpace,
    /// A driver's cap on active sessions (counted in the start's transaction).
    ActiveSessionsPerDriver,
}

/// Each constraint's PostgreSQL name and the columns SQLite names in its message.
const CONSTRAINTS: &[(Constraint, &str, &str)] = &[
    (
        Constraint::OperatorName,
        "operator_name_key",
        "operator.name",
    ),
    (
        Constraint::OperatorKeyHash,
        "operator_key_hash_key",
        "operator_key.key_hash",
    ),
    (
        Constraint::LotName,
        "lot_operator_name_key",
        "lot.operator_id, lot.name",
    ),
    (
        Constraint::SpaceCode,
        "space_lot_code_key",
        "space.lot_id, space.code",
    ),
    (
        Constraint::TariffVersion,
        "tariff_lot_version_key",
        "tariff.lot_id, tariff.version",
    ),
    (
        Constraint::ActiveSessionPerSpace,
        "session_one_active_per_space",
        "session.space_id",
    ),
];

impl From<sqlx::Error> for StoreError {
    /// The one place where errors are classified: a known unique violation becomes
    /// [`StoreError::Conflict`]; every `?` in the store goes through here.
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db_err) = &err
            && db_err.is_unique_violation()
        {
            // PostgreSQL names the constraint; SQLite only lists the columns in its message.
            let name = db_err.constraint();
            let message = db_err.message();
            let found = CONSTRAINTS.iter().find(|(_, pg, columns)| {
                name == Some(*pg) || message.ends_with(&format!("failed: {columns}"))
            });
            if let Some((constraint, _, _)) = found {
                return Self::Conflict(*constraint);
            }
        }
        Self::Database(err)
    }
}

/// Whether `err` says the database cannot answer right now, rather than refusing the query:
/// no connection came free in time, the connection broke, or the server is shutting down,
/// starting up or out of connections (SQLSTATE classes 08 and 57P, code 53300). Such a
/// failure answers 503 `unavailable`, and the pool reconnects on its own once it is back.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

/// How long a caller waits for a pooled connection before giving up with 503: long enough
/// to ride out a burst, short enough that a database that is down fails requests fast.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `$first, $first+1, ...`: the placeholders of an `in (...)` list of `count` values,
/// bound one by one (SQLite has no arrays, so both backends take the list this way).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of `{select} in ({ids}) {rest}`: one query for any number of ids (none: no
/// query at all). Both backends take the list one placeholder per id.
pub(crate) async fn fetch_by_ids<R>(
    db: &Db,
    select: &str,
    ids: &[uuid::Uuid],
    rest: &str,
) -> StoreResult<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{select} in ({}) {rest}", placeholders(1, ids.len()));
    on_db!(db, pool => {
        let mut query = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        Ok(query.fetch_all(pool).await?)
    })
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// How many rows a statement changed, for code generic over the backend (sqlx's
/// `Database::QueryResult` has no such method in common).
pub(crate) trait RowsAffected {
    fn rows(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// Creates a new SQLite database file with mode 0600 before SQLite does (SQLite would
/// follow the umask, often 0644): it holds drivers' identities and plates, and SQLite gives
/// its `-wal` and `-shm` files the database file's mode. An existing file readable by
/// others is left as it is, with a warning. Nothing is done for in-memory URLs (refused
/// after connecting) or when the file cannot be made (SQLite then says why).
fn create_private_file(path: &std::path::Path, url: &str) {
    let shown = path.to_string_lossy();
    // `:memory:` (however the URL spelled it) is SQLite's name for no file at all.
    if url.contains("mode=memory")
        || shown.is_empty()
        || shown == ":memory:"
        || shown.starts_with("file:")
    {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => tracing::warn!(
                file = %shown,
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the database file is readable by other users: chmod 600 it"
            ),
            Ok(_) => {}
            Err(_) => {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
            }
        }
    }
}

impl Db {
    /// Opens a pool for `url`; SQLite files are created if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// Like [`Db::connect`], waiting at most `acquire_timeout` for a pooled connection.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        match Backend::of(url) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    // Bound the WAL: truncate it back to 64 MiB after each checkpoint, and
                    // checkpoint every 1000 pages (the SQLite default, stated for clarity).
                    .pragma("journal_size_limit", "67108864")
                    .pragma("wal_autocheckpoint", "1000")
                    // Deleted content is overwritten with zeros, not left in free pages: what
                    // is erased (plates, plaintext keys of earlier versions) stays erased.
                    .pragma("secure_delete", "on");
                create_private_file(options.get_filename(), url);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(options)
                    .await?;
                // Sessions and payments must outlive the process, and the export reads the
                // file: SQLite itself says whether there is one, however the URL spelled it.
                let file: String =
                    sqlx::query_scalar("select file from pragma_database_list where name = 'main'")
                        .fetch_one(&pool)
                        .await?;
                if file.is_empty() {
                    pool.close().await;
                    return Err(sqlx::Error::Configuration(
                        format!(
                            "{} names no database file (in memory or temporary): qrpark \
                             would lose every session when it stops",
                            crate::config::redact_url(url)
                        )
                        .into(),
                    ));
                }
                Ok(Self::Sqlite(pool))
            }
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)?;
                Self::connect_postgres_with(options, max_connections, acquire_timeout).await
            }
            None => Err(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL scheme in {}",
                    crate::config::redact_url(url)
                )
                .into(),
            )),
        }
    }

    /// Opens a PostgreSQL pool with explicit options (tests use a schema per test).
    pub async fn connect_postgres(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, sqlx::Error> {
        Self::connect_postgres_with(options, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// Like [`Db::connect_postgres`], waiting at most `acquire_timeout` for a connection.
    pub async fn connect_postgres_with(
        options: PgConnectOptions,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    /// Applies the backend's migrations (PostgreSQL serialises concurrent callers with an
    /// advisory lock, so several processes may start at once).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Self::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
    }

    /// Applies the migrations up to `version` only: for tests of what a later migration
    /// does to the data an earlier schema held.
    pub async fn migrate_until(&self, version: i64) -> Result<(), sqlx::migrate::MigrateError> {
        let mut migrator = match self {
            Self::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Self::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        on_db!(self, pool => migrator.run(pool).await)
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, pool => sqlx::query("select 1").execute(pool).await.map(|_| ()))
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Open connections and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        on_db!(self, pool => (pool.size(), pool.num_idle()))
    }

    /// Closes every connection; SQLite checkpoints its WAL on the last close.
    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::{Constraint, Db, StoreError, is_unavailable};

    #[test]
    fn a_database_out_of_reach_is_unavailable_and_a_refused_query_is_not() {
        for unreachable in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            sqlx::Error::WorkerCrashed,
        ] {
            assert!(is_unavailable(&unreachable), "{unreachable:?}");
        }
        for refused in [
            sqlx::Error::RowNotFound,
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            assert!(!is_unavailable(&refused), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn only_the_one_session_per_space_index_is_a_taken_space() {
        let dir = std::env::temp_dir().join(format!("qrpark-store-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("q.db").display());
        let Db::Sqlite(pool) = Db::connect(&url, 1).await.unwrap() else {
            unreachable!("a sqlite URL opens SQLite");
        };
        for sql in [
            "create table session (space_id integer, audit_seq integer, status text)",
            "create unique index session_one_active_per_space on session (space_id) \
             where status = 'active'",
            "create unique index session_audit_seq_key on session (audit_seq)",
            "insert into session values (1, 1, 'active')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let insert = |space: i64, seq: i64| {
            sqlx::query("insert into session values ($1, $2, 'active')")
                .bind(space)
                .bind(seq)
                .execute(&pool)
        };
        let taken = StoreError::from(insert(1, 2).await.unwrap_err());
        assert!(
            matches!(
                taken,
                StoreError::Conflict(Constraint::ActiveSessionPerSpace)
            ),
            "{taken:?}"
        );
        let other = StoreError::from(insert(2, 1).await.unwrap_err());
        assert!(matches!(other, StoreError::Database(_)), "{other:?}");
        pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_file_and_its_journal_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("qrpark-store-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("q.db");
        let db = Db::connect(&format!("sqlite://{}", file.display()), 1)
            .await
            .unwrap();
        db.ping().await.unwrap();
        for name in ["q.db", "q.db-wal", "q.db-shm"] {
            let mode = std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn sqlite_without_a_database_file_is_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://%3Amemory%3A",
            "sqlite://x.db?mode=memory",
            "sqlite:",
        ] {
            let Err(error) = Db::connect(url, 1).await else {
                panic!("{url} was accepted");
            };
            let error = error.to_string();
            assert!(error.contains("names no database file"), "{url}: {error}");
        }
        let dir = std::env::temp_dir().join(format!("qrpark-store-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("q.db").display());
        Db::connect(&url, 1).await.unwrap().close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
