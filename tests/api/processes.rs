//! Real `qrpark serve` processes on one database: several of them racing for one space, and
//! one of them killed (SIGKILL) under load, then restarted on the same database.
//!
//! The `TestApp` each test receives only provides the fresh, migrated database (SQLite file
//! or PostgreSQL schema) and a pool to inspect it; the city identity provider whose tokens
//! the children trust runs on the system clock, as the children do (the `TestApp`'s runs on
//! the test's manual clock). Every request goes to the child processes, started with
//! `env!("CARGO_BIN_EXE_qrpark")` and killed by their guards even when an assertion fails.
//! `--nocapture` shows the figures of each run.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qrpark::clock::SystemClock;
use qrpark::identity::demo_idp::DemoIdp;
use qrpark::store::Db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{Answer, TempDir, TestApp, both_backends};

both_backends!(
    hundred_starts_over_three_processes_make_one_session,
    killed_server_keeps_every_acknowledged_write,
);

/// How long a child may take to print its address and then to answer `/healthz`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// No single request of these tests may hang longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines of a child kept to print when a test fails.
const KEPT_LOG_LINES: usize = 60;

/// What every child process of a test shares: the database, the city's JWKS, a directory.
struct Shared {
    /// `QRPARK_DATABASE_URL` of the children.
    url: String,
    /// The PostgreSQL schema the children must work in (`None` on SQLite).
    schema: Option<String>,
    jwks: PathBuf,
    /// The city identity provider the children trust (its JWKS is the file `jwks`).
    idp: DemoIdp,
    dir: TempDir,
}

impl Shared {
    /// The children's view of the test's database: the same SQLite file, or the same
    /// PostgreSQL schema through `options=-c search_path=...` in the URL.
    async fn of(app: &TestApp) -> Self {
        let dir = TempDir::new();
        let jwks = dir.0.join("city-jwks.json");
        let idp = DemoIdp::generate(Arc::new(SystemClock));
        std::fs::write(&jwks, serde_json::to_string(&idp.jwks()).unwrap()).unwrap();
        let (url, schema) = match &app.db {
            Db::Sqlite(_) => (app.state.config.database_url.clone(), None),
            Db::Postgres(pool) => {
                let schema: String = sqlx::query_scalar("select current_schema()")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                assert!(schema.starts_with("t_"), "the test schema, not {schema}");
                let base = std::env::var("QRPARK_TEST_POSTGRES_URL").unwrap();
                let separator = if base.contains('?') { '&' } else { '?' };
                // `-c search_path=<schema>`, percent-encoded (the schema is [a-z0-9_]).
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
                (url, Some(schema))
            }
        };
        Self {
            url,
            schema,
            jwks,
            idp,
            dir,
        }
    }

    /// A city identity token for `subject` that the children accept, valid for an hour.
    fn driver_token(&self, subject: &str) -> String {
        self.idp
            .issue(subject, &[], "qrpark", Duration::from_secs(3600))
    }

