//! The operator console in a real browser (headless Chromium at 1280x800, then 768x1024):
//! sign in -> a lot -> a range of spaces -> a tariff with an error shown at its path ->
//! fixed -> the fee preview chart -> publish -> a session (started through the driver API)
//! appears -> stopped with a reason -> the metrics charts. axe-core (vendored in
//! `tests/browser/vendor/`, injected through WebDriver) must find no violation on any page
//! at either size, and no page may scroll sideways.

use std::io::Write;

use fantoccini::{Client, ClientBuilder, Locator};
use qrpark::identity::operator_key;
use qrpark::store::operators;
use serde_json::{Value, json};

use crate::{Driver, TempDir, click, find_on_path, screenshot, set_value, text, wait_for};

/// axe-core 4.14.1 from npm (MPL-2.0), unchanged.
const AXE: &str = include_str!("vendor/axe.min.js");

/// qrpark with the demo identity provider (drivers get tokens from `/v1/demo/token`) and
/// one operator without lots; returns the base URL and the operator's key.
async fn start_app(dir: &TempDir) -> (String, String) {
    let (base, db) = crate::serve_demo(dir).await;
    let key = operator_key::generate();
    operators::create(&db, "Huangpu Parking", &key.hash, chrono::Utc::now())
        .await
        .expect("create operator");
    (base, key.plaintext)
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
                "--window-size=1280,800", "--hide-scrollbars",
            ],
            "prefs": {"intl.accept_languages": "en-US,en"},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with Chromium")
}

/// Sets the viewport (the page's inner size) to `width` x `height`.
async fn viewport(client: &Client, width: u32, height: u32) {
    client.set_window_size(width, height).await.expect("resize");
    // The window includes the browser's frame: correct by what the page sees.
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .expect("inner size");
    let dw = i64::from(width) - inner[0].as_i64().unwrap_or(0);
    let dh = i64::from(height) - inner[1].as_i64().unwrap_or(0);
    client
        .set_window_size(
            u32::try_from(i64::from(width) + dw).unwrap_or(width),
            u32::try_from(i64::from(height) + dh).unwrap_or(height),
        )
        .await
        .expect("resize");
    wait_for(
        client,
        &format!("window.innerWidth === {width} && window.innerHeight === {height}"),
    )
    .await;
}

/// Runs axe-core on the page (WCAG 2.1 A and AA, and best practices); returns the
/// number of rules that passed, after asserting that none was violated.
async fn axe(client: &Client, what: &str) -> usize {
    client
        .execute(&format!("{AXE}\n;return true;"), vec![])
        .await
        .expect("inject axe-core");
    let result = client
        .execute_async(
            "var done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
               .then(function (r) {
                 done({passes: r.passes.length, violations: r.violations.map(function (v) {
                   return v.id + ' (' + v.impact + '): ' + v.nodes.map(function (n) {
                     return n.target.join(' ');
                   }).join(', ');
                 })});
               }, function (e) { done({error: String(e)}); });",
            vec![],
        )
        .await
        .expect("run axe-core");
    assert!(result.get("error").is_none(), "axe-core failed: {result}");
    assert_eq!(
        result["violations"],
        json!([]),
        "axe-core on {what} at {}",
        client
            .execute(
                "return window.innerWidth + 'x' + window.innerHeight",
                vec![]
            )
            .await
            .unwrap_or_default()
    );
    // Nothing wider than the window.
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(fits, Value::Bool(true), "{what} scrolls sideways");
    result["passes"].as_u64().unwrap_or(0) as usize
}

/// Records the bytes of the page's HTML and of each asset it loaded (decoded, as served
/// before any compression) in `target/screenshots/console-weights.txt`, and says them.
async fn weigh(client: &Client, what: &str) {
    let sizes = client
        .execute(
            "var nav = performance.getEntriesByType('navigation')[0];
             return [nav ? nav.decodedBodySize : -1].concat(
               performance.getEntriesByType('resource').map(function (r) {
                 return r.name.split('/').pop() + ' ' + r.decodedBodySize;
               }));",
            vec![],
        )
        .await
        .expect("measure the page");
    let line = format!("{what}: {sizes}\n");
    let _ = write!(std::io::stderr(), "weight of {line}");
    let path = crate::screenshots_dir().join("console-weights.txt");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the weights file");
    file.write_all(line.as_bytes()).expect("write the weights");
}

