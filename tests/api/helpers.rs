//! A real qrpark on 127.0.0.1:0 against a fresh database, and an HTTP client for it.

use std::io::Write;
use std::str::FromStr;
use std::sync::Once;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use qrpark::clock::{Clock, ManualClock};
use qrpark::config::Config;
use qrpark::identity::operator_key;
use qrpark::store::{Db, operators};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

/// Generates, for each named `async fn(TestApp)`, one test on SQLite and one on PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = $crate::helpers::TestApp::sqlite().await;
                    let books = app.books();
                    super::$name(app).await;
                    books.assert_reconcile().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(app) = $crate::helpers::TestApp::postgres().await {
                        let books = app.books();
                        super::$name(app).await;
                        books.assert_reconcile().await;
                    }
                }
            )*
        }
    };
}
pub(crate) use both_backends;

/// A test app's database, kept open after the test for a last look at its books.
pub struct Books {
    db: Db,
    _dir: Option<Arc<TempDir>>,
}

impl Books {
    /// After every test: debits equal credits per currency, and every account's balance is
    /// what the settlements' and refunds' states say (docs/money.md).
    pub async fn assert_reconcile(&self) {
        let closed = match &self.db {
            Db::Sqlite(pool) => pool.is_closed(),
            Db::Postgres(pool) => pool.is_closed(),
        };
        if closed {
            return;
        }
        let books = qrpark::store::ledger::reconcile(&self.db)
            .await
            .expect("reconcile the books");
        let problems = books.problems();
        assert!(
            problems.is_empty(),
            "the books do not reconcile: {problems:#?}"
        );
    }
}