    /// `qrpark ARGS` with this test's configuration and nothing from the caller's
    /// `QRPARK_*` environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_qrpark"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("QRPARK_") {
                command.env_remove(name);
            }
        }
        command
            .args(args)
            .current_dir(&self.dir.0)
            .env("QRPARK_DATABASE_URL", &self.url)
            .env("QRPARK_DATABASE_MAX_CONNECTIONS", "8")
            .env("QRPARK_BIND", "127.0.0.1:0")
            .env("QRPARK_PUBLIC_URL", "http://qrpark.test")
            .env("QRPARK_DATA_DIR", self.dir.0.join("data"))
            .env("QRPARK_CITY_JWKS", &self.jwks)
            .env("QRPARK_CITY_ISSUER", DemoIdp::ISSUER)
            .env("QRPARK_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,tower_http=warn");
        command
    }

    /// An operator made by `qrpark operator create NAME --json`; returns its API key.
    fn operator(&self, name: &str) -> String {
        let out = self
            .command(&["operator", "create", name, "--json"])
            .output()
            .expect("run qrpark operator create");
        assert!(
            out.status.success(),
            "operator create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).expect("operator JSON");
        created["api_key"].as_str().expect("api_key").to_owned()
    }

    /// Starts `qrpark serve` and returns once it answers `/healthz`.
    async fn serve(&self, name: &str) -> Server {
        let server = self.spawn(name);
        server.ready().await
    }

    /// Starts `qrpark serve` without waiting for it.
    fn spawn(&self, name: &str) -> Starting {
        let mut child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qrpark serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (bound, address) = tokio::sync::oneshot::channel::<String>();
        // Drains the log (a full pipe would stall the server), keeps its tail, and hands
        // over the address from the "qrpark listening" line.
        let tail = log.clone();
        std::thread::spawn(move || {
            let mut bound = Some(bound);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "qrpark listening"
                    && let (Some(addr), Some(tx)) = (event["addr"].as_str(), bound.take())
                {
                    let _ = tx.send(addr.to_owned());
                }
                let mut tail = tail.lock().unwrap();
                if tail.len() == KEPT_LOG_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Starting {
            server: Server {
                name: name.to_owned(),
                pid: child.id(),
                child: Some(child),
                base: String::new(),
                log,
            },
            address,
        }
    }
}

/// A child that has been spawned but may not listen yet.
struct Starting {
    server: Server,
    address: tokio::sync::oneshot::Receiver<String>,
}

impl Starting {
    /// Waits (bounded) for the bound address in the log, then for a 200 from `/healthz`.
    async fn ready(self) -> Server {
        let Starting {
            mut server,
            address,
        } = self;
        let addr = match tokio::time::timeout(READY_WITHIN, address).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(_)) => panic!(
                "{} exited before listening:\n{}",
                server.name,
                server.tail()
            ),
            Err(_) => panic!(
                "{} did not listen within {READY_WITHIN:?}:\n{}",
                server.name,
                server.tail()
            ),
        };
        server.base = format!("http://{addr}");
        let client = client();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let healthy = client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if healthy {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "{} never answered /healthz:\n{}",
                server.name,
                server.tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A running `qrpark serve`; killed (SIGKILL) when dropped, so that a failing assertion
/// leaves no process behind. Its log's tail is printed if the test is failing.
struct Server {
    name: String,
    pid: u32,
    child: Option<Child>,
    base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// `kill -KILL`: no graceful shutdown, no flush, requests in flight die with it.
    fn kill_hard(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {}", self.pid);
        if let Some(mut child) = self.child.take() {
            let exit = child.wait().expect("reap the killed server");
            assert!(!exit.success(), "{} was killed: {exit}", self.name);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- last log lines of {} ---\n{}", self.name, self.tail());
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// One request; `Err` when no complete answer came back (connection refused or cut).
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: &str,
    idempotency_key: Option<&str>,
    body: Option<Value>,
) -> Result<Answer, reqwest::Error> {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        headers,
        body,
        text,
    })
}

async fn start(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    qr: &str,
) -> Result<Answer, reqwest::Error> {
    let url = format!("{base}/v1/sessions");
    send(
        client,
        Method::POST,
        url,
        token,
        Some(key),
        Some(json!({ "qr": qr })),
    )
    .await
}

async fn stop(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
) -> Result<Answer, reqwest::Error> {
    let url = format!("{base}/v1/sessions/{id}/stop");
    send(client, Method::POST, url, token, None, None).await
}

/// A lot with `tariff` and spaces, made over HTTP on `base`; returns the spaces' QR tokens.
async fn lot(base: &str, key: &str, tariff: Value, codes: &[String]) -> Vec<String> {
    let client = client();
    let created = send(
        &client,
        Method::POST,
        format!("{base}/v1/operator/lots"),
        key,
        None,
        Some(json!({"name": "Jing'an Temple", "timezone": "Asia/Shanghai", "currency": "CNY"})),
    )
    .await
    .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let lot = created.body["id"].as_str().unwrap();
    let put = send(
        &client,
        Method::PUT,
        format!("{base}/v1/operator/lots/{lot}/tariff"),
        key,
        None,
        Some(tariff),
    )
    .await
    .unwrap();
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text);
    let spaces = send(
        &client,
        Method::POST,
        format!("{base}/v1/operator/lots/{lot}/spaces"),
        key,
        None,
        Some(json!({ "codes": codes })),
    )
    .await
    .unwrap();
    assert_eq!(spaces.status, StatusCode::CREATED, "{}", spaces.text);
    spaces.body["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let url = s["qr_url"].as_str().unwrap();
            url.rsplit_once("/q/").unwrap().1.to_owned()
        })
        .collect()
}

/// The spec's tariff without its 15 free minutes, so that even a session of a few
/// milliseconds is charged and every settlement posts ledger entries.
fn charged_tariff() -> Value {
    let mut tariff = crate::tariffs::spec_tariff();
    tariff["grace_minutes"] = json!(0);
    tariff
}

/// One integer the test's pool reads from the database.
async fn scalar(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The children wrote where the test looks: on PostgreSQL, into the test's schema (the
/// operator the CLI made is there, and the schema holds the tables), not into `public`.
async fn assert_children_use_the_test_database(app: &TestApp, shared: &Shared, operators: i64) {
    assert_eq!(
        scalar(&app.db, "select count(*) from operator").await,
        operators
    );
    if let (Some(schema), Db::Postgres(pool)) = (&shared.schema, &app.db) {
        let tables: Vec<String> = sqlx::query_scalar(
            "select table_name::text from information_schema.tables \
             where table_schema = $1 order by 1",
        )
        .bind(schema)
        .fetch_all(pool)
        .await
        .unwrap();
        for table in [
            "session",
            "settlement",
            "ledger_entry",
            "operator",
            "lot",
            "space",
        ] {
            assert!(
                tables.iter().any(|t| t == table),
                "{table} in {schema}: {tables:?}"
            );
        }
    }
}

fn backend(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "sqlite",
        Db::Postgres(_) => "postgres",
    }
}

/// Minor units of a CNY amount such as "2.50".
fn minor(amount: &Value) -> i64 {
    let text = amount
        .as_str()
        .unwrap_or_else(|| panic!("an amount: {amount}"));
    let (units, cents) = text.split_once('.').unwrap_or((text, "00"));
    assert_eq!(cents.len(), 2, "{text}");
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

async fn ledger_totals(db: &Db) -> Vec<(String, i64, i64)> {
    qrpark::store::sessions::ledger_totals(db).await.unwrap()
}

#[track_caller]
fn assert_balanced(totals: &[(String, i64, i64)]) {
    for (currency, debits, credits) in totals {
        assert_eq!(debits, credits, "ledger out of balance in {currency}");
    }
}

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
    while (acknowledged.load(Ordering::SeqCst) < KILL_AT_ACKNOWLEDGED
        || load_began.elapsed() < KILL_NOT_BEFORE)
        && load_began.elapsed() < KILL_AT_LATEST
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

/// Every stopped session has exactly one settlement of its fee with its two ledger entries
/// (none for a zero fee), active sessions have none, and the ledger adds up to the fees.
async fn assert_settlements_match_sessions(db: &Db) {
    let unsettled = scalar(
        db,
        "select count(*) from session s where s.status = 'stopped' and \
         (select count(*) from settlement t where t.session_id = s.session_id) <> 1",
    )
    .await;
    assert_eq!(
        unsettled, 0,
        "stopped sessions without exactly one settlement"
    );
    let premature = scalar(
        db,
        "select count(*) from settlement t join session s on s.session_id = t.session_id \
         where s.status <> 'stopped'",
    )
    .await;
    assert_eq!(premature, 0, "settlements of sessions still active");
    let mispriced = scalar(
        db,
        "select count(*) from settlement t join session s on s.session_id = t.session_id \
         where t.amount_minor <> s.fee_minor",
    )
    .await;
    assert_eq!(mispriced, 0, "settlements of another amount than the fee");
    let half_posted = scalar(
        db,
        "select count(*) from settlement t where \
         (select count(*) from ledger_entry l where l.settlement_id = t.settlement_id) \
         <> case when t.amount_minor > 0 then 2 else 0 end",
    )
    .await;
    assert_eq!(
        half_posted, 0,
        "settlements without their two ledger entries"
    );
    let fees = scalar(
        db,
        "select cast(coalesce(sum(fee_minor), 0) as bigint) from session where status = 'stopped'",
    )
    .await;
    let debits = scalar(
        db,
        "select cast(coalesce(sum(debit_minor), 0) as bigint) from ledger_entry",
    )
    .await;
    assert_eq!(fees, debits, "the ledger's debits are the fees charged");
}
