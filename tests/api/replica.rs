//! A PostgreSQL streaming replica (`QRPARK_DATABASE_READ_URL`, docs/operations.md "Read
//! replica"): exports, summaries and public scans read it and miss nothing they must not;
//! a driver's own session and a warden's check read the primary; a lagging replica is left
//! within the bound, an unreachable one or one that is no standby is never read.
//!
//! The replica tests need `QRPARK_TEST_POSTGRES_READ_URL` (a streaming replica of the
//! primary's `QRPARK_TEST_POSTGRES_URL`; `.ci/replica` makes one); without it they skip
//! loudly, unless `QRPARK_REQUIRE_REPLICA=1` (as `.ci/run` sets), which fails them.

use std::io::Write;
use std::sync::Once;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use qrpark::domain::key_purpose::KeyPurpose;
use qrpark::store::reads::{MAX_STALENESS, ReplicaStatus, Served};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{TestApp, TestOperator};
use crate::sessions::{parking_lot, start};

/// Tests that pause the shared replica's replay, or need it not paused, take turns.
static REPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static SKIPPED: Once = Once::new();

/// How much later than [`MAX_STALENESS`] after a change a read may still miss it: one probe
/// period, and a loaded machine's scheduling.
const SLACK: Duration = Duration::from_millis(500);

/// The replica's URL, or `None` (said loudly, once) when it is not configured.
fn replica_url() -> Option<String> {
    if let Ok(url) = std::env::var("QRPARK_TEST_POSTGRES_READ_URL") {
        return Some(url);
    }
    if std::env::var("QRPARK_REQUIRE_REPLICA").as_deref() == Ok("1") {
        panic!(
            "QRPARK_REQUIRE_REPLICA=1 but QRPARK_TEST_POSTGRES_READ_URL is not set: run \
             .ci/replica and set it (e.g. postgres://postgres@127.0.0.1:5433/qrpark_test)"
        );
    }
    SKIPPED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\n!!! Read-replica tests SKIPPED: QRPARK_TEST_POSTGRES_READ_URL is unset.\n\
             !!! Start a replica with .ci/replica and set it to\n\
             !!! postgres://postgres@127.0.0.1:5433/qrpark_test, as .ci/run does.\n{bar}\n",
            bar = "!".repeat(78)
        );
    });
    None
}

/// Polls `done` every 20 ms for up to `limit`; how long it took, or `None`.
async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let began = Instant::now();
    loop {
        if done().await {
            return Some(began.elapsed());
        }
        if began.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the app's reads that may lag go to the replica. Generously: on a machine
/// whose primary other work keeps busy, replay after a pause takes a while to catch up.
async fn until_on_replica(app: &TestApp) {
    let reads = &app.state.reads;
    let waited = within(Duration::from_secs(30), async || reads.on_replica()).await;
    assert!(
        waited.is_some(),
        "reads never went to the replica: {:?}",
        reads.status()
    );
}

/// An app on the test replica, once its reads go there.
async fn app_on_replica() -> Option<(TestApp, String)> {
    let url = replica_url()?;
    let app = TestApp::postgres_reading(Some(&url), None, |_| {}).await?;
    until_on_replica(&app).await;
    Some((app, url))
}

/// Replay paused on the replica until dropped (also when the test fails).
struct PausedReplay {
    url: String,
}

impl PausedReplay {
    async fn start(url: &str) -> Self {
        let mut replica = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to the replica");
        sqlx::query("select pg_wal_replay_pause()")
            .execute(&mut replica)
            .await
            .expect("pause replay on the replica");
        Self {
            url: url.to_owned(),
        }
    }
}

impl Drop for PausedReplay {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop cannot wait on the test's runtime: resume from a thread of its own.
        let resumed = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async {
                    let mut replica = sqlx::PgConnection::connect(&url).await?;
                    sqlx::query("select pg_wal_replay_resume()")
                        .execute(&mut replica)
                        .await
                        .map(|_| ())
                })
        })
        .join();
        if !matches!(resumed, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not resume replay on the replica ({resumed:?}): run \
                 `select pg_wal_replay_resume()` there, or .ci/replica"
            );
        }
    }
}