/// A running app and what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    pub db: Db,
    pub state: qrpark::AppState,
    /// The app's clock: tests move time with `clock.advance(..)`.
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    /// Keeps the SQLite file's and the data dir's directory alive for the test's duration.
    _dir: Option<Arc<TempDir>>,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("qrpark-test-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An operator with a working API key.
pub struct TestOperator {
    pub id: Uuid,
    pub key: String,
}

/// A decoded answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The problem `code` of an error answer, after checking it is problem JSON.
    #[track_caller]
    pub fn problem_code(&self) -> &str {
        assert_eq!(
            self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "not a problem answer: {} {}",
            self.status,
            self.text
        );
        for member in ["type", "title", "status", "detail", "code"] {
            assert!(
                self.body.get(member).is_some(),
                "problem lacks `{member}`: {}",
                self.text
            );
        }
        assert_eq!(self.body["status"], self.status.as_u16());
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Paths named in a problem's `errors`.
    pub fn error_paths(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

static POSTGRES_SKIPPED: Once = Once::new();

/// A fresh, empty schema of the PostgreSQL database named by `QRPARK_TEST_POSTGRES_URL`
/// (not migrated) and that URL, or `None` (said loudly, once) when it is unset.
pub async fn empty_postgres() -> Option<(Db, String)> {
    empty_postgres_schema()
        .await
        .map(|(db, url, _schema)| (db, url))
}

/// Like [`empty_postgres`], with the schema's name.
pub async fn empty_postgres_schema() -> Option<(Db, String, String)> {
    let Ok(url) = std::env::var("QRPARK_TEST_POSTGRES_URL") else {
        if std::env::var_os("QRPARK_REQUIRE_POSTGRES").is_some() {
            panic!("QRPARK_REQUIRE_POSTGRES is set but QRPARK_TEST_POSTGRES_URL is not");
        }
        POSTGRES_SKIPPED.call_once(|| {
            // Straight to the process's stderr: the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n{bar}\n!!! PostgreSQL half SKIPPED: QRPARK_TEST_POSTGRES_URL is unset.\n\
                 !!! Only SQLite was tested. Set it (e.g. postgres://postgres@127.0.0.1:5432/qrpark_test)\n\
                 !!! to run the same suite on PostgreSQL, as .ci/run does.\n{bar}\n",
                bar = "!".repeat(78)
            );
        });
        return None;
    };
    let schema = format!("t_{}", Uuid::now_v7().simple());
    let admin = Db::connect(&url, 1).await.expect("connect to PostgreSQL");
    if let Db::Postgres(pool) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
            .execute(pool)
            .await
            .expect("create test schema");
    }
    admin.close().await;
    let options = PgConnectOptions::from_str(&url)
        .expect("parse QRPARK_TEST_POSTGRES_URL")
        .options([("search_path", schema.as_str())]);
    let db = Db::connect_postgres(options, 4)
        .await
        .expect("connect to test schema");
    Some((db, url, schema))
}

/// The URL of `schema` on the replica at `read_url` (a streaming replica of the primary, so
/// the schema made there appears on it).
pub fn schema_on(read_url: &str, schema: &str) -> String {
    let joint = if read_url.contains('?') { '&' } else { '?' };
    format!("{read_url}{joint}options%5Bsearch_path%5D={schema}")
}

impl TestApp {
    /// What checks the books once the test is over (see [`both_backends`]).
    pub fn books(&self) -> Books {
        Books {
            db: self.db.clone(),
            _dir: self._dir.clone(),
        }
    }

    /// An app on a fresh SQLite file.
    pub async fn sqlite() -> Self {
        Self::sqlite_paying(None).await
    }

    /// An app on a fresh SQLite file, delivering settlements to `payments_url` if given.
    pub async fn sqlite_paying(payments_url: Option<String>) -> Self {
        Self::sqlite_configured(payments_url, |_| {}).await
    }

    /// Like [`TestApp::sqlite_paying`], with `tweak` applied to the test's configuration.
    pub async fn sqlite_configured(payments_url: Option<String>, tweak: fn(&mut Config)) -> Self {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("qrpark.db").display());
        let db = Db::connect(&url, 4).await.expect("open SQLite");
        Self::start(db, url, Some(dir), payments_url, tweak).await
    }

    /// An app on a fresh schema of the PostgreSQL database named by
    /// `QRPARK_TEST_POSTGRES_URL`, or `None` (said loudly, once) when it is unset.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_paying(None).await
    }

    /// Like [`TestApp::postgres`], delivering settlements to `payments_url` if given.
    pub async fn postgres_paying(payments_url: Option<String>) -> Option<Self> {
        Self::postgres_configured(payments_url, |_| {}).await
    }

    /// Like [`TestApp::postgres_paying`], with `tweak` applied to the test's configuration.
    /// With `QRPARK_TEST_POSTGRES_READ_URL` set (`.ci/run` sets it), the app reads what may
    /// lag from that streaming replica, as `QRPARK_DATABASE_READ_URL` makes it do.
    pub async fn postgres_configured(
        payments_url: Option<String>,
        tweak: fn(&mut Config),
    ) -> Option<Self> {
        let read_url = std::env::var("QRPARK_TEST_POSTGRES_READ_URL").ok();
        Self::postgres_reading(read_url.as_deref(), payments_url, tweak).await
    }

    /// An app on a fresh PostgreSQL schema whose reads that may lag go to that schema on the
    /// server at `read_url` (none: to the primary).
    pub async fn postgres_reading(
        read_url: Option<&str>,
        payments_url: Option<String>,
        tweak: fn(&mut Config),
    ) -> Option<Self> {
        let (db, url, schema) = empty_postgres_schema().await?;
        let read_url = read_url.map(|read| schema_on(read, &schema));
        Some(Self::start_reading(db, url, read_url, None, payments_url, tweak).await)
    }

    /// An app on `db` (migrated here), whose URL is `url`: for tests that bring a database
    /// of their own (tests/api/faults.rs).
    pub async fn start(
        db: Db,
        url: String,
        dir: Option<TempDir>,
        payments_url: Option<String>,
        tweak: fn(&mut Config),
    ) -> Self {
        Self::start_reading(db, url, None, dir, payments_url, tweak).await
    }

    /// Like [`TestApp::start`], reading what may lag from `read_url` when given.
    pub async fn start_reading(
        db: Db,
        url: String,
        read_url: Option<String>,
        dir: Option<TempDir>,
        payments_url: Option<String>,
        tweak: fn(&mut Config),
    ) -> Self {
        db.migrate().await.expect("migrate");
        // Keys at rest are sealed under a key-encryption key in the data dir: a fresh one per
        // test, never the working folder's.
        let dir = dir.unwrap_or_else(TempDir::new);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut config = Config {
            database_url: url,
            bind: addr,
            max_body_bytes: 64 * 1024,
            // The whole suite talks from one address as a few identities: limits are
            // tested on apps of their own (tests/api/limits.rs).
            rate_limit_per_address: 0,
            rate_limit_per_identity: 0,
            data_dir: dir.0.join("data"),
            database_read_url: read_url,
            ..Config::default()
        };
        tweak(&mut config);
        // Every test starts on Tuesday 2026-09-29 at 10:00 in Shanghai, and moves time itself.
        let clock = Arc::new(ManualClock::new(
            DateTime::parse_from_rfc3339("2026-09-29T02:00:00Z")
                .expect("a valid instant")
                .with_timezone(&Utc),
        ));
        // The identity provider issues, and the verifier judges, tokens on the same clock.
        let audience = config.city_audience.clone();
        let (idp, verifier) = qrpark::cli::demo::demo_identity(audience, clock.clone())
            .await
            .expect("demo identity provider");
        let state = qrpark::cli::serve::state(config, db.clone())
            .await
            .expect("app state");
        let state = qrpark::AppState {
            clock: clock.clone(),
            payments_url,
            ..state
        }
        .with_city(verifier, Some(idp));
        Self::serve(listener, state, db, clock, Arc::new(dir))
    }

    /// Serves `state` on `listener` in the background.
    fn serve(
        listener: tokio::net::TcpListener,
        state: qrpark::AppState,
        db: Db,
        clock: Arc<ManualClock>,
        dir: Arc<TempDir>,
    ) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let app_state = state.clone();
        tokio::spawn(async move {
            axum::serve(listener, qrpark::app(state))
                .await
                .expect("serve");
        });
        Self {
            base: format!("http://{addr}"),
            db,
            state: app_state,
            clock,
            client: reqwest::Client::new(),
            _dir: Some(dir),
        }
    }

    /// Waits (up to 2 s) until the app's read replica, if it has one, holds every change
    /// made so far: for a test that reads at once what a driver just did through a public
    /// page, which a replica may show up to a second late (docs/operations.md, "Read
    /// replica").
    pub async fn replica_caught_up(&self) {
        self.state.reads.caught_up().await;
    }

    /// A second app on this one's database, as another `qrpark serve` process behind the same
    /// load balancer would be: state of its own (its caches, its keyring, its limits) built
    /// as `serve` builds it, on the same data dir (key-encryption key), clock and identity
    /// provider, so the same tokens work on both.
    pub async fn another(&self) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut config = (*self.state.config).clone();
        config.bind = addr;
        let state = qrpark::cli::serve::state(config, self.db.clone())
            .await
            .expect("app state");
        let state = qrpark::AppState {
            clock: self.clock.clone(),
            payments_url: self.state.payments_url.clone(),
            city: self.state.city.clone(),
            demo_idp: self.state.demo_idp.clone(),
            ..state
        };
        assert!(
            !Arc::ptr_eq(&state.cache, &self.state.cache),
            "each app keeps its own cache"
        );
        let dir = self._dir.clone().expect("a test app's directory");
        Self::serve(listener, state, self.db.clone(), self.clock.clone(), dir)
    }

    /// Runs raw SQL against the app's database (to simulate failures).
    pub async fn execute(&self, sql: &'static str) {
        self.try_execute(sql).await.expect("execute SQL");
    }

    /// Runs raw SQL and reports whether the database accepted it.
    pub async fn try_execute(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
    }

    /// Seals every pending audit event into the chain, as an export does before it reads:
    /// what a test reads of `audit_event` then holds every change made so far.
    pub async fn seal(&self) -> u64 {
        qrpark::store::audit::seal_pending(&self.db)
            .await
            .expect("seal the audit chain")
    }

    /// The payloads of the audit chain's events of `kind`, in chain order (sealed first).
    pub async fn audit_payloads(&self, kind: &str) -> Vec<Value> {
        self.seal().await;
        let sql = "select payload from audit_event where kind = $1 order by seq";
        let texts: Vec<String> = match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar(sql).bind(kind).fetch_all(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar(sql).bind(kind).fetch_all(pool).await,
        }
        .expect("read the audit chain");
        texts
            .iter()
            .map(|t| serde_json::from_str(t).expect("payloads are JSON"))
            .collect()
    }

    /// What the app's clock shows: the one clock of every test's writes and reads.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A city identity token for `subject`, signed by the test's identity provider. It is
    /// valid for a day of the test's clock: tests move time by hours with one driver
    /// signed in, and token lifetimes are tested in `identity::city`.
    pub fn driver_token(&self, subject: &str) -> String {
        self.state
            .demo_idp
            .as_ref()
            .expect("tests run with the demo identity provider")
            .issue(
                subject,
                &[],
                "qrpark",
                std::time::Duration::from_secs(24 * 3600),
            )
    }

    /// A new operator with one API key, made as the CLI makes them.
    pub async fn operator(&self, name: &str) -> TestOperator {
        let key = operator_key::generate();
        let (operator, _) = operators::create(&self.db, name, &key.hash, self.now())
            .await
            .expect("create operator");
        TestOperator {
            id: operator.operator_id,
            key: key.plaintext,
        }
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::decode(request.send().await.expect("send request")).await
    }

    /// Sends raw bytes with a content type of the caller's choosing.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(key) = key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        Self::decode(request.send().await.expect("send request")).await
    }

    /// Decodes any response the way [`TestApp::call`] does.
    pub async fn decode_response(response: reqwest::Response) -> Answer {
        Self::decode(response).await
    }

    /// Sends a raw JSON body with a bearer token and extra headers.
    pub async fn call_raw_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::decode(request.send().await.expect("send request")).await
    }

    async fn decode(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.call(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, path, key, Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: Option<&str>, body: Value) -> Answer {
        self.call(Method::PATCH, path, key, Some(body)).await
    }

    pub async fn put(&self, path: &str, key: Option<&str>, body: Value) -> Answer {
        self.call(Method::PUT, path, key, Some(body)).await
    }

    /// Stops a session as `driver`; the answer is the caller's to check.
    pub async fn stop(&self, driver: &str, session_id: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/stop"),
            Some(driver),
            None,
        )
        .await
    }

    /// Publishes `tariff` for a lot and returns the published version, failing the test if
    /// that does not work.
    pub async fn publish_tariff(
        &self,
        operator: &TestOperator,
        lot_id: &str,
        tariff: Value,
    ) -> Value {
        let answer = self
            .put(
                &format!("/v1/operator/lots/{lot_id}/tariff"),
                Some(&operator.key),
                tariff,
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body
    }

    /// Creates a lot and returns its id, failing the test if that does not work.
    pub async fn lot(
        &self,
        operator: &TestOperator,
        name: &str,
        tz: &str,
        currency: &str,
    ) -> String {
        let answer = self
            .post(
                "/v1/operator/lots",
                Some(&operator.key),
                serde_json::json!({"name": name, "timezone": tz, "currency": currency}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["id"].as_str().expect("lot id").to_owned()
    }

    /// Creates spaces in a lot and returns them as answered (`id`, `code`, `qr_url`...), in
    /// the order given, failing the test if that does not work.
    pub async fn create_spaces(
        &self,
        operator: &TestOperator,
        lot_id: &str,
        codes: &[&str],
    ) -> Vec<Value> {
        let answer = self
            .post(
                &format!("/v1/operator/lots/{lot_id}/spaces"),
                Some(&operator.key),
                serde_json::json!({"codes": codes}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        let spaces = answer.body["spaces"].as_array().expect("spaces").clone();
        assert_eq!(spaces.len(), codes.len(), "{}", answer.text);
        spaces
    }

    /// Rotates a space's QR code and returns the new token, failing the test if that does
    /// not work.
    pub async fn rotate_code(&self, operator: &TestOperator, space_id: &str) -> String {
        let rotated = self
            .call(
                Method::POST,
                &format!("/v1/operator/spaces/{space_id}/qr/rotate"),
                Some(&operator.key),
                None,
            )
            .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
        qr_token(rotated.body["qr_url"].as_str().expect("qr_url")).to_owned()
    }

    /// Creates spaces in a lot and returns their ids, in the order given.
    pub async fn spaces(
        &self,
        operator: &TestOperator,
        lot_id: &str,
        codes: &[&str],
    ) -> Vec<String> {
        self.create_spaces(operator, lot_id, codes)
            .await
            .iter()
            .map(|s| s["id"].as_str().expect("space id").to_owned())
            .collect()
    }
}

/// The tariff of docs/tariffs.md's worked example (`fixtures/tariffs/spec-example.json`):
/// 2.50 then 3.75 per quarter hour by day, 1.00 per two hours at night (at most 5.00),
/// 20.00 flat on national day, 15 free minutes, at most 60.00 a day.
pub fn spec_tariff() -> Value {
    serde_json::from_str(include_str!("../../fixtures/tariffs/spec-example.json"))
        .expect("the fixture is JSON")
}

/// The token of a space's QR code URL (`{public_url}/q/{token}`).
#[track_caller]
pub fn qr_token(url: &str) -> &str {
    url.rsplit_once("/q/").expect("a /q/ URL").1
}

/// The text of a PDF's content streams (inflated), enough to find the labels it prints.
pub fn pdf_text(pdf: &[u8]) -> String {
    use std::io::Read;
    let mut text = String::new();
    let mut rest = pdf;
    while let Some(start) = find(rest, b"stream") {
        let mut body = &rest[start + b"stream".len()..];
        // The keyword is followed by CRLF or LF before the data.
        body = body
            .strip_prefix(b"\r\n")
            .or_else(|| body.strip_prefix(b"\n"))
            .unwrap_or(body);
        let Some(end) = find(body, b"endstream") else {
            break;
        };
        let data = &body[..end];
        let mut inflated = Vec::new();
        if flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut inflated)
            .is_ok()
        {
            text.push_str(&String::from_utf8_lossy(&inflated));
        } else {
            text.push_str(&String::from_utf8_lossy(data));
        }
        rest = &body[end + b"endstream".len()..];
    }
    text
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
