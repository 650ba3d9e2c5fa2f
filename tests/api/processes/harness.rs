//! The harness of the multi-process tests: `qrpark serve` children on the test's database,
//! their logs, and the requests and database checks the tests make.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qrpark::clock::SystemClock;
use qrpark::identity::demo_idp::DemoIdp;
use qrpark::store::Db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, TempDir, TestApp};

/// How long a child may take to print its address and then to answer `/healthz`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// No single request of these tests may hang longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines of a child kept to print when a test fails.
const KEPT_LOG_LINES: usize = 60;

/// What every child process of a test shares: the database, the city's JWKS, a directory.
pub(crate) struct Shared {
    /// `QRPARK_DATABASE_URL` of the children.
    pub(super) url: String,
    /// The PostgreSQL schema the children must work in (`None` on SQLite).
    schema: Option<String>,
    jwks: PathBuf,
    /// The city identity provider the children trust (its JWKS is the file `jwks`): on the
    /// system clock, as the children are (the `TestApp`'s runs on the test's manual clock).
    idp: DemoIdp,
    dir: TempDir,
    /// The test app's key-encryption key file: the database's keys are sealed under it.
    kek: PathBuf,
    /// More environment for every child (`with_env`).
    env: Vec<(String, String)>,
}

impl Shared {
    /// The children's view of the test's database: the same SQLite file, or the same
    /// PostgreSQL schema through `options=-c search_path=...` in the URL.
    pub(crate) async fn of(app: &TestApp) -> Self {
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
            kek: app.state.config.key_encryption_key_file(),
            env: Vec::new(),
        }
    }

    /// Every child also gets `name=value` (the payment gateway's URL, say).
    pub(crate) fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The children started from now on get `name=value` instead of what they got before.
    pub(super) fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// A city identity token for `subject` that the children accept, valid for an hour.
    pub(super) fn driver_token(&self, subject: &str) -> String {
        self.idp
            .issue(subject, &[], "qrpark", Duration::from_secs(3600))
    }

    /// `qrpark ARGS` with this test's configuration and nothing from the caller's
    /// `QRPARK_*` environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
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
            // A small pool under bursts of a hundred starts on a busy machine: requests may
            // queue for a connection longer than the production default of 5 s.
            .env("QRPARK_DATABASE_ACQUIRE_TIMEOUT_MS", "10000")
            .env("QRPARK_BIND", "127.0.0.1:0")
            .env("QRPARK_PUBLIC_URL", "https://qrpark.test")
            // Load from one address as a few drivers: limits are tested in tests/api/limits.rs.
            .env("QRPARK_RATE_LIMIT_PER_ADDRESS", "0")
            .env("QRPARK_RATE_LIMIT_PER_IDENTITY", "0")
            .env("QRPARK_DATA_DIR", self.dir.0.join("data"))
            .env("QRPARK_KEY_ENCRYPTION_KEY_FILE", &self.kek)
            .env("QRPARK_CITY_JWKS", &self.jwks)
            .env("QRPARK_CITY_ISSUER", DemoIdp::ISSUER)
            .env("QRPARK_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,tower_http=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// An operator made by `qrpark operator create NAME --json`; returns its API key.
    pub(super) fn operator(&self, name: &str) -> String {
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
    pub(super) async fn serve(&self, name: &str) -> Server {
        let server = self.spawn(name);
        server.ready().await
    }

    /// Starts `qrpark serve` without waiting for it.
    pub(super) fn spawn(&self, name: &str) -> Starting {
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
pub(super) struct Starting {
    server: Server,
    address: tokio::sync::oneshot::Receiver<String>,
}

impl Starting {
    /// Waits (bounded) for the bound address in the log, then for a 200 from `/healthz`.
    pub(super) async fn ready(self) -> Server {
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
pub(super) struct Server {
    name: String,
    pid: u32,
    child: Option<Child>,
    pub(super) base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// `kill -KILL`: no graceful shutdown, no flush, requests in flight die with it.
    pub(super) fn kill_hard(&mut self) {
        if let Some(exit) = self.signal("-KILL") {
            assert!(!exit.success(), "{} was killed: {exit}", self.name);
        }
    }

    /// `kill -TERM`: the graceful shutdown an orchestrator asks for; waits for the exit,
    /// which must be a success.
    pub(super) fn terminate(&mut self) {
        if let Some(exit) = self.signal("-TERM") {
            assert!(
                exit.success(),
                "{} stopped: {exit}\n{}",
                self.name,
                self.tail()
            );
        }
    }

    /// Sends `signal` and reaps the child: its exit (`None` if it was reaped before).
    fn signal(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}", self.pid);
        let mut child = self.child.take()?;
        Some(child.wait().expect("reap the server"))
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

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// One request; `Err` when no complete answer came back (connection refused or cut).
pub(super) async fn send(
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

pub(super) async fn start(
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

pub(super) async fn stop(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
) -> Result<Answer, reqwest::Error> {
    let url = format!("{base}/v1/sessions/{id}/stop");
    send(client, Method::POST, url, token, None, None).await
}

/// A lot with `tariff` and spaces, made over HTTP on `base`; returns the spaces' QR tokens.
pub(super) async fn lot(base: &str, key: &str, tariff: Value, codes: &[String]) -> Vec<String> {
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
pub(super) fn charged_tariff() -> Value {
    let mut tariff = crate::helpers::spec_tariff();
    tariff["grace_minutes"] = json!(0);
    tariff
}

/// One integer the test's pool reads from the database.
pub(super) async fn scalar(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The children wrote where the test looks: on PostgreSQL, into the test's schema (the
/// operator the CLI made is there, and the schema holds the tables), not into `public`.
pub(super) async fn assert_children_use_the_test_database(
    app: &TestApp,
    shared: &Shared,
    operators: i64,
) {
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

/// Waits until `acknowledged` reaches `at` and `window.start` has passed since `since`, or
/// until `window.end` whatever happened: the moment to pull the plug.
pub(super) async fn until_kill(
    acknowledged: &std::sync::atomic::AtomicUsize,
    since: Instant,
    at: usize,
    window: std::ops::Range<Duration>,
) {
    use std::sync::atomic::Ordering;
    while (acknowledged.load(Ordering::SeqCst) < at || since.elapsed() < window.start)
        && since.elapsed() < window.end
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn backend(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "sqlite",
        Db::Postgres(_) => "postgres",
    }
}

/// Minor units of a CNY amount such as "2.50".
pub(super) fn minor(amount: &Value) -> i64 {
    let text = amount
        .as_str()
        .unwrap_or_else(|| panic!("an amount: {amount}"));
    let (units, cents) = text.split_once('.').unwrap_or((text, "00"));
    assert_eq!(cents.len(), 2, "{text}");
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

pub(super) async fn ledger_totals(db: &Db) -> Vec<(String, i64, i64)> {
    qrpark::store::ledger::totals(db).await.unwrap()
}

#[track_caller]
pub(super) fn assert_balanced(totals: &[(String, i64, i64)]) {
    for (currency, debits, credits) in totals {
        assert_eq!(debits, credits, "ledger out of balance in {currency}");
    }
}

/// Every stopped session has exactly one settlement of its fee with its two ledger entries
/// (none for a zero fee), active sessions have none, and the ledger adds up to the fees.
pub(super) async fn assert_settlements_match_sessions(db: &Db) {
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
