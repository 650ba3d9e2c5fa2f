//! Auditor export throughput: records per second and peak memory for a large range, on
//! SQLite and (when `QRPARK_BENCH_POSTGRES_URL` is set) PostgreSQL.
//!
//! `QRPARK_BENCH_SESSIONS` sets the number of stopped sessions (default 1,000,000). The
//! sessions are seeded with SQL, as qrpark writes them: time-ordered (v7) ids, a plate
//! with its province character (the demo lot requires plates), one settlement each,
//! statistics gathered; then one export of the whole range is streamed into a counting
//! sink, as `GET /v1/audit/sessions` streams it to a client.
//! Run: `cargo bench --bench export` (`QRPARK_BENCH_SKIP_SQLITE=1`: PostgreSQL only).

use std::str::FromStr;
use std::time::Instant;

use qrpark::audit::export::{self, Format, Range};
use qrpark::domain::qr_token::QrSigningKey;
use qrpark::store::Db;
use tokio::sync::mpsc;

/// The process's peak resident memory so far, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Seeds the sessions; the key that signs the exports' checkpoints.
async fn seed(db: &Db, sessions: i64) -> QrSigningKey {
    let config = qrpark::config::Config {
        database_url: String::new(),
        // The key-encryption key of this run, never the working folder's.
        data_dir: std::env::temp_dir().join(format!("qrpark-bench-{}", uuid::Uuid::now_v7())),
        ..Default::default()
    };
    let state = qrpark::cli::serve::state(config, db.clone()).await.unwrap();
    let seeded = qrpark::cli::demo::seed(&state).await.unwrap();
    let fee = r#"{"currency":"CNY","lines":[{"amount":"25.00","charged":"25.00","from":"2026-09-29T10:00:00+08:00","increments":8,"rule":"daytime","to":"2026-09-29T12:00:00+08:00"}],"tariff_version":1,"total":"25.00"}"#;
    match db {
        Db::Sqlite(pool) => {
            let sql = format!(
                "with recursive n(i) as (select 1 union all select i + 1 from n where i < {sessions}) \
                 insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
                 tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
                 created_at, updated_at, audit_seq, audit_hash, ended_by, plate) \
                 select unhex(printf('%012x7000%016x', (1790000000 + i * 2) * 1000, i)), lot.lot_id, \
                 (select space_id from space where lot_id = lot.lot_id limit 1), lot.operator_id, \
                 'driver-' || (i % 5000), tariff.tariff_id, 1, 'CNY', 'stopped', \
                 strftime('%Y-%m-%dT%H:%M:%S+00:00', 1790000000 + i * 2, 'unixepoch'), \
                 strftime('%Y-%m-%dT%H:%M:%S+00:00', 1790007200 + i * 2, 'unixepoch'), \
                 2500, '{fee}', '2026-09-29T02:00:00+00:00', '2026-09-29T02:00:00+00:00', 1000 + i, randomblob(32), \
                 'driver', '沪A' || printf('%05d', i % 100000) \
                 from n, lot join tariff on tariff.lot_id = lot.lot_id where lot.lot_id = $1"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(seeded.lot_id)
                .execute(pool)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(settlements_sql(
                "randomblob(16)",
                "'QP-' || hex(randomblob(8))",
            )))
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("analyze").execute(pool).await.unwrap();
            sqlx::query("pragma wal_checkpoint(truncate)")
                .execute(pool)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            let sql = format!(
                "insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
                 tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
                 created_at, updated_at, audit_seq, audit_hash, ended_by, plate) \
                 select (lpad(to_hex((1790000000 + i * 2) * 1000::bigint), 12, '0') || '7000' \
                 || lpad(to_hex(i), 16, '0'))::uuid, lot.lot_id, \
                 (select space_id from space where lot_id = lot.lot_id limit 1), lot.operator_id, \
                 'driver-' || (i % 5000), tariff.tariff_id, 1, 'CNY', 'stopped', \
                 to_timestamp(1790000000 + i * 2), to_timestamp(1790007200 + i * 2), \
                 2500, '{fee}', now(), now(), 1000 + i, \
                 decode(md5(i::text) || md5((-i)::text), 'hex'), 'driver', \
                 '沪A' || lpad((i % 100000)::text, 5, '0') \
                 from generate_series(1, {sessions}) as i, lot join tariff on tariff.lot_id = lot.lot_id \
                 where lot.lot_id = $1"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(seeded.lot_id)
                .execute(pool)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(settlements_sql(
                "gen_random_uuid()",
                "'QP-' || md5(session_id::text)",
            )))
            .execute(pool)
            .await
            .unwrap();
            // What autovacuum would have done by the time anyone exports: statistics, and
            // the visibility map that lets index-only scans skip the table.
            sqlx::query("vacuum analyze").execute(pool).await.unwrap();
            // And the load's dirty pages written out, so the checkpointer does not compete
            // with the export (needs the right to checkpoint; skipped without it).
            let _ = sqlx::query("checkpoint").execute(pool).await;
        }
    }
    state
        .keys
        .signing_key(
            qrpark::domain::key_purpose::KeyPurpose::Checkpoint,
            state.clock.now(),
        )
        .await
        .unwrap()
}