fn role_token(app: &TestApp, subject: &str, role: &str) -> String {
    app.state.demo_idp.as_ref().unwrap().issue(
        subject,
        &[role],
        "qrpark",
        Duration::from_secs(24 * 3600),
    )
}

/// The ids of the sessions in a JSONL export of the test day.
async fn exported(app: &TestApp) -> Vec<String> {
    let answer = app
        .get(
            "/v1/audit/sessions?from=2026-09-29T00:00:00Z&to=2026-09-30T00:00:00Z",
            Some(&role_token(app, "auditor-r", "auditor")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer
        .text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|record| record["session_id"].as_str().map(str::to_owned))
        .collect()
}

/// The sessions the summary counts over the test day.
async fn summarised(app: &TestApp) -> u64 {
    let answer = app
        .get(
            "/v1/audit/summary?from=2026-09-29T00:00:00Z&to=2026-09-30T00:00:00Z",
            Some(&role_token(app, "auditor-r", "auditor")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["sessions"].as_u64().unwrap())
        .sum()
}

/// Starts a session and stops it an hour later; its id.
async fn park_an_hour(app: &TestApp, driver: &str, key: &str, qr: &str) -> String {
    let started = start(app, driver, key, qr).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::hours(1));
    let stopped = app.stop(driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["settlement"]["status"], "settled");
    id
}

/// Rotates a space's code as another qrpark process would (straight through the store, so
/// this app does not know of it); the new token.
async fn rotate_elsewhere(app: &TestApp, operator: &TestOperator, space_id: Uuid) -> String {
    let now = app.now();
    let key = app
        .state
        .keys
        .signing_key(KeyPurpose::Qr, now)
        .await
        .unwrap();
    qrpark::store::spaces::rotate_code(
        &app.db,
        operator.id,
        space_id,
        |version| qrpark::qr::codes::sign(&key, space_id, version, now),
        now,
    )
    .await
    .unwrap()
    .expect("the operator's space")
    .token
}

/// How long after now a scan of `token` answers `status`, polling; `None` after 5 s.
async fn scan_answers(app: &TestApp, token: &str, status: StatusCode) -> Option<Duration> {
    within(Duration::from_secs(5), async || {
        app.get(&format!("/v1/scan/{token}"), None).await.status == status
    })
    .await
}

#[tokio::test]
async fn exports_and_scans_on_the_replica_miss_nothing() {
    let _turn = REPLAY.lock().await;
    let Some((app, _)) = app_on_replica().await else {
        return;
    };
    let op = app.operator("Replicated").await;
    let (lot, spaces) = parking_lot(&app, &op, &["R-1", "R-2"]).await;
    let driver = app.driver_token("driver-r");
    until_on_replica(&app).await;

    // Public scans and quotes are answered from the process's cache, filled from the
    // primary (docs/operations.md, "Read replica"): right while the replica is read.
    let scanned = app.get(&format!("/v1/scan/{}", spaces[0].1), None).await;
    assert_eq!(scanned.status, StatusCode::OK, "{}", scanned.text);
    assert_eq!(scanned.body["space"]["code"], "R-1");
    assert_eq!(scanned.body["tariff"]["version"], 1);
    let quoted = app
        .post(
            &format!("/v1/lots/{lot}/quote"),
            None,
            json!({"start": "2026-09-29T10:00:00+08:00", "end": "2026-09-29T12:00:00+08:00"}),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.text);

    // A session stopped a moment ago is in the export and the summary, read from the
    // replica once it has caught up.
    let id = park_an_hour(&app, &driver, "r-1", &spaces[0].1).await;
    let before = app.state.reads.served();
    assert!(exported(&app).await.contains(&id), "the export misses {id}");
    assert_eq!(summarised(&app).await, 1);
    let after = app.state.reads.served();
    assert_eq!(
        after,
        Served {
            replica: before.replica + 2,
            primary: before.primary
        },
        "the export and the summary did not read the replica"
    );

    // A code rotated through this process a moment ago is refused at once, and its new
    // code accepted at once.
    let space_id: Uuid = spaces[0].0.parse().unwrap();
    let rotated = app.rotate_code(&op, &spaces[0].0).await;
    let old = app.get(&format!("/v1/scan/{}", spaces[0].1), None).await;
    assert_eq!(old.status, StatusCode::GONE, "{}", old.text);
    assert_eq!(old.problem_code(), "qr_revoked");
    let new = app.get(&format!("/v1/scan/{rotated}"), None).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);

    // One rotated by another process: refused within the bound, the new one at once (a
    // code newer than the replica's space is asked of the primary).
    until_on_replica(&app).await;
    let newer = rotate_elsewhere(&app, &op, space_id).await;
    let fresh = app.get(&format!("/v1/scan/{newer}"), None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let refused = scan_answers(&app, &rotated, StatusCode::GONE).await;
    assert!(
        refused.is_some_and(|took| took <= MAX_STALENESS + SLACK),
        "a code rotated elsewhere was accepted for {refused:?}"
    );
}

#[tokio::test]
async fn a_lagging_replica_is_left_within_the_bound() {
    let _turn = REPLAY.lock().await;
    let Some((app, url)) = app_on_replica().await else {
        return;
    };
    let op = app.operator("Lagging").await;
    let (_, spaces) = parking_lot(&app, &op, &["L-1", "L-2"]).await;
    let driver = app.driver_token("driver-l");
    let warden = role_token(&app, "warden-l", "warden");
    until_on_replica(&app).await;

    let paused = PausedReplay::start(&url).await;
    // The guard may trust the replica for up to a second more; what must not lag reads the
    // primary meanwhile: a driver's start, their own session, a warden's check.
    let started = start(&app, &driver, "l-1", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let mine = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.body["status"], "active");
    let check = app
        .get(
            &format!("/v1/enforcement/check?qr={}", spaces[0].1),
            Some(&warden),
        )
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.text);
    assert_eq!(check.body["results"][0]["status"], "paid", "{}", check.text);

    // A code rotated elsewhere during the pause is refused within the bound: the guard
    // takes reads to the primary.
    let space_id: Uuid = spaces[1].0.parse().unwrap();
    let rotated = rotate_elsewhere(&app, &op, space_id).await;
    let refused = scan_answers(&app, &spaces[1].1, StatusCode::GONE).await;
    assert!(
        refused.is_some_and(|took| took <= MAX_STALENESS + SLACK),
        "a code rotated during the pause was accepted for {refused:?}"
    );
    let page = app.get(&format!("/q/{}", spaces[1].1), None).await;
    assert_eq!(page.status, StatusCode::GONE, "{}", page.text);
    let new = app.get(&format!("/v1/scan/{rotated}"), None).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
    // Scans are answered from the cache and the primary, so they no longer wait for the
    // guard: it sees the paused replica fall behind once a second has passed.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = app.state.reads.status();
        if matches!(status, ReplicaStatus::Lagging(lag) if lag > MAX_STALENESS)
            || std::time::Instant::now() > deadline
        {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        matches!(status, ReplicaStatus::Lagging(lag) if lag > MAX_STALENESS),
        "{status:?}"
    );
    assert!(!app.state.reads.on_replica());

    // The driver stops: their own session says so at once, and the export and the summary,
    // which wait for the replica only so long, read the primary and hold the session.
    app.clock.advance(TimeDelta::hours(1));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    let mine = app.get(&format!("/v1/sessions/{id}"), Some(&driver)).await;
    assert_eq!(mine.body["status"], "stopped", "{}", mine.text);
    let before = app.state.reads.served();
    assert!(exported(&app).await.contains(&id), "the export misses {id}");
    assert_eq!(summarised(&app).await, 1);
    let after = app.state.reads.served();
    assert_eq!(after.replica, before.replica, "a paused replica was read");

    // Replay resumes: the guard takes reads back to the replica.
    drop(paused);
    until_on_replica(&app).await;
    assert!(exported(&app).await.contains(&id));
    assert_eq!(app.state.reads.served().replica, after.replica + 1);
}

