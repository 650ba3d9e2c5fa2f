//! Sessions that end themselves, over three real `qrpark serve` processes on one database:
//! each scheduler races the others, and drivers' stops race them all at the due instant.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use super::harness::{Shared, backend, charged_tariff, client, lot, scalar, send, stop};
use crate::helpers::TestApp;

/// How many sessions plan to end at the same instant.
const SESSIONS: usize = 30;

pub(super) async fn planned_endings_happen_once_over_three_processes(app: TestApp) {
    let backend = backend(&app.db);
    let shared = Shared::of(&app).await;
    let key = shared.operator("Ending Race");
    let mut servers = Vec::new();
    for i in 0..3 {
        servers.push(shared.serve(&format!("ender-{i}")).await);
    }
    let codes: Vec<String> = (0..SESSIONS).map(|i| format!("E-{i:03}")).collect();
    let qrs = lot(&servers[0].base, &key, charged_tariff(), &codes).await;
    let client = client();

    // Every session plans to end at the same instant, a few seconds from now (time enough
    // to start them all even on a busy machine).
    let due = whole_millis(Utc::now() + TimeDelta::seconds(10));
    let mut ids = Vec::new();
    for (i, qr) in qrs.iter().enumerate() {
        let token = shared.driver_token(&format!("ender-{i}"));
        let started = send(
            &client,
            Method::POST,
            format!("{}/v1/sessions", servers[i % 3].base),
            &token,
            Some(&format!("start-{i}")),
            Some(json!({"qr": qr, "stop_at": due})),
        )
        .await
        .unwrap();
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        ids.push((token, started.body["id"].as_str().unwrap().to_owned()));
    }

    assert!(
        Utc::now() < due,
        "the starts took longer than the margin before the due instant"
    );
    // At the due instant, every other driver taps Stop too, on some process.
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default()).await;
    let mut stops = JoinSet::new();
    for (i, (token, id)) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let (client, base) = (client.clone(), servers[(i + 1) % 3].base.clone());
        let (token, id) = (token.clone(), id.clone());
        stops.spawn(async move { stop(&client, &base, &token, &id).await.unwrap() });
    }
    let answers = stops.join_all().await;

    // Within 5 seconds of the instant, every session has ended, once, at that instant.
    let deadline = due + TimeDelta::seconds(5);
    loop {
        let active = scalar(
            &app.db,
            "select count(*) from session where status = 'active'",
        )
        .await;
        if active == 0 {
            break;
        }
        assert!(
            Utc::now() < deadline,
            "{active} sessions still active 5 s after their end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["ended_by"], "planned", "{}", answer.text);
        let ended: DateTime<Utc> = answer.body["ended_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(ended, due);
    }
    // Every stop's event is in the chain once sealed (the children's sealers may not have
    // run yet: seal what is pending, as an export does).
    qrpark::store::audit::seal_pending(&app.db).await.unwrap();
    assert_eq!(
        scalar(
            &app.db,
            "select count(*) from audit_event where kind = 'session.stopped'"
        )
        .await,
        SESSIONS as i64,
        "each session stopped exactly once"
    );
    assert_eq!(
        scalar(&app.db, "select count(*) from settlement").await,
        SESSIONS as i64
    );
    assert_eq!(
        scalar(
            &app.db,
            "select count(*) from session where ended_by = 'planned'"
        )
        .await,
        SESSIONS as i64
    );
    // The lag from the due instant to the moment an ender took the session up (the
    // settlement's instant: a scheduler round's clock, or a racing driver's).
    let mut lags: Vec<f64> = Vec::new();
    for (token, id) in &ids {
        let seen = send(
            &client,
            Method::GET,
            format!("{}/v1/sessions/{id}", servers[2].base),
            token,
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(seen.body["status"], "stopped");
        let ended: DateTime<Utc> = seen.body["ended_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(ended, due, "priced to its planned end");
        let settled: DateTime<Utc> = seen.body["settlement"]["settled_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        lags.push((settled - due).as_seconds_f64());
    }
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "[{backend}] {SESSIONS} planned endings over 3 processes ({} racing driver stops): \
         lag p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        answers.len(),
        pct(0.5),
        pct(0.99),
        lags[lags.len() - 1]
    );
    assert!(pct(0.99) < 5.0);
}

/// Whole milliseconds: the instant travels as RFC 3339 and back unchanged.
fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}
