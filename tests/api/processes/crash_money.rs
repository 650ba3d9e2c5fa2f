//! Crash safety of money (issue 14, point 7): two `qrpark serve` processes delivering to a
//! double of the city's payment gateway take a burst of stops (payments) and refunds, and
//! are killed (SIGKILL) in the middle of it; one restarts and drains the outbox. Then every
//! acknowledged stop and refund exists, nothing was charged or given back twice (the
//! double charges once per idempotency key and flags a reference charged under two),
//! nothing stays pending, and the books reconcile. `--nocapture` shows the figures.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qrpark::store::Db;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use super::harness::{
    Shared, backend, charged_tariff, client, lot, scalar, send, start, stop, until_kill,
};
use crate::helpers::TestApp;
use crate::money::{Gateway, Kind, Reply, print_reconciliation};

const SERVERS: usize = 2;
/// Sessions stopped and settled before the burst: what the burst refunds.
const SETTLED_FIRST: usize = 12;
const DRIVERS: usize = 16;
const SPACES: usize = 40;
/// Kill once this many writes were acknowledged (and not before KILL_NOT_BEFORE), or at
/// KILL_AT_LATEST whatever happened.
const KILL_AT_ACKNOWLEDGED: usize = 40;
const KILL_NOT_BEFORE: Duration = Duration::from_millis(400);
const KILL_AT_LATEST: Duration = Duration::from_secs(20);
/// The restarted process must drain the outbox within this (leases of the killed ones
/// expire after 6 gateway timeouts of 500 ms, and retries back off 2, 4, 8 s).
const DRAIN_WITHIN: Duration = Duration::from_secs(60);

/// What the burst saw answered.
#[derive(Default)]
struct Acknowledged {
    /// Session id -> driver number, of every 200 stop.
    stops: HashMap<String, usize>,
    /// The reference of every 201 refund.
    refunds: HashSet<String>,
    /// Refunds refused because the fee was used up.
    exceeded: usize,
    /// Requests without an answer (the kill).
    unanswered: usize,
    unexpected: Vec<String>,
}

/// Notes a request the kill left without an answer (a failure of its own before it).
fn unanswered(seen: &Mutex<Acknowledged>, what: &str, killed: &AtomicBool, e: &reqwest::Error) {
    let mut seen = seen.lock().unwrap();
    seen.unanswered += 1;
    if !killed.load(Ordering::SeqCst) {
        seen.unexpected.push(format!("{what} before the kill: {e}"));
    }
}

/// Notes an answer that is neither a success nor an expected refusal.
fn unexpected(seen: &Mutex<Acknowledged>, what: &str, a: &crate::helpers::Answer) {
    seen.lock()
        .unwrap()
        .unexpected
        .push(format!("{what}: {} {}", a.status, a.text));
}

