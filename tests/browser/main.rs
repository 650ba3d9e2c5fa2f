//! The phone page in a real browser: headless Debian Chromium through `chromedriver`, at a
//! phone's viewport, walks scan -> sign in (demo identity provider) -> plate -> start -> fee
//! so far and the proof of parking's QR code -> stop -> receipt, then the forged-code
//! warning, the Chinese page and an expired sign-in. Then a warden signs in on `/warden`,
//! sees the lot's spaces, finds a plate, records a violation, checks the driver's proof
//! with the browser offline (and refuses a forged one), and opens a space's code. Screenshots
//! land in `target/screenshots/` for people to look at. `arrears.rs`: a payment the city's
//! gateway refuses, shown as arrears and paid again from the page, in both languages.
//!
//! Without `chromedriver` on the PATH the test says so loudly and passes, unless
//! `QRPARK_REQUIRE_BROWSER` is set (as CI should), when it fails.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use qrpark::config::Config;
use qrpark::identity::operator_key;
use qrpark::store::{Db, operators};
use serde_json::{Value, json};

mod arrears;
mod console;
mod warden;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("qrpark-{name}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `chromedriver` as a child process; killed (this child only) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start_driver(path: &PathBuf) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // chromedriver is not ours to bind first: wait until it listens.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://{addr}"),
    }
}

/// The tariff of docs/tariffs.md's worked example (`fixtures/tariffs/spec-example.json`).
fn spec_tariff() -> Value {
    serde_json::from_str(include_str!("../../fixtures/tariffs/spec-example.json"))
        .expect("the fixture is JSON")
}

/// qrpark as `qrpark demo` runs it (demo identity provider on), on 127.0.0.1:0, with one
/// lot that requires plates (as the demo lot does) and two spaces; returns the base URL and
/// the spaces' QR tokens.
async fn start_app(dir: &TempDir) -> (String, Vec<(String, String)>, String) {
    let (base, spaces, key, _) = start_app_with(dir, None, None).await;
    (base, spaces, key)
}

/// [`start_app`] with a city payment gateway (delivered only when the test runs the outbox)
/// and a clock of the test's choosing; also returns the app's state.
/// qrpark as `qrpark demo` runs it (demo identity provider on), on 127.0.0.1:0, on a fresh
/// SQLite file in `dir`; returns the base URL and the database.
async fn serve_demo(dir: &TempDir) -> (String, Db) {
    let (base, db, _) = serve_demo_with(dir, None, None).await;
    (base, db)
}

/// [`serve_demo`] with a city payment gateway and a clock of the test's choosing; also
/// returns the app's state.
async fn serve_demo_with(
    dir: &TempDir,
    payments_url: Option<String>,
    clock: Option<std::sync::Arc<dyn qrpark::clock::Clock>>,
) -> (String, Db, qrpark::AppState) {
    let url = format!("sqlite://{}", dir.0.join("qrpark.db").display());
    let db = Db::connect(&url, 4).await.expect("open SQLite");
    db.migrate().await.expect("migrate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = Config {
        database_url: url,
        bind: addr,
        // One browser on loopback: the rate limits are tested in tests/api/limits.rs.
        rate_limit_per_address: 0,
        rate_limit_per_identity: 0,
        data_dir: dir.0.join("data"),
        city_payments_url: payments_url,
        ..Config::default()
    };
    let audience = config.city_audience.clone();
    let mut state = qrpark::cli::serve::state(config, db.clone())
        .await
        .expect("app state");
    if let Some(clock) = clock {
        state.clock = clock;
    }
    let (idp, verifier) = qrpark::cli::demo::demo_identity(audience, state.clock.clone())
        .await
        .expect("demo identity provider");
    let state = state.with_city(verifier, Some(idp));
    let served = state.clone();
    tokio::spawn(async move {
        axum::serve(listener, qrpark::app(served))
            .await
            .expect("serve");
    });
    (format!("http://{addr}"), db, state)
}

async fn start_app_with(
    dir: &TempDir,
    payments_url: Option<String>,
    clock: Option<std::sync::Arc<dyn qrpark::clock::Clock>>,
) -> (String, Vec<(String, String)>, String, qrpark::AppState) {
    let (base, db, state) = serve_demo_with(dir, payments_url, clock).await;

    let key = operator_key::generate();
    operators::create(&db, "Browser Parking", &key.hash, state.clock.now())
        .await
        .expect("create operator");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&key.plaintext)
            .json(&body)
            .send()
    };
    let lot: Value = call(
        reqwest::Method::POST,
        "/v1/operator/lots",
        json!({"name": "Jing'an Temple", "timezone": "Asia/Shanghai", "currency": "CNY",
               "address": "1686 Nanjing West Road", "plate_required": true}),
    )
    .await
    .expect("create lot")
    .json()
    .await
    .expect("lot");
    let lot_id = lot["id"].as_str().expect("lot id").to_owned();
    let put = call(
        reqwest::Method::PUT,
        &format!("/v1/operator/lots/{lot_id}/tariff"),
        spec_tariff(),
    )
    .await
    .expect("put tariff");
    assert_eq!(put.status(), 201);
    let created: Value = call(
        reqwest::Method::POST,
        &format!("/v1/operator/lots/{lot_id}/spaces"),
        json!({"codes": ["B-07", "B-08"]}),
    )
    .await
    .expect("create spaces")
    .json()
    .await
    .expect("spaces");
    let spaces = created["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .map(|s| {
            let url = s["qr_url"].as_str().expect("qr url");
            (
                s["code"].as_str().unwrap_or_default().to_owned(),
                url.rsplit_once("/q/").expect("a /q/ url").1.to_owned(),
            )
        })
        .collect();
    (base, spaces, key.plaintext, state)
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshots_dir().join(name);
    std::fs::write(&path, png).expect("write screenshot");
    let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
}