/// A free port on loopback that nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Everything that reads what may lag, answered and right with the replica at `read_url`
/// out of use: the guard must say `Down`, and nothing answers 503.
async fn reads_on_the_primary(read_url: &str) {
    let Some(app) = TestApp::postgres_reading(Some(read_url), None, |_| {}).await else {
        return;
    };
    let reads = &app.state.reads;
    let down = within(Duration::from_secs(5), async || {
        reads.status() == ReplicaStatus::Down
    })
    .await;
    assert!(down.is_some(), "{:?}", reads.status());
    let op = app.operator("Fallback").await;
    let (lot, spaces) = parking_lot(&app, &op, &["F-1"]).await;
    let driver = app.driver_token("driver-f");
    let id = park_an_hour(&app, &driver, "f-1", &spaces[0].1).await;

    let scanned = app.get(&format!("/v1/scan/{}", spaces[0].1), None).await;
    assert_eq!(scanned.status, StatusCode::OK, "{}", scanned.text);
    let page = app.get(&format!("/q/{}", spaces[0].1), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let quoted = app
        .post(
            &format!("/v1/lots/{lot}/quote"),
            None,
            json!({"start": "2026-09-29T10:00:00+08:00", "end": "2026-09-29T11:00:00+08:00"}),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.text);
    let metrics = app
        .get(&format!("/v1/operator/metrics?lot={lot}"), Some(&op.key))
        .await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.text);
    assert!(exported(&app).await.contains(&id));
    assert_eq!(summarised(&app).await, 1);
    let served = reads.served();
    assert_eq!(served.replica, 0, "{served:?}");
    assert!(served.primary >= 3, "{served:?}");
    assert_eq!(reads.status(), ReplicaStatus::Down);
}

