//! Real `qrpark serve` processes on one database: several of them racing for one space, and
//! one of them killed (SIGKILL) under load, then restarted on the same database.
//!
//! The `TestApp` each test receives only provides the fresh, migrated database (SQLite file
//! or PostgreSQL schema), the city identity provider whose tokens the children trust, and a
//! pool to inspect the database; every request goes to the child processes, started with
//! `env!("CARGO_BIN_EXE_qrpark")` and killed by their guards even when an assertion fails.
//! `--nocapture` shows the figures of each run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qrpark::store::Db;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, both_backends};

mod crash_money;
mod endings;
pub(crate) mod harness;
mod sealing;

use harness::{
    Shared, Starting, assert_balanced, assert_children_use_the_test_database,
    assert_settlements_match_sessions, backend, charged_tariff, client, ledger_totals, lot, minor,
    scalar, send, start, stop, until_kill,
};

both_backends!(
    hundred_starts_over_three_processes_make_one_session,
    killed_server_keeps_every_acknowledged_write,
    planned_endings_happen_once_over_three_processes,
    killed_servers_pay_and_refund_once,
    two_processes_seal_every_event_once_in_the_background,
);

use crash_money::killed_servers_pay_and_refund_once;

use endings::planned_endings_happen_once_over_three_processes;
use sealing::two_processes_seal_every_event_once_in_the_background;

async fn hundred_starts_over_three_processes_make_one_session(app: TestApp) {
    let began = Instant::now();
    let backend = backend(&app.db);
    let shared = Shared::of(&app).await;
    let key = shared.operator("Race Parking");
    // All three start together (each runs the migrations on start: a no-op here).
    let starting: Vec<Starting> = (0..3)
        .map(|i| shared.spawn(&format!("server-{i}")))
        .collect();
    let mut servers = Vec::new();
    for s in starting {
        servers.push(s.ready().await);
    }
    let spawned = began.elapsed();
    let qr = lot(
        &servers[1].base,
        &key,
        charged_tariff(),
        &["A-1".to_owned()],
    )
    .await
    .remove(0);
    assert_children_use_the_test_database(&app, &shared, 1).await;

    let client = client();
    let tokens: Vec<String> = (0..100)
        .map(|i| shared.driver_token(&format!("racer-{i}")))
        .collect();
    let mut race = JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let (client, token, qr) = (client.clone(), token.clone(), qr.clone());
        let base = servers[i % 3].base.clone();
        race.spawn(async move {
            let answer = start(&client, &base, &token, &format!("start-{i}"), &qr).await;
            (i, answer.expect("every start gets an answer"))
        });
    }
    let mut answers: Vec<(usize, Answer)> = race.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (_, a) in &answers {
        *statuses.entry(a.status.as_u16()).or_default() += 1;
    }
    eprintln!("[{backend}] 100 starts over 3 processes: statuses {statuses:?}");
    for (i, a) in &answers {
        assert!(
            !a.status.is_server_error(),
            "start {i} on server-{}: {} {}",
            i % 3,
            a.status,
            a.text
        );
    }
    let winners: Vec<usize> = answers
        .iter()
        .filter(|(_, a)| a.status == StatusCode::CREATED)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one start wins: {winners:?}");
    for (i, a) in &answers {
        if a.status != StatusCode::CREATED {
            assert_eq!(a.status, StatusCode::CONFLICT, "start {i}: {}", a.text);
            assert_eq!(a.problem_code(), "space_occupied", "start {i}");
        }
    }
    let winner = winners[0];
    let id = answers[winner].1.body["id"].as_str().unwrap().to_owned();
    assert_eq!(answers[winner].1.body["status"], "active");

    let mut stops = JoinSet::new();
    for j in 0..50 {
        let (client, token, id) = (client.clone(), tokens[winner].clone(), id.clone());
        let base = servers[j % 3].base.clone();
        stops.spawn(async move {
            (
                j,
                stop(&client, &base, &token, &id)
                    .await
                    .expect("every stop gets an answer"),
            )
        });
    }
    let stopped: Vec<(usize, Answer)> = stops.join_all().await;
    for (j, a) in &stopped {
        assert_eq!(
            a.status,
            StatusCode::OK,
            "stop {j} on server-{}: {}",
            j % 3,
            a.text
        );
    }
    let first = &stopped[0].1.body;
    for (j, a) in &stopped {
        assert_eq!(&a.body, first, "stop {j} answers like every other stop");
    }
    assert_eq!(first["status"], "stopped");
    assert_eq!(first["settlement"]["status"], "settled");
    let fee = minor(&first["fee"]["total"]);
    assert_eq!(minor(&first["settlement"]["amount"]), fee);

    assert_eq!(scalar(&app.db, "select count(*) from session").await, 1);
    assert_eq!(scalar(&app.db, "select count(*) from settlement").await, 1);
    let totals = ledger_totals(&app.db).await;
    assert_balanced(&totals);
    let expected = if fee > 0 {
        vec![("CNY".to_owned(), fee, fee)]
    } else {
        vec![]
    };
    assert_eq!(totals, expected, "the one settlement's two entries");
    eprintln!(
        "[{backend}] winner: start {winner} on server-{}; 50 stops all 200 and identical; \
         fee {} CNY, 1 settlement, ledger {totals:?}; processes ready in {spawned:?}, \
         test took {:?}",
        winner % 3,
        first["fee"]["total"],
        began.elapsed()
    );
}

