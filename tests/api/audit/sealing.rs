//! The audit chain's sealer (docs/audit.md, "Sealing"): changes write their events without
//! touching the chain's head, and sealers link them into it in batches, each exactly once,
//! in the order they were written, within the sealing interval; exports seal first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qrpark::domain::audit::{Event, GENESIS};
use qrpark::store::Db;
use qrpark::store::audit::{Turn, seal_batch};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinSet;

use super::{FROM, StoredEvent, TO, export, keys};
use crate::helpers::TestApp;
use crate::sessions::{parking_lot, start};

/// Drivers starting and stopping at once, each on a space of its own.
const WRITERS: usize = 16;
/// Start-and-stop rounds of each driver.
const ROUNDS: usize = 3;

pub(super) async fn count(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every sealed event, in chain order.
pub(crate) async fn chain(db: &Db) -> Vec<StoredEvent> {
    let sql = "select seq, at, kind, entity_id, payload, prev_hash, hash from audit_event \
               order by seq";
    match db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("read the chain")
}

/// Recomputes the chain from its stored events: numbered 1, 2, 3... without a gap, each
/// hash over the one before, instants never going back; panics otherwise.
pub(crate) fn assert_chain_verifies(rows: &[StoredEvent]) {
    let mut prev = GENESIS;
    let mut latest = None;
    for (i, (seq, at, kind, entity_id, payload, stored_prev, hash)) in rows.iter().enumerate() {
        assert_eq!(*seq, i as i64 + 1, "numbers run on without a gap");
        assert_eq!(stored_prev.as_slice(), prev, "event {seq} does not link");
        let event = Event {
            seq: *seq,
            at: *at,
            kind: kind.clone(),
            entity_id: entity_id.clone(),
            payload: serde_json::from_str(payload).unwrap(),
        };
        prev = event.hash(&prev);
        assert_eq!(hash.as_slice(), prev, "event {seq}'s hash");
        assert!(latest <= Some(*at), "event {seq}'s instant goes back");
        latest = Some(*at);
    }
}

/// Each session's `session.started` and `session.stopped` events are in the chain exactly
/// once, the start before the stop; their places by session.
fn places_of_sessions(rows: &[StoredEvent]) -> HashMap<String, (i64, i64)> {
    let mut places: HashMap<String, (Option<i64>, Option<i64>)> = HashMap::new();
    for (seq, _, kind, entity_id, ..) in rows {
        let entry = places.entry(entity_id.clone()).or_default();
        let slot = match kind.as_str() {
            "session.started" => &mut entry.0,
            "session.stopped" => &mut entry.1,
            _ => continue,
        };
        assert!(slot.is_none(), "{kind} of {entity_id} sealed twice");
        *slot = Some(*seq);
    }
    places
        .into_iter()
        .filter(|(_, (started, stopped))| started.is_some() || stopped.is_some())
        .map(|(id, (started, stopped))| {
            let (started, stopped) = (started.unwrap(), stopped.expect("every session stopped"));
            assert!(
                started < stopped,
                "{id} stopped at {stopped} before its start at {started}"
            );
            (id, (started, stopped))
        })
        .collect()
}

/// A session's id, `audit_seq`, `audit_hash` and `audit_pending`.
type SessionPlace = (uuid::Uuid, Option<i64>, Option<Vec<u8>>, Option<i64>);

/// The sessions' own record of their place: the seq and hash of their `session.stopped`
/// event, and (PostgreSQL) their settlement's copy of it.
async fn assert_sessions_hold_their_places(app: &TestApp, rows: &[StoredEvent]) {
    let sql = "select session_id, audit_seq, audit_hash, audit_pending from session \
               where status = 'stopped'";
    let stored: Vec<SessionPlace> = match &app.db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .unwrap();
    let stops: HashMap<&str, (i64, &[u8])> = rows
        .iter()
        .filter(|r| r.2 == "session.stopped")
        .map(|r| (r.3.as_str(), (r.0, r.6.as_slice())))
        .collect();
    assert_eq!(stored.len(), stops.len());
    for (id, seq, hash, pending) in stored {
        let (event_seq, event_hash) = stops[id.to_string().as_str()];
        assert_eq!(seq, Some(event_seq), "{id}'s chain place");
        assert_eq!(hash.as_deref(), Some(event_hash), "{id}'s chain hash");
        assert_eq!(pending, None, "{id} waits for nothing");
    }
    if let Db::Postgres(pool) = &app.db {
        let astray: i64 = sqlx::query_scalar(
            "select count(*) from settlement st join session s using (session_id) \
             where st.session_audit_seq is distinct from s.audit_seq",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            astray, 0,
            "every settlement carries its session's chain place"
        );
    }
}

/// Many drivers start and stop at once while a sealer runs beside them: every event ends
/// up sealed exactly once, in a chain that verifies, numbered without a gap, each session's
/// start before its stop; an export of the lot verifies, and a tampered one does not.
pub(super) async fn concurrent_writes_are_sealed_once_in_causal_order(app: TestApp) {
    let op = app.operator("Busy").await;
    let codes: Vec<String> = (0..WRITERS).map(|i| format!("C-{i:02}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (_, spaces) = parking_lot(&app, &op, &codes).await;
    let app = Arc::new(app);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A sealer racing the writers, as every `qrpark serve` runs one.
    let sealer = {
        let (db, done) = (app.db.clone(), done.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                seal_batch(&db, Turn::Skip).await.expect("a sealing round");
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rounds
        })
    };
    let mut writers = JoinSet::new();
    for (i, (_, qr)) in spaces.into_iter().enumerate() {
        let app = app.clone();
        writers.spawn(async move {
            let driver = app.driver_token(&format!("busy-{i}"));
            let mut ids = Vec::new();
            for round in 0..ROUNDS {
                let started = start(&app, &driver, &format!("k{i}-{round}"), &qr).await;
                assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
                let id = started.body["id"].as_str().unwrap().to_owned();
                let stopped = app.stop(&driver, &id).await;
                assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
                ids.push(id);
            }
            ids
        });
    }
    let ids: Vec<String> = writers.join_all().await.into_iter().flatten().collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(sealer.await.unwrap() > 0);
    let app = Arc::try_unwrap(app).ok().unwrap();
    app.seal().await;

    assert_eq!(
        count(&app.db, "select count(*) from audit_pending").await,
        0
    );
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    let places = places_of_sessions(&rows);
    assert_eq!(places.len(), WRITERS * ROUNDS);
    for id in &ids {
        assert!(places.contains_key(id), "{id} in the chain");
    }
    // Nothing else lost or doubled: each change of this test (keys, the operator, its
    // lot, tariff and spaces, the sessions) is one event of its own.
    let distinct: std::collections::HashSet<(&str, &str)> =
        rows.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect();
    assert_eq!(distinct.len(), rows.len(), "an event sealed twice");
    assert_eq!(
        rows.iter().filter(|r| r.2 == "space.created").count(),
        WRITERS
    );
    assert_sessions_hold_their_places(&app, &rows).await;

    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let keys = keys(&app).await;
    let verified = qrpark::audit::verify::verify(&jsonl, None, &keys, None).expect("intact");
    assert_eq!(verified.records, (WRITERS * ROUNDS) as u64);
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("checkpoint").is_none())
        .collect();
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r["audit_seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "chain order");
    let tampered = jsonl.replacen("\"driver\":\"busy-", "\"driver\":\"fake-", 1);
    assert!(qrpark::audit::verify::verify(&tampered, None, &keys, None).is_err());
}

/// An export asked for right after a stop holds it: the export seals what is pending
/// first, and so does the summary.
pub(super) async fn an_export_right_after_a_stop_holds_it(app: TestApp) {
    let op = app.operator("Prompt").await;
    let (_, spaces) = parking_lot(&app, &op, &["P-1"]).await;
    let driver = app.driver_token("prompt-1");
    let started = start(&app, &driver, "k", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    // Nothing has sealed the stop yet (the test app runs no background sealer).
    assert!(count(&app.db, "select count(*) from audit_pending").await > 0);
    assert_eq!(
        count(
            &app.db,
            "select count(*) from session where audit_seq is not null"
        )
        .await,
        0
    );
    let summary = app
        .get(
            &format!("/v1/audit/summary?from={FROM}&to={TO}"),
            Some(&super::auditor(&app)),
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert_eq!(summary.body["rows"][0]["sessions"], 1, "{}", summary.text);
    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the session and the checkpoint: {jsonl}");
    assert_eq!(lines[0]["session_id"], id.as_str());
    assert_eq!(
        count(&app.db, "select count(*) from audit_pending").await,
        0
    );
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    let stop = rows.iter().find(|r| r.2 == "session.stopped").unwrap();
    assert_eq!(lines[0]["audit_seq"], stop.0);
    assert_eq!(lines[0]["audit_hash"], qrpark::domain::audit::hex(&stop.6));
}

/// The background sealer of `qrpark serve` seals within its interval without any read,
/// and seals once more when it stops.
pub(super) async fn the_background_sealer_seals_within_its_interval(app: TestApp) {
    let op = app.operator("Sealed").await;
    let (_, spaces) = parking_lot(&app, &op, &["S-1", "S-2"]).await;
    let driver = app.driver_token("sealed-1");
    let state = |interval_ms: u64| qrpark::AppState {
        config: Arc::new(qrpark::config::Config {
            audit_seal_interval_ms: interval_ms,
            ..(*app.state.config).clone()
        }),
        ..app.state.clone()
    };
    let sealer = qrpark::audit::sealer::spawn(state(20));
    let started = start(&app, &driver, "k1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    let asked = Instant::now();
    let sealed = "select count(*) from audit_event where kind = 'session.stopped'";
    while count(&app.db, sealed).await == 0 {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the stop is not sealed 5 s after it, with a 20 ms interval"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("sealed {:?} after the stop's answer", asked.elapsed());
    assert_eq!(
        count(
            &app.db,
            "select count(*) from session where audit_seq is not null"
        )
        .await,
        1
    );
    sealer.stop().await;

    // A sealer that would not run again for a minute still leaves nothing behind when it
    // stops: its first round (at once) seals what is there, the stop seals the rest.
    let sealer = qrpark::audit::sealer::spawn(state(60_000));
    let asked = Instant::now();
    while count(&app.db, "select count(*) from audit_pending").await > 0 {
        assert!(asked.elapsed() < Duration::from_secs(5), "the first round");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = start(&app, &driver, "k2", &spaces[1].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(count(&app.db, "select count(*) from audit_pending").await > 0);
    sealer.stop().await;
    assert_eq!(
        count(&app.db, "select count(*) from audit_pending").await,
        0
    );
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    assert_eq!(rows.iter().filter(|r| r.2 == "session.started").count(), 2);
}

/// PostgreSQL draws a pending event's id when it is written, not when its transaction
/// commits: an event with a lower id that commits after a higher one was sealed is sealed
/// in a later batch, never skipped (each batch reads whatever is left), and never twice.
/// (SQLite writes one transaction at a time, so ids there follow commits.)
pub(super) async fn a_late_commit_is_sealed_later_not_skipped(app: TestApp) {
    let Db::Postgres(pool) = &app.db else {
        return;
    };
    app.seal().await;
    let mut late = pool.begin().await.unwrap();
    let late_id: i64 = sqlx::query_scalar(
        "insert into audit_pending (at, kind, entity_id, payload) \
         values (now(), 'test.late', 'late', '{}') returning id",
    )
    .fetch_one(&mut *late)
    .await
    .unwrap();
    // A change committed after the late event's id was drawn, and sealed at once.
    app.operator("Early").await;
    let early_id: i64 = sqlx::query_scalar("select max(id) from audit_pending")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(early_id > late_id, "the later writer drew the higher id");
    assert_eq!(app.seal().await, 1, "the committed event only");
    assert_eq!(
        count(&app.db, "select count(*) from audit_pending").await,
        0,
        "the late event is not visible yet"
    );
    late.commit().await.unwrap();
    assert_eq!(app.seal().await, 1, "the late event, in a later batch");
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    // Sealed once, after the event committed before it, whatever its lower id.
    let kinds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "test.late").count(), 1);
    assert_eq!(kinds[kinds.len() - 2..], ["operator.created", "test.late"]);
    assert_eq!(
        count(&app.db, "select count(*) from audit_pending").await,
        0
    );
}

/// PostgreSQL: sealing a stop changes its session's chain place (a key lock on the session)
/// and, by trigger, its settlement's copy; a refund holds the settlement and then
/// key-shares the session (its foreign key). The sealer takes settlements first, so the two
/// wait for each other in one order only, never crosswise (a deadlock would fail one).
pub(super) async fn a_refund_and_the_sealer_never_deadlock(app: TestApp) {
    let Db::Postgres(pool) = &app.db else {
        return;
    };
    let op = app.operator("Refunding").await;
    let (_, spaces) = parking_lot(&app, &op, &["R-1"]).await;
    let driver = app.driver_token("refunded-1");
    let started = start(&app, &driver, "k", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id: uuid::Uuid = started.body["id"].as_str().unwrap().parse().unwrap();
    app.clock.advance(chrono::TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id.to_string()).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);

    // A refund's first steps: its settlement locked by the raise of `refunded_minor`.
    let mut refund = pool.begin().await.unwrap();
    sqlx::query("update settlement set refunded_minor = refunded_minor + 1 where session_id = $1")
        .bind(id)
        .execute(&mut *refund)
        .await
        .unwrap();
    let sealer = tokio::spawn({
        let db = app.db.clone();
        async move { qrpark::store::audit::seal_pending(&db).await }
    });
    // The sealer now waits for the refund's lock.
    let asked = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() \
             and wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "the sealer waits");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The refund's insert key-shares the session, as its foreign key's check does.
    sqlx::query("select 1 from session where session_id = $1 for key share")
        .bind(id)
        .execute(&mut *refund)
        .await
        .expect("the refund is not caught in a deadlock");
    sqlx::query("update settlement set refunded_minor = refunded_minor - 1 where session_id = $1")
        .bind(id)
        .execute(&mut *refund)
        .await
        .unwrap();
    refund.commit().await.unwrap();
    assert!(
        sealer
            .await
            .unwrap()
            .expect("the sealer is not caught either")
            > 0
    );
    let (seq, copy): (Option<i64>, Option<i64>) = sqlx::query_as(
        "select s.audit_seq, st.session_audit_seq from session s \
         join settlement st using (session_id) where s.session_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(seq.is_some());
    assert_eq!(
        copy, seq,
        "the settlement carries its session's chain place"
    );
}