#[tokio::test]
async fn an_unreachable_replica_degrades_to_the_primary() {
    let port = closed_port().await;
    reads_on_the_primary(&format!("postgres://postgres@127.0.0.1:{port}/qrpark_test")).await;
}

#[tokio::test]
async fn a_read_url_that_is_no_standby_is_never_read() {
    // The primary itself: same cluster, but not in recovery, so its position says nothing.
    let Ok(primary) = std::env::var("QRPARK_TEST_POSTGRES_URL") else {
        return;
    };
    reads_on_the_primary(&primary).await;
}

#[test]
fn serve_refuses_a_read_replica_without_a_postgres_primary() {
    let dir = crate::helpers::TempDir::new();
    for (primary, read, expected) in [
        (
            format!("sqlite://{}", dir.0.join("q.db").display()),
            "postgres://postgres@127.0.0.1:5433/qrpark".to_owned(),
            "needs a PostgreSQL primary",
        ),
        (
            "postgres://postgres@127.0.0.1:1/qrpark".to_owned(),
            format!("sqlite://{}", dir.0.join("r.db").display()),
            "streaming replica",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qrpark"))
            .args(["serve"])
            .current_dir(&dir.0)
            .env("QRPARK_DATABASE_URL", &primary)
            .env("QRPARK_DATABASE_READ_URL", &read)
            .output()
            .expect("run qrpark");
        assert!(!out.status.success(), "{primary} with {read} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("database_read_url") && stderr.contains(expected),
            "{stderr}"
        );
    }
}