/// What the load saw answered.
#[derive(Default)]
struct Acknowledged {
    /// (session id, driver number, space number) of every 201.
    starts: Vec<(String, usize, usize)>,
    /// Session id -> the 200 answer of its stop.
    stops: HashMap<String, Value>,
    /// Refusals because another session held the space.
    occupied: usize,
    /// Requests without a complete answer (the kill), by kind; the starts as (driver
    /// number, idempotency key, space number) to retry them after the restart.
    failed_starts: Vec<(usize, String, usize)>,
    failed_stops: usize,
    /// Answers that are neither success nor `space_occupied`.
    unexpected: Vec<String>,
    /// When the load saw its first answer, and the slowest answer.
    first_answer: Option<Duration>,
    slowest: Duration,
}

impl Acknowledged {
    fn answered(&mut self, since: Instant, sent: Instant) {
        self.first_answer.get_or_insert_with(|| since.elapsed());
        self.slowest = self.slowest.max(sent.elapsed());
    }
}

const SPACES: usize = 40;
const DRIVERS: usize = 60;
/// Kill once this many writes were acknowledged and the load ran for KILL_NOT_BEFORE, or at
/// KILL_AT_LATEST whatever happened (then the test fails for want of acknowledged writes).
const KILL_AT_ACKNOWLEDGED: usize = 120;
const KILL_NOT_BEFORE: Duration = Duration::from_millis(500);
const KILL_AT_LATEST: Duration = Duration::from_secs(20);
/// Each driver gives up after this many starts even if the kill never came.
const ROUNDS: usize = 200;