async fn goto(client: &Client, url: &str) {
    client
        .goto(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// Submits the form of the button `id` and waits for the next page.
async fn submit(client: &Client, id: &str) {
    client
        .execute("window.__old = true;", vec![])
        .await
        .expect("mark the page");
    click(client, id).await;
    wait_for(
        client,
        "!window.__old && document.readyState === 'complete'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_lot_from_the_console() {
    let Some(chromedriver) = find_on_path("chromedriver") else {
        if std::env::var_os("QRPARK_REQUIRE_BROWSER").is_some() {
            panic!("QRPARK_REQUIRE_BROWSER is set but chromedriver is not on the PATH");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! Console browser test SKIPPED: `chromedriver` is not on the PATH.\n"
        );
        return;
    };
    let _ = std::fs::remove_file(crate::screenshots_dir().join("console-weights.txt"));
    let data = TempDir::new("console-db");
    let profile = TempDir::new("console-profile");
    let (base, key) = start_app(&data).await;
    let driver = crate::start_driver(&chromedriver);
    let client = connect(&driver, &profile).await;
    viewport(&client, 1280, 800).await;
    let pages = walk(&client, &base, &key).await;

    // The same pages at a tablet's size.
    viewport(&client, 768, 1024).await;
    let mut passes = 0;
    for url in &pages {
        goto(&client, url).await;
        passes += axe(&client, url).await;
    }
    goto(&client, &pages[2]).await;
    submit(&client, "check").await;
    wait_for(&client, "document.getElementById('fee-chart')").await;
    passes += axe(&client, "the preview").await;
    screenshot(&client, "console-768-preview.png").await;
    goto(&client, &pages[3]).await;
    screenshot(&client, "console-768-sessions.png").await;
    let _ = writeln!(
        std::io::stderr(),
        "axe-core: 0 violations at 1280x800 and 768x1024 ({passes} rule passes at 768x1024)"
    );
    client.close().await.expect("close the browser");
    drop(driver);
}

/// The walk at 1280x800; returns the pages (GET URLs) to check again at the other size.
async fn walk(client: &Client, base: &str, key: &str) -> Vec<String> {
    // Signing in.
    goto(client, &format!("{base}/console")).await;
    wait_for(client, "document.getElementById('key')").await;
    axe(client, "the sign-in page").await;
    weigh(client, "the sign-in page").await;
    screenshot(client, "console-01-sign-in.png").await;
    client
        .find(Locator::Id("key"))
        .await
        .expect("key field")
        .send_keys(key)
        .await
        .expect("type the key");
    submit(client, "signin").await;
    wait_for(client, "document.getElementById('lot-name')").await;
    let lots_url = client.current_url().await.expect("url").to_string();

    // A lot.
    client
        .find(Locator::Id("lot-name"))
        .await
        .expect("lot name")
        .send_keys("People's Square P2")
        .await
        .expect("type the name");
    axe(client, "the lots page").await;
    weigh(client, "the lots page").await;
    submit(client, "create-lot").await;
    wait_for(client, "document.getElementById('occ-spaces')").await;
    let lot_url = client
        .current_url()
        .await
        .expect("url")
        .as_str()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let lot_id = lot_url.rsplit('/').next().unwrap().to_owned();

    // A range of spaces.
    set_value(client, "codes", "A-001..A-120").await;
    submit(client, "add-spaces").await;
    assert_eq!(text(client, "occ-spaces").await, "120");
    assert_eq!(text(client, "occ-free").await, "120");
    assert!(text(client, "spaces").await.contains("A-120"));
    axe(client, "the lot page").await;
    weigh(client, "the lot page (120 spaces)").await;
    screenshot(client, "console-02-lot.png").await;

    // A tariff with an error, shown at its JSON path.
    click(client, "tariff-link").await;
    wait_for(client, "document.getElementById('document')").await;
    let tariff_url = client.current_url().await.expect("url").to_string();
    let mut broken: Value =
        serde_json::from_str(include_str!("../../fixtures/tariffs/spec-example.json"))
            .expect("fixture");
    broken["rules"][1]["price"]["steps"][0]["amount"] = json!("2.505");
    set_value(
        client,
        "document",
        &serde_json::to_string_pretty(&broken).unwrap(),
    )
    .await;
    set_value(client, "arrival", "2026-09-29T08:00").await;
    submit(client, "check").await;
    wait_for(
        client,
        "document.querySelector('#annotated tr.bad .problem[data-path=\"$.rules[1].price.steps[0].amount\"]')",
    )
    .await;
    assert!(
        text(client, "tariff-errors")
            .await
            .contains("$.rules[1].price.steps[0].amount")
    );
    axe(client, "the tariff with an error").await;
    weigh(client, "the tariff with an error").await;
    screenshot(client, "console-03-tariff-error.png").await;

    // Fixed: the preview.
    broken["rules"][1]["price"]["steps"][0]["amount"] = json!("2.50");
    set_value(
        client,
        "document",
        &serde_json::to_string_pretty(&broken).unwrap(),
    )
    .await;
    submit(client, "check").await;
    wait_for(client, "document.getElementById('fee-chart')").await;
    axe(client, "the fee preview").await;
    weigh(client, "the fee preview").await;
    client
        .execute(
            "document.getElementById('preview').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the preview");
    screenshot(client, "console-04-preview.png").await;
    // Publish, once confirmed.
    click(client, "confirm").await;
    submit(client, "publish").await;
    wait_for(client, "document.getElementById('current-version')").await;
    assert_eq!(text(client, "current-version").await, "1");

    // A dearer draft beside the tariff now in force (the picture in docs/img).
    broken["rules"][1]["price"]["steps"][1]["amount"] = json!("5.00");
    broken["daily_cap"]["amount"] = json!("80.00");
    set_value(
        client,
        "document",
        &serde_json::to_string_pretty(&broken).unwrap(),
    )
    .await;
    set_value(client, "arrival", "2026-09-29T08:00").await;
    submit(client, "check").await;
    wait_for(
        client,
        "document.querySelector('#fee-chart path.line.current')",
    )
    .await;
    client
        .execute(
            "document.getElementById('preview').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the preview");
    screenshot(client, "console-04b-preview-beside-current.png").await;

    // A driver parks through the API; the session appears.
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/v1/demo/token"))
        .json(&json!({"subject": "console-driver"}))
        .send()
        .await
        .expect("demo token")
        .json()
        .await
        .expect("token");
    let spaces: Value = http
        .get(format!("{base}/v1/operator/lots/{lot_id}/spaces"))
        .bearer_auth(key)
        .send()
        .await
        .expect("spaces")
        .json()
        .await
        .expect("spaces");
    let started = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(token["token"].as_str().expect("token"))
        .header("Idempotency-Key", "console-walk")
        .json(&json!({"qr": spaces["spaces"][6]["qr_url"], "plate": "沪A12345"}))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 201);
    goto(client, &lot_url).await;
    wait_for(
        client,
        "document.getElementById('occ-occupied').textContent === '1'",
    )
    .await;
    goto(client, &format!("{base}/console/sessions?lot={lot_id}")).await;
    wait_for(client, "document.getElementById('sessions')").await;
    let sessions_url = client.current_url().await.expect("url").to_string();
    assert!(text(client, "sessions").await.contains("沪A12345"));
    axe(client, "the sessions page").await;
    weigh(client, "the sessions page").await;
    screenshot(client, "console-05-sessions.png").await;

    // Stopped with a reason.
    let reason = client
        .find(Locator::Css("#sessions form.stop input[name=reason]"))
        .await
        .expect("reason field");
    reason
        .send_keys("blocking the exit")
        .await
        .expect("type the reason");
    client
        .execute("window.__old = true;", vec![])
        .await
        .expect("mark");
    client
        .find(Locator::Css("#sessions form.stop button"))
        .await
        .expect("stop button")
        .click()
        .await
        .expect("stop");
    wait_for(client, "!window.__old && document.querySelector('.notice')").await;
    let row = text(client, "sessions").await;
    assert!(
        row.contains("stopped by you") && row.contains("blocking the exit"),
        "{row}"
    );

    // The metrics charts.
    goto(client, &format!("{base}/console/metrics?lot={lot_id}")).await;
    wait_for(client, "document.getElementById('occupancy-chart')").await;
    let metrics_url = client.current_url().await.expect("url").to_string();
    assert!(
        client
            .find(Locator::Css("#sessions-chart rect.bar"))
            .await
            .is_ok()
    );
    axe(client, "the metrics page").await;
    weigh(client, "the metrics page").await;
    screenshot(client, "console-06-metrics.png").await;

    // Chinese.
    goto(client, &format!("{base}/console/lots?lang=zh")).await;
    wait_for(client, "document.documentElement.lang === 'zh-CN'").await;
    axe(client, "the Chinese lots page").await;
    screenshot(client, "console-07-chinese.png").await;
    goto(client, &format!("{base}/console/lots?lang=en")).await;

    vec![lots_url, lot_url, tariff_url, sessions_url, metrics_url]
}