/// Every stopped session's settlement, as a real stop writes it (`id` and `reference`: the
/// backend's expressions for a fresh id and a unique reference).
fn settlements_sql(id: &str, reference: &str) -> String {
    format!(
        "insert into settlement (settlement_id, session_id, reference, driver, operator_id, \
         currency, amount_minor, status, created_at, updated_at, settled_at) \
         select {id}, session_id, {reference}, driver, operator_id, currency, fee_minor, \
         'settled', ended_at, ended_at, ended_at from session where status = 'stopped'"
    )
}

async fn run(name: &str, db: Db, sessions: i64) {
    db.migrate().await.unwrap();
    let seeding = Instant::now();
    let key = seed(&db, sessions).await;
    eprintln!(
        "{name}: seeded {sessions} sessions in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let range = Range {
        from: "2000-01-01T00:00:00Z".parse().unwrap(),
        to: "2100-01-01T00:00:00Z".parse().unwrap(),
        operator: None,
        lot: None,
    };
    // Each format three times, alternating (the pool hands each run whichever connection
    // is free): the spread between runs is part of the figure.
    let formats = [Format::Jsonl, Format::Csv];
    for format in formats.iter().cycle().take(6).copied() {
        let before = peak_rss_mib();
        let (sender, mut receiver) = mpsc::channel::<export::Chunk>(8);
        let started = Instant::now();
        let producer = {
            let (db, range, key) = (db.clone(), range.clone(), key.clone());
            tokio::spawn(async move { export::produce(&db, &range, format, &key, &sender).await })
        };
        let mut bytes = 0usize;
        while let Some(chunk) = receiver.recv().await {
            bytes += chunk.bytes.len();
        }
        let (count, _) = producer.await.unwrap().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{name} {}: {count} records, {:.0} MB in {seconds:.2} s = {:.0} records/s; peak RSS {before:.0} -> {:.0} MiB",
            format.name(),
            bytes as f64 / 1e6,
            count as f64 / seconds,
            peak_rss_mib()
        );
        assert_eq!(count as i64, sessions);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no other arguments.
    let sessions: i64 = std::env::var("QRPARK_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("qrpark-export-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        if std::env::var_os("QRPARK_BENCH_SKIP_SQLITE").is_none() {
            run("sqlite", Db::connect(&url, 4).await.unwrap(), sessions).await;
        }
        if std::env::var_os("QRPARK_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            eprintln!("kept {}", dir.display());
        }
        if let Ok(url) = std::env::var("QRPARK_BENCH_POSTGRES_URL") {
            let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
            run(
                "postgres",
                Db::connect_postgres(options, 4).await.unwrap(),
                sessions,
            )
            .await;
        } else {
            eprintln!("postgres: skipped (set QRPARK_BENCH_POSTGRES_URL to a fresh database)");
        }
    });
}