async fn killed_server_keeps_every_acknowledged_write(app: TestApp) {
    let began = Instant::now();
    let backend = backend(&app.db);
    let shared = Shared::of(&app).await;
    let key = shared.operator("Crash Parking");
    let mut server = shared.serve("server-before-kill").await;
    let codes: Vec<String> = (1..=SPACES).map(|n| format!("A-{n:02}")).collect();
    let qrs = Arc::new(lot(&server.base, &key, charged_tariff(), &codes).await);
    assert_children_use_the_test_database(&app, &shared, 1).await;

    let tokens: Arc<Vec<String>> = Arc::new(
        (0..DRIVERS)
            .map(|d| shared.driver_token(&format!("driver-{d}")))
            .collect(),
    );
    // Nothing but the server has the database open from here on: after the kill, the
    // restarted server alone recovers it (on SQLite: from the WAL the killed one left).
    app.db.close().await;
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Set just before the kill: a request that fails before it is a failure of its own.
    let killed = Arc::new(AtomicBool::new(false));
    let client = client();
    let load_began = Instant::now();
    let mut load = JoinSet::new();
    for d in 0..DRIVERS {
        let (client, base, qrs, tokens) = (
            client.clone(),
            server.base.clone(),
            qrs.clone(),
            tokens.clone(),
        );
        let (seen, acknowledged, in_flight, killed) = (
            seen.clone(),
            acknowledged.clone(),
            in_flight.clone(),
            killed.clone(),
        );
        load.spawn(async move {
            let token = &tokens[d];
            for round in 0..ROUNDS {
                // Drivers wander over the spaces so that several of them race for each.
                let space = (d * 7 + round * 3) % SPACES;
                in_flight.fetch_add(1, Ordering::SeqCst);
                let sent = Instant::now();
                let started = start(
                    &client,
                    &base,
                    token,
                    &format!("d{d}-r{round}"),
                    &qrs[space],
                )
                .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if started.is_ok() {
                    seen.lock().unwrap().answered(load_began, sent);
                }
                let started = match started {
                    Err(e) => {
                        let mut seen = seen.lock().unwrap();
                        if !killed.load(Ordering::SeqCst) {
                            seen.unexpected.push(format!("start before the kill: {e}"));
                        }
                        seen.failed_starts
                            .push((d, format!("d{d}-r{round}"), space));
                        return;
                    }
                    Ok(a) if a.status == StatusCode::CREATED => a,
                    Ok(a)
                        if a.status == StatusCode::CONFLICT
                            && a.body["code"] == "space_occupied" =>
                    {
                        seen.lock().unwrap().occupied += 1;
                        continue;
                    }
                    Ok(a) => {
                        seen.lock()
                            .unwrap()
                            .unexpected
                            .push(format!("start: {} {}", a.status, a.text));
                        return;
                    }
                };
                let id = started.body["id"].as_str().unwrap().to_owned();
                seen.lock().unwrap().starts.push((id.clone(), d, space));
                acknowledged.fetch_add(1, Ordering::SeqCst);
                in_flight.fetch_add(1, Ordering::SeqCst);
                let sent = Instant::now();
                let stopped = stop(&client, &base, token, &id).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if stopped.is_ok() {
                    seen.lock().unwrap().answered(load_began, sent);
                }
                match stopped {
                    Err(e) => {
                        let mut seen = seen.lock().unwrap();
                        if !killed.load(Ordering::SeqCst) {
                            seen.unexpected.push(format!("stop before the kill: {e}"));
                        }
                        seen.failed_stops += 1;
                        return;
                    }
                    Ok(a) if a.status == StatusCode::OK => {
                        seen.lock().unwrap().stops.insert(id, a.body);
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(a) => {
                        seen.lock()
                            .unwrap()
                            .unexpected
                            .push(format!("stop: {} {}", a.status, a.text));
                        return;
                    }
                }
            }
        });
    }

    // Let the load run, then pull the plug in the middle of it.
    until_kill(
        &acknowledged,
        load_began,
        KILL_AT_ACKNOWLEDGED,
        KILL_NOT_BEFORE..KILL_AT_LATEST,
    )
    .await;
    let in_flight_at_kill = in_flight.load(Ordering::SeqCst);
    let acknowledged_at_kill = acknowledged.load(Ordering::SeqCst);
    killed.store(true, Ordering::SeqCst);
    server.kill_hard();
    let load_time = load_began.elapsed();
    load.join_all().await;
    drop(server);

    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "[{backend}] killed after {load_time:?} of load: {} starts and {} stops acknowledged \
         ({acknowledged_at_kill} when the kill was decided), {} refused as space_occupied, \
         {in_flight_at_kill} requests in flight at the kill, {} starts and {} stops without \
         an answer; first answer after {:?}, slowest answer {:?}",
        seen.starts.len(),
        seen.stops.len(),
        seen.occupied,
        seen.failed_starts.len(),
        seen.failed_stops,
        seen.first_answer,
        seen.slowest
    );
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:#?}",
        seen.unexpected
    );
    assert!(
        in_flight_at_kill > 0,
        "the kill came in the middle of the load"
    );
    assert!(
        !seen.starts.is_empty() && !seen.stops.is_empty(),
        "some writes were acknowledged"
    );

    // The same database, a new process.
    let restarted_at = Instant::now();
    let server = shared.serve("server-after-restart").await;
    let restart_time = restarted_at.elapsed();
    let client = self::client();

    // Every acknowledged start exists, for its driver; every acknowledged stop is stopped,
    // priced and settled exactly as it was answered.
    let mut checks = JoinSet::new();
    for (id, d, space) in &seen.starts {
        let (client, base, token, id) = (
            client.clone(),
            server.base.clone(),
            tokens[*d].clone(),
            id.clone(),
        );
        let space = *space;
        let stop_answer = seen.stops.get(&id).cloned();
        checks.spawn(async move {
            let url = format!("{base}/v1/sessions/{id}");
            let got = send(&client, Method::GET, url, &token, None, None)
                .await
                .unwrap();
            assert_eq!(
                got.status,
                StatusCode::OK,
                "acknowledged start {id} is there: {}",
                got.text
            );
            assert_eq!(got.body["space_code"], format!("A-{:02}", space + 1));
            if let Some(answered) = stop_answer {
                assert_eq!(got.body["status"], "stopped", "acknowledged stop {id}");
                assert!(
                    got.body["fee"]["total"].is_string(),
                    "{id} has a fee: {}",
                    got.text
                );
                assert_eq!(
                    got.body["settlement"]["status"], "settled",
                    "{id}: {}",
                    got.text
                );
                assert_eq!(got.body, answered, "{id} reads as its stop answered");
            }
        });
    }
    checks.join_all().await;

    // The schema's invariants hold after the crash.
    let db = &Db::connect(&shared.url, 2)
        .await
        .expect("open the database again");
    let doubly_occupied = scalar(
        db,
        "select count(*) from (select space_id from session where status = 'active' \
         group by space_id having count(*) > 1) as doubled",
    )
    .await;
    assert_eq!(doubly_occupied, 0, "never two active sessions on a space");
    let sessions = scalar(db, "select count(*) from session").await;
    let active = scalar(db, "select count(*) from session where status = 'active'").await;
    assert!(sessions >= seen.starts.len() as i64, "{sessions} sessions");
    assert_settlements_match_sessions(db).await;
    let totals = ledger_totals(db).await;
    assert_balanced(&totals);

    // The drivers whose start got no answer tap again with the same Idempotency-Key: a start
    // that committed is replayed (never a second session), a claim that died with the
    // server is "in flight" until abandoned (60 s), a start that never reached the database
    // runs now.
    let mut retries = JoinSet::new();
    for (d, key, space) in &seen.failed_starts {
        let (client, base, token, key) = (
            client.clone(),
            server.base.clone(),
            tokens[*d].clone(),
            key.clone(),
        );
        let qr = qrs[*space].clone();
        retries.spawn(async move {
            let a = start(&client, &base, &token, &key, &qr).await.unwrap();
            let replayed = a.headers.get("idempotent-replayed").is_some();
            match (a.status, a.body["code"].as_str()) {
                (StatusCode::CREATED, _) if replayed => "replayed 201",
                (StatusCode::CREATED, _) => "started now",
                (StatusCode::CONFLICT, Some("idempotency_key_in_flight")) => "in flight",
                (StatusCode::CONFLICT, Some("space_occupied")) if replayed => "replayed 409",
                (StatusCode::CONFLICT, Some("space_occupied")) => "space occupied now",
                _ => panic!("retry of {key}: {} {}", a.status, a.text),
            }
        });
    }
    let mut retried: HashMap<&str, usize> = HashMap::new();
    for outcome in retries.join_all().await {
        *retried.entry(outcome).or_default() += 1;
    }
    assert_eq!(
        scalar(
            db,
            "select count(*) from (select space_id from session where status = 'active' \
             group by space_id having count(*) > 1) as doubled",
        )
        .await,
        0,
        "never two active sessions on a space"
    );

    // The sessions left active by the crash (acknowledged or not) stop normally now.
    const LEFT_ACTIVE: &str = "select session_id, driver from session where status = 'active'";
    let leftovers: Vec<(Uuid, String)> = match db {
        Db::Sqlite(pool) => sqlx::query_as(LEFT_ACTIVE).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_as(LEFT_ACTIVE).fetch_all(pool).await,
    }
    .unwrap();
    let stopped_after_restart = leftovers.len();
    let mut stops = JoinSet::new();
    for (id, driver) in leftovers {
        let (client, base) = (client.clone(), server.base.clone());
        let token = shared.driver_token(&driver);
        stops.spawn(async move {
            let id = id.to_string();
            let a = stop(&client, &base, &token, &id).await.unwrap();
            assert_eq!(
                a.status,
                StatusCode::OK,
                "stop {id} after the restart: {}",
                a.text
            );
            assert_eq!(a.body["settlement"]["status"], "settled");
        });
    }
    stops.join_all().await;
    assert_eq!(
        scalar(db, "select count(*) from session where status = 'active'").await,
        0
    );
    assert_settlements_match_sessions(db).await;
    let totals = ledger_totals(db).await;
    assert_balanced(&totals);
    eprintln!(
        "[{backend}] after the restart ({restart_time:?} to healthy): {sessions} sessions in the \
         database ({} beyond the acknowledged starts), {active} left active by the crash; \
         unanswered starts retried with their keys: {retried:?}; {stopped_after_restart} \
         stopped now; ledger {totals:?}; test took {:?}",
        sessions - seen.starts.len() as i64,
        began.elapsed()
    );
    drop(server);
}
