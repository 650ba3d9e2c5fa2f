//! The audit chain over two real `qrpark serve` processes on one database: their drivers'
//! writes never wait for the chain's head, and the processes' background sealers seal every
//! event exactly once, within the sealing interval, without any read asking for it; a
//! process that is asked to stop seals what is left before it exits.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinSet;

use super::harness::{Shared, backend, charged_tariff, client, lot, scalar, start, stop};
use crate::audit::sealing::{assert_chain_verifies, chain};
use crate::helpers::TestApp;

/// Drivers, each on a space of its own, half of them on each process.
const DRIVERS: usize = 16;
const ROUNDS: usize = 4;

pub(super) async fn two_processes_seal_every_event_once_in_the_background(app: TestApp) {
    let backend = backend(&app.db);
    let mut shared = Shared::of(&app)
        .await
        .with_env("QRPARK_AUDIT_SEAL_INTERVAL_MS", "50");
    let key = shared.operator("Two Sealers");
    let mut servers = Vec::new();
    for i in 0..2 {
        servers.push(shared.serve(&format!("sealer-{i}")).await);
    }
    let codes: Vec<String> = (0..DRIVERS).map(|i| format!("T-{i:02}")).collect();
    let qrs = lot(&servers[0].base, &key, charged_tariff(), &codes).await;
    let client = client();
    let spare = qrs[0].clone();
    let began = Instant::now();
    let mut load = JoinSet::new();
    for (d, qr) in qrs.into_iter().enumerate() {
        let (client, token) = (client.clone(), shared.driver_token(&format!("two-{d}")));
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        load.spawn(async move {
            for round in 0..ROUNDS {
                // Each start on one process, its stop on the other.
                let base = &bases[(d + round) % 2];
                let started = start(&client, base, &token, &format!("d{d}-r{round}"), &qr)
                    .await
                    .unwrap();
                assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
                let id = started.body["id"].as_str().unwrap().to_owned();
                let other = &bases[(d + round + 1) % 2];
                let stopped = stop(&client, other, &token, &id).await.unwrap();
                assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
            }
        });
    }
    load.join_all().await;
    let load_time = began.elapsed();

    // No export, no read that seals: the background sealers alone.
    let stops = (DRIVERS * ROUNDS) as i64;
    let waited = Instant::now();
    loop {
        let pending = scalar(&app.db, "select count(*) from audit_pending").await;
        let sealed = scalar(
            &app.db,
            "select count(*) from audit_event where kind = 'session.stopped'",
        )
        .await;
        if pending == 0 && sealed == stops {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "{pending} events still pending, {sealed} of {stops} stops sealed, 5 s after the load"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sealed_after = waited.elapsed();
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    let distinct: std::collections::HashSet<(&str, &str)> =
        rows.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect();
    assert_eq!(distinct.len(), rows.len(), "an event sealed twice");
    // Causal order: each session's start is sealed before its stop.
    let mut started = std::collections::HashMap::new();
    for (seq, _, kind, entity, ..) in &rows {
        match kind.as_str() {
            "session.started" => {
                started.insert(entity.as_str(), *seq);
            }
            "session.stopped" => assert!(
                started.contains_key(entity.as_str()),
                "{entity} stopped at {seq} before it started"
            ),
            _ => {}
        }
    }
    assert_eq!(started.len(), DRIVERS * ROUNDS);
    assert_eq!(
        scalar(
            &app.db,
            "select count(*) from session where status = 'stopped' and audit_seq is not null"
        )
        .await,
        stops
    );

    // A process asked to stop seals what is left: with sealing rounds a minute apart, only
    // its shutdown can have sealed the last start.
    drop(servers);
    shared.set_env("QRPARK_AUDIT_SEAL_INTERVAL_MS", "60000");
    let mut lazy = shared.serve("lazy-sealer").await;
    let waited = Instant::now();
    while scalar(&app.db, "select count(*) from audit_pending").await > 0 {
        assert!(waited.elapsed() < Duration::from_secs(5), "the first round");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = shared.driver_token("last-driver");
    let last = start(&client, &lazy.base, &token, "last", &spare)
        .await
        .unwrap();
    assert_eq!(last.status, StatusCode::CREATED, "{}", last.text);
    assert!(scalar(&app.db, "select count(*) from audit_pending").await > 0);
    lazy.terminate();
    assert_eq!(
        scalar(&app.db, "select count(*) from audit_pending").await,
        0,
        "sealed on shutdown"
    );
    let rows = chain(&app.db).await;
    assert_chain_verifies(&rows);
    assert_eq!(
        rows.last().map(|r| r.2.as_str()),
        Some("session.started"),
        "the last start, sealed last"
    );
    eprintln!(
        "[{backend}] {stops} starts and {stops} stops over 2 processes in {load_time:?}; \
         all {} events sealed once, {sealed_after:?} after the load",
        rows.len()
    );
}