pub(super) async fn killed_servers_pay_and_refund_once(app: TestApp) {
    let began = Instant::now();
    let backend = backend(&app.db);
    let gateway = Gateway::start().await;
    // Every fourth payment first fails (retried), every fourth answers slowly: deliveries
    // are in flight at the kill.
    gateway.script(
        Kind::Payment,
        std::iter::repeat_n(
            [
                Reply::Accept,
                Reply::Fail(503),
                Reply::Slow(Duration::from_millis(40)),
                Reply::Accept,
            ],
            100,
        )
        .flatten(),
    );
    gateway.script(
        Kind::Refund,
        std::iter::repeat_n(
            [
                Reply::Slow(Duration::from_millis(40)),
                Reply::Accept,
                Reply::Fail(503),
            ],
            100,
        )
        .flatten(),
    );
    let shared = Shared::of(&app)
        .await
        .with_env("QRPARK_CITY_PAYMENTS_URL", &gateway.url)
        .with_env("QRPARK_CITY_PAYMENTS_TIMEOUT_MS", "500");
    let key = shared.operator("Crash Money Parking");
    let mut servers = Vec::new();
    for i in 0..SERVERS {
        servers.push(shared.serve(&format!("server-{i}")).await);
    }
    let client = client();
    let jwks = send(
        &client,
        Method::GET,
        format!("{}/.well-known/jwks.json", servers[0].base),
        "",
        None,
        None,
    )
    .await
    .unwrap();
    gateway.trust(jwks.body);
    let codes: Vec<String> = (1..=SPACES).map(|n| format!("A-{n:02}")).collect();
    let qrs = Arc::new(lot(&servers[0].base, &key, charged_tariff(), &codes).await);
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..DRIVERS)
            .map(|d| shared.driver_token(&format!("driver-{d}")))
            .collect(),
    );

    // Sessions to refund: parked, stopped and settled through the gateway before the burst.
    let mut settled_first = Vec::new();
    for i in 0..SETTLED_FIRST {
        let base = &servers[i % SERVERS].base;
        let token = &tokens[i % DRIVERS];
        let started = start(&client, base, token, &format!("first-{i}"), &qrs[i])
            .await
            .unwrap();
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        let id = started.body["id"].as_str().unwrap().to_owned();
        let stopped = stop(&client, base, token, &id).await.unwrap();
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
        settled_first.push(id);
    }
    let db = Db::connect(&shared.url, 2)
        .await
        .expect("open the database");
    let settle_began = Instant::now();
    while scalar(
        &db,
        "select count(*) from settlement where status = 'pending'",
    )
    .await
        > 0
    {
        assert!(
            settle_began.elapsed() < DRAIN_WITHIN,
            "the first payments settle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await;
    app.db.close().await;

    // The burst: drivers park and stop on the other spaces, the operator refunds 0.50 at a
    // time of the sessions settled first, over both processes.
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let burst_began = Instant::now();
    let mut burst = JoinSet::new();
    for d in 0..DRIVERS {
        let (client, bases, qrs, tokens) =
            (client.clone(), bases.clone(), qrs.clone(), tokens.clone());
        let (seen, acknowledged, in_flight, killed) = (
            seen.clone(),
            acknowledged.clone(),
            in_flight.clone(),
            killed.clone(),
        );
        burst.spawn(async move {
            for round in 0.. {
                let base = &bases[(d + round) % SERVERS];
                // Each driver keeps to spaces of its own, after those settled first.
                let space = SETTLED_FIRST + (d + round * DRIVERS) % (SPACES - SETTLED_FIRST);
                in_flight.fetch_add(1, Ordering::SeqCst);
                let started = start(
                    &client,
                    base,
                    &tokens[d],
                    &format!("b{d}-{round}"),
                    &qrs[space],
                )
                .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let id = match started {
                    Ok(a) if a.status == StatusCode::CREATED => {
                        a.body["id"].as_str().unwrap().to_owned()
                    }
                    Ok(a) if a.body["code"] == "space_occupied" => continue,
                    Ok(a) => {
                        return unexpected(&seen, "start", &a);
                    }
                    Err(e) => {
                        return unanswered(&seen, "start", &killed, &e);
                    }
                };
                in_flight.fetch_add(1, Ordering::SeqCst);
                let stopped = stop(&client, base, &tokens[d], &id).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match stopped {
                    Ok(a) if a.status == StatusCode::OK => {
                        seen.lock().unwrap().stops.insert(id, d);
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(a) => {
                        return unexpected(&seen, "stop", &a);
                    }
                    Err(e) => {
                        return unanswered(&seen, "stop", &killed, &e);
                    }
                }
            }
        });
    }
    for r in 0..4 {
        let (client, bases, key, sessions) = (
            client.clone(),
            bases.clone(),
            key.clone(),
            settled_first.clone(),
        );
        let (seen, acknowledged, in_flight, killed) = (
            seen.clone(),
            acknowledged.clone(),
            in_flight.clone(),
            killed.clone(),
        );
        burst.spawn(async move {
            for n in 0.. {
                let session = &sessions[(r + n * 4) % sessions.len()];
                let base = &bases[(r + n) % SERVERS];
                in_flight.fetch_add(1, Ordering::SeqCst);
                let answer = send(
                    &client,
                    Method::POST,
                    format!("{base}/v1/operator/sessions/{session}/refunds"),
                    &key,
                    Some(&format!("refund-{r}-{n}")),
                    Some(json!({"amount": "0.50", "reason": "crash test"})),
                )
                .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match answer {
                    Ok(a) if a.status == StatusCode::CREATED => {
                        let reference = a.body["reference"].as_str().unwrap().to_owned();
                        seen.lock().unwrap().refunds.insert(reference);
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(a) if a.body["code"] == "refund_exceeds_charge" => {
                        seen.lock().unwrap().exceeded += 1;
                    }
                    Ok(a) => {
                        return unexpected(&seen, "refund", &a);
                    }
                    Err(e) => {
                        return unanswered(&seen, "refund", &killed, &e);
                    }
                }
            }
        });
    }
    until_kill(
        &acknowledged,
        burst_began,
        KILL_AT_ACKNOWLEDGED,
        KILL_NOT_BEFORE..KILL_AT_LATEST,
    )
    .await;
    let in_flight_at_kill = in_flight.load(Ordering::SeqCst);
    let requests_at_gateway = gateway.seen().len();
    killed.store(true, Ordering::SeqCst);
    for server in &mut servers {
        server.kill_hard();
    }
    let burst_time = burst_began.elapsed();
    burst.join_all().await;
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    // Before the servers go, so that their logs are printed if this fails.
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:#?}",
        seen.unexpected
    );
    drop(servers);
    assert!(
        in_flight_at_kill > 0,
        "the kill came in the middle of the burst"
    );
    assert!(
        !seen.stops.is_empty() && !seen.refunds.is_empty(),
        "both were acknowledged"
    );

    // Restart one process; it recovers the database and drains the outbox.
    let restarted = Instant::now();
    let server = shared.serve("server-after-restart").await;
    let db = Db::connect(&shared.url, 2)
        .await
        .expect("open the database again");
    let (pending_after_restart, refunds_pending_after_restart) = (
        scalar(
            &db,
            "select count(*) from settlement where status = 'pending'",
        )
        .await,
        scalar(&db, "select count(*) from refund where status = 'pending'").await,
    );
    loop {
        let open = scalar(
            &db,
            "select (select count(*) from settlement where status = 'pending') \
             + (select count(*) from refund where status = 'pending') \
             + (select count(*) from settlement_outbox) + (select count(*) from refund_outbox)",
        )
        .await;
        if open == 0 {
            break;
        }
        assert!(
            restarted.elapsed() < DRAIN_WITHIN,
            "{open} deliveries still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = restarted.elapsed();

    // Every acknowledged stop reads settled; every acknowledged refund is refunded.
    for (id, d) in &seen.stops {
        let got = send(
            &client,
            Method::GET,
            format!("{}/v1/sessions/{id}", server.base),
            &tokens[*d],
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(got.body["status"], "stopped", "{id}");
        assert_eq!(
            got.body["settlement"]["status"], "settled",
            "{id}: {}",
            got.text
        );
    }
    let refunded: Vec<(String, String)> = match &db {
        Db::Sqlite(pool) => {
            sqlx::query_as("select reference, status from refund")
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as("select reference, status from refund")
                .fetch_all(pool)
                .await
        }
    }
    .unwrap();
    let refund_states: HashMap<String, String> = refunded.into_iter().collect();
    for reference in &seen.refunds {
        assert_eq!(
            refund_states.get(reference).map(String::as_str),
            Some("refunded"),
            "acknowledged refund {reference}"
        );
    }
    let (settled, settled_minor) = (
        scalar(&db, "select count(*) from settlement where status = 'settled' and amount_minor > 0").await,
        scalar(&db, "select cast(coalesce(sum(amount_minor), 0) as bigint) from settlement where status = 'settled'").await,
    );
    let refunded_minor = scalar(
        &db,
        "select cast(coalesce(sum(amount_minor), 0) as bigint) from refund where status = 'refunded'",
    )
    .await;
    assert_eq!(
        scalar(
            &db,
            "select count(*) from settlement where status <> 'settled'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db,
            "select count(*) from refund where status <> 'refunded'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db,
            "select count(*) from settlement where refunded_minor > amount_minor"
        )
        .await,
        0
    );
    // The gateway charged each settled payment once and gave each refund back once.
    assert_eq!(
        gateway.done(Kind::Payment),
        usize::try_from(settled).unwrap()
    );
    assert_eq!(gateway.total(Kind::Payment), settled_minor);
    assert_eq!(gateway.done(Kind::Refund), refund_states.len());
    assert_eq!(gateway.total(Kind::Refund), refunded_minor);
    let requests = gateway.seen();
    let keys: HashSet<&str> = requests.iter().map(|s| s.key.as_str()).collect();
    gateway.assert_clean();
    eprintln!(
        "[{backend}] money crash: {SERVERS} processes killed after {burst_time:?} of burst with \
         {in_flight_at_kill} requests in flight ({requests_at_gateway} gateway requests so \
         far); acknowledged {} stops and {} refunds ({} refunds refused as exceeding the \
         charge, {} requests unanswered); after the restart {pending_after_restart} payments \
         and {refunds_pending_after_restart} refunds pending, drained in {drained:?}; \
         {settled} payments charged once each ({settled_minor} minor), {} refunds given back \
         once each ({refunded_minor} minor); the gateway saw {} requests for {} keys; test \
         took {:?}",
        seen.stops.len(),
        seen.refunds.len(),
        seen.exceeded,
        seen.unanswered,
        refund_states.len(),
        requests.len(),
        keys.len(),
        began.elapsed()
    );
    print_reconciliation(&format!("[{backend}] after the money crash test"), &db).await;
    db.close().await;
    drop(server);
}
