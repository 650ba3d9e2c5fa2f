//! The floor server of the load tests (benches/load): the least an axum + sqlx server can
//! do per request, built from the same axum, sqlx and tokio as qrpark, so that qrpark's
//! figures can be read as a share of what this machine and database allow.
//!
//! `POST /insert` writes one row in its own transaction (one commit) and answers its id;
//! `GET /select/{key}` reads one row by its unique key. SQLite is opened exactly as qrpark
//! opens it (WAL, `synchronous = FULL`, the same pool size), PostgreSQL with the same pool
//! size, so the comparison is at equal durability.
//!
//! ```sh
//! FLOOR_DATABASE_URL=sqlite:///tmp/floor.db FLOOR_ADDR=127.0.0.1:9100 \
//!   cargo run --release --example floor
//! ```

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Rows the select benchmark reads, keyed `k0` .. `k{ROWS-1}`.
const ROWS: i64 = 10_000;
/// qrpark's default `QRPARK_DATABASE_MAX_CONNECTIONS`.
const POOL: u32 = 16;

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLOOR_DATABASE_URL")?;
    let addr: SocketAddr = std::env::var("FLOOR_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9100".into())
        .parse()?;
    let db = if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL)
            .connect_with(options)
            .await?;
        sqlx::query(
            "create table if not exists floor_row (id integer primary key autoincrement, \
             key text not null unique, at text not null, payload text not null)",
        )
        .execute(&pool)
        .await?;
        Db::Sqlite(pool)
    } else {
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .connect(&url)
            .await?;
        sqlx::query(
            "create table if not exists floor_row (id bigserial primary key, \
             key text not null unique, at timestamptz not null, payload text not null)",
        )
        .execute(&pool)
        .await?;
        Db::Postgres(pool)
    };
    seed(&db).await?;
    let app = Router::new()
        .route("/insert", post(insert))
        .route("/select/{key}", get(select))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("floor listening on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Writes the rows the selects read, once.
async fn seed(db: &Db) -> Result<(), sqlx::Error> {
    let sql = "insert into floor_row (key, at, payload) \
               select 'k' || n, $1, 'seed' from (with recursive c(n) as \
               (select 0 union all select n + 1 from c where n + 1 < cast($2 as bigint)) select n from c) seq \
               where not exists (select 1 from floor_row where key = 'k0')";
    let now = chrono::Utc::now();
    match db {
        Db::Sqlite(pool) => {
            sqlx::query(sql).bind(now).bind(ROWS).execute(pool).await?;
        }
        Db::Postgres(pool) => {
            sqlx::query(sql).bind(now).bind(ROWS).execute(pool).await?;
        }
    }
    Ok(())
}

async fn insert(State(db): State<Db>) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let key = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now();
    let sql = "insert into floor_row (key, at, payload) values ($1, $2, $3) returning id";
    let id: i64 = match &db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar(sql)
                .bind(&key)
                .bind(now)
                .bind("{}")
                .fetch_one(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar(sql)
                .bind(&key)
                .bind(now)
                .bind("{}")
                .fetch_one(pool)
                .await
        }
    }
    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "key": key }))))
}

async fn select(State(db): State<Db>, Path(key): Path<String>) -> Result<Json<Value>, StatusCode> {
    let sql = "select id, payload from floor_row where key = $1";
    let row: Option<(i64, String)> = match &db {
        Db::Sqlite(pool) => sqlx::query_as(sql).bind(&key).fetch_optional(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).bind(&key).fetch_optional(pool).await,
    }
    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let (id, payload) = row.ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!({ "id": id, "key": key, "payload": payload })))
}