/// Waits until a JavaScript expression is true in the page.
async fn wait_for(client: &Client, expression: &str) {
    let script = format!("return !!({expression});");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.execute(&script, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        if Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("timed out waiting for `{expression}`; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Sets a field's value as a script would (typing is tested on the plate field).
async fn set_value(client: &Client, id: &str, value: &str) {
    client
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![json!(id), json!(value)],
        )
        .await
        .unwrap_or_else(|e| panic!("fill #{id}: {e}"));
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

/// Clicks the first element matching a CSS selector.
async fn click_css(client: &Client, selector: &str) {
    client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

async fn connect(driver: &Driver, profile: &TempDir) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": find_on_path("chromium").map(|p| p.display().to_string())
                .unwrap_or_else(|| "/usr/bin/chromium".into()),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.0.display()),
                "--window-size=390,844",
            ],
            "mobileEmulation": {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true},
            },
            "prefs": {"intl.accept_languages": "en-US,en"},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with Chromium")
}

/// `chromedriver`'s path; `None` (said loudly) when it is missing and the browser tests may
/// be skipped.
fn chromedriver() -> Option<PathBuf> {
    let found = find_on_path("chromedriver");
    if found.is_none() {
        if std::env::var_os("QRPARK_REQUIRE_BROWSER").is_some() {
            panic!("QRPARK_REQUIRE_BROWSER is set but chromedriver is not on the PATH");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\n!!! Browser test SKIPPED: `chromedriver` is not on the PATH.\n\
             !!! Install it with `apt-get install -y chromium chromium-driver`.\n{bar}\n",
            bar = "!".repeat(78)
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_parks_and_pays_from_the_phone_page() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let data = TempDir::new("browser-db");
    let profile = TempDir::new("browser-profile");
    let (base, spaces, _operator_key) = start_app(&data).await;
    let driver = start_driver(&chromedriver);
    let client = connect(&driver, &profile).await;
    let proof = walk(&client, &base, &spaces).await;
    warden::warden(&client, &base, &spaces, &proof).await;
    client.close().await.expect("close the browser");
    drop(driver);
}

/// Walks the driver's page; returns the proof of parking the page showed.
async fn walk(client: &Client, base: &str, spaces: &[(String, String)]) -> String {
    let (code, token) = &spaces[0];

    // Scan: the page of a genuine code.
    client
        .goto(&format!("{base}/q/{token}"))
        .await
        .expect("open the page");
    wait_for(client, "document.getElementById('signin-btn')").await;
    assert_eq!(
        client
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap(),
        "en"
    );
    assert_eq!(text(client, "space-code").await, *code);
    assert!(
        text(client, "genuine")
            .await
            .contains("Genuine parking code")
    );
    assert!(
        text(client, "tariff-words")
            .await
            .contains("07:00–21:00: ¥2.50 per 15 min for the first hour, then ¥3.75 per 15 min")
    );
    // Nothing wider than the phone.
    wait_for(
        client,
        "document.documentElement.scrollWidth <= window.innerWidth && window.innerWidth <= 400",
    )
    .await;
    // The calculator asks the quote API.
    client
        .find(Locator::Css("#calc-form button"))
        .await
        .expect("calculator button")
        .click()
        .await
        .expect("calculate");
    wait_for(
        client,
        "document.getElementById('calc-out').textContent.indexOf('you pay ¥') > 0",
    )
    .await;
    screenshot(client, "01-scan.png").await;

    // Sign in with the demo identity provider: one tap.
    click(client, "signin-btn").await;
    wait_for(client, "!document.getElementById('ready').hidden").await;
    let storage = client
        .execute(
            "return [sessionStorage.getItem('qrpark.token') !== null, localStorage.length, document.cookie];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        storage,
        json!([true, 0, ""]),
        "the token lives only in sessionStorage"
    );
    screenshot(client, "02-signed-in.png").await;

    // The lot requires a plate: a start without one is refused on the page, in plain words.
    click(client, "start-btn").await;
    wait_for(
        client,
        "document.getElementById('alert').textContent.indexOf('Enter your vehicle') === 0",
    )
    .await;
    assert!(
        client
            .execute("return document.getElementById('live').hidden", vec![])
            .await
            .unwrap()
            == Value::Bool(true)
    );
    // The province row (closed in English) gives the first character; the rest is typed as
    // people type it, and normalised.
    client
        .find(Locator::Css("#provinces summary"))
        .await
        .expect("province row")
        .click()
        .await
        .expect("open the province row");
    client
        .find(Locator::Css(r#"#provinces button[data-p="沪"]"#))
        .await
        .expect("沪")
        .click()
        .await
        .expect("pick 沪");
    client
        .find(Locator::Id("plate"))
        .await
        .expect("plate field")
        .send_keys("a·123 45")
        .await
        .expect("type the plate");
    assert_eq!(
        client
            .execute("return document.getElementById('plate').value", vec![])
            .await
            .unwrap(),
        "沪a·123 45"
    );
    // A planned stop, two hours ahead on the lot's clock.
    let planned = (chrono::Utc::now() + chrono::TimeDelta::hours(2))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .format("%H:%M")
        .to_string();
    set_value(client, "stop-at", &planned).await;
    screenshot(client, "02b-plate.png").await;

    // Start, and see the fee so far, the plate and the proof of parking.
    click(client, "start-btn").await;
    wait_for(client, "!document.getElementById('live').hidden").await;
    assert_eq!(text(client, "live-plate").await, "沪A12345");
    assert_eq!(text(client, "stops-at").await, planned, "the planned stop");
    assert_eq!(
        client
            .execute("return localStorage.getItem('qrpark.plate')", vec![])
            .await
            .unwrap(),
        "沪A12345",
        "the plate is remembered on the device"
    );
    wait_for(
        client,
        "document.getElementById('fee').textContent.indexOf('¥') === 0",
    )
    .await;
    assert_eq!(
        text(client, "fee").await,
        "¥0.00",
        "within the grace period"
    );
    assert!(!text(client, "leave-by").await.is_empty(), "leave by shown");
    wait_for(
        client,
        "/^0:00:0[1-9]/.test(document.getElementById('elapsed').textContent)",
    )
    .await;
    // The proof: a QR code drawn from the server's SVG, its text, and its expiry.
    wait_for(
        client,
        "(function(i){return !i.hidden && i.complete && i.naturalWidth > 0 &&          i.src.indexOf('data:image/svg+xml;base64,') === 0})(document.getElementById('proof-img'))",
    )
    .await;
    assert!(
        text(client, "proof-valid")
            .await
            .starts_with("Valid until ")
    );
    let proof = client
        .execute(
            "return document.getElementById('proof-token').value",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .expect("the proof's text")
        .to_owned();
    assert_eq!(proof.split('.').count(), 3, "a compact JWS: {proof}");
    client
        .execute("document.getElementById('proof').scrollIntoView()", vec![])
        .await
        .expect("scroll to the proof");
    screenshot(client, "03-parking.png").await;

    // A reload keeps the session (it is in sessionStorage) and shows a proof again.
    client.refresh().await.expect("reload");
    wait_for(client, "!document.getElementById('live').hidden").await;
    wait_for(
        client,
        "document.getElementById('proof-token').value.length > 0",
    )
    .await;

    // Stop: the receipt with its breakdown and settlement.
    click(client, "stop-btn").await;
    wait_for(client, "!document.getElementById('receipt').hidden").await;
    assert_eq!(text(client, "receipt-total").await, "¥0.00");
    assert!(text(client, "receipt-ref").await.starts_with("QRP-"));
    assert!(
        text(client, "receipt-lines").await.contains("grace"),
        "the breakdown names the grace"
    );
    assert!(text(client, "receipt-settlement").await.contains("Paid"));
    assert_eq!(text(client, "receipt-plate").await, "沪A12345");
    assert_eq!(text(client, "receipt-ended-by").await, "Stopped by you.");
    assert!(
        client
            .execute("return document.getElementById('proof').hidden", vec![])
            .await
            .unwrap()
            == Value::Bool(true),
        "no proof once stopped"
    );
    screenshot(client, "04-receipt.png").await;

    // An expired sign-in is said in plain words.
    client
        .execute(
            "sessionStorage.setItem('qrpark.token', 'expired.token.here'); location.reload();",
            vec![],
        )
        .await
        .expect("plant a bad token");
    wait_for(
        client,
        "document.getElementById('alert').textContent.indexOf('sign-in has expired') > 0",
    )
    .await;
    wait_for(client, "!document.getElementById('signin').hidden").await;
    screenshot(client, "05-expired-sign-in.png").await;

    // Chinese, switched on the page.
    click_css(client, "nav.lang a").await;
    wait_for(client, "document.documentElement.lang === 'zh-CN'").await;
    assert!(text(client, "park-h").await.contains("在此停车"));
    screenshot(client, "06-chinese.png").await;

    // A forged code: a warning page, in the language remembered by the switch.
    let mut forged = spaces[1].1.clone();
    let last = forged.pop().expect("a token");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    client
        .goto(&format!("{base}/q/{forged}?lang=en"))
        .await
        .expect("open forged");
    wait_for(client, "document.getElementById('warning')").await;
    let warning = text(client, "warning").await;
    assert!(
        warning.contains("Warning: this is not a genuine parking code"),
        "{warning}"
    );
    screenshot(client, "07-forged.png").await;
    proof
}
