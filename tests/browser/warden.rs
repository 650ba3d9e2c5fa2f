//! The warden's side in the browser: `/warden` signed in (demo identity provider with the
//! warden role), a lot's spaces, a plate found, violations recorded and refused, a driver's
//! proof of parking checked with Chromium offline, a forged one refused, and a space's code
//! opened by the warden.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::{click, screenshot, set_value, text, wait_for};

/// Chromium's own network emulation (a chromedriver extension): with `offline` every request
/// of the page fails as on a phone without a signal.
#[derive(Debug)]
struct NetworkConditions {
    offline: bool,
}

impl WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/chromium/network_conditions",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"network_conditions": {
            "offline": self.offline, "latency": 0,
            "download_throughput": -1, "upload_throughput": -1,
        }});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

async fn set_offline(client: &Client, offline: bool) {
    client
        .issue_cmd(NetworkConditions { offline })
        .await
        .expect("set Chromium's network conditions");
    let reach = client
        .execute_async(
            "var done = arguments[0]; fetch('/healthz', {cache: 'no-store'})             .then(function () { done('online'); }, function () { done('offline'); });",
            vec![],
        )
        .await
        .expect("probe the network");
    assert_eq!(reach, if offline { "offline" } else { "online" });
}

/// Starts a session as a driver of its own through the API: the paid space the warden sees.
async fn park_through_the_api(base: &str, qr: &str, plate: &str) {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/v1/demo/token"))
        .json(&json!({"subject": "driver-b"}))
        .send()
        .await
        .expect("demo token")
        .json()
        .await
        .expect("token");
    let started = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(token["token"].as_str().expect("token"))
        .header("Idempotency-Key", "browser-warden-1")
        .json(&json!({"qr": qr, "plate": plate}))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 201);
}

/// The same proof with another plate in its claims and the original signature.
fn with_plate(proof: &str, plate: &str) -> String {
    let parts: Vec<&str> = proof.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url"))
            .expect("claims");
    claims["p"] = json!(plate);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{claims}.{}", parts[0], parts[2])
}

async fn submit(client: &Client, form: &str) {
    client
        .find(Locator::Css(&format!("#{form} button[type=submit]")))
        .await
        .unwrap_or_else(|e| panic!("#{form}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("submit #{form}: {e}"));
}

pub async fn warden(client: &Client, base: &str, spaces: &[(String, String)], proof: &str) {
    park_through_the_api(base, &spaces[1].1, "沪B54321").await;

    // Sign in (demo warden), pick the lot: every space, live.
    client
        .goto(&format!("{base}/warden?lang=en"))
        .await
        .expect("open the warden page");
    wait_for(client, "document.getElementById('w-signin-btn')").await;
    wait_for(
        client,
        "document.getElementById('keys-state').textContent.indexOf('keys are saved') > 0",
    )
    .await;
    click(client, "w-signin-btn").await;
    wait_for(
        client,
        "document.getElementById('lot-select').options.length === 2",
    )
    .await;
    client
        .execute(
            "var s = document.getElementById('lot-select'); s.value = s.options[1].value;              s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .expect("pick the lot");
    let row = |code: &str| format!(r#"document.querySelector('#spaces tr[data-code="{code}"]')"#);
    wait_for(
        client,
        &format!("{} && {0}.className === 'paid'", row("B-08")),
    )
    .await;
    let paid = client
        .execute(&format!("return {}.textContent", row("B-08")), vec![])
        .await
        .unwrap();
    let paid = paid.as_str().unwrap();
    assert!(paid.contains("Paid") && paid.contains("沪B54321"), "{paid}");
    assert!(paid.contains(" left (until "), "time left: {paid}");
    let unpaid = client
        .execute(&format!("return {}.textContent", row("B-07")), vec![])
        .await
        .unwrap();
    assert!(unpaid.as_str().unwrap().contains("Not paid"), "{unpaid}");
    wait_for(
        client,
        "document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    screenshot(client, "08-warden-spaces.png").await;

    // Find a plate, as typed on the street.
    set_value(client, "search-plate", "沪b 54321").await;
    submit(client, "search-form").await;
    wait_for(
        client,
        "document.getElementById('search-out').textContent.indexOf('沪B54321: paid on B-08') === 0",
    )
    .await;

    // A violation on the unpaid space; the paid vehicle on its own space is no violation.
    client
        .find(Locator::Css(
            r#"#spaces tr[data-code="B-07"] button.ticket"#,
        ))
        .await
        .expect("the unpaid space's button")
        .click()
        .await
        .expect("ticket B-07");
    set_value(client, "v-plate", "沪C99999").await;
    set_value(client, "v-note", "no payment shown").await;
    submit(client, "violation-form").await;
    wait_for(
        client,
        "document.getElementById('v-out').textContent.indexOf('Violation recorded for 沪C99999 on B-07') === 0",
    )
    .await;
    screenshot(client, "09-warden-violation.png").await;
    client
        .execute(
            "var s = document.getElementById('v-space');              s.value = Array.from(s.options).filter(function (o) { return o.text === 'B-08'; })[0].value;",
            vec![],
        )
        .await
        .expect("pick B-08");
    set_value(client, "v-plate", "沪B54321").await;
    submit(client, "violation-form").await;
    wait_for(
        client,
        "document.getElementById('v-out').textContent.indexOf('has paid for this space') > 0",
    )
    .await;

    // Offline: the driver's proof is checked on this device alone; a forged one is refused.
    set_offline(client, true).await;
    set_value(client, "proof-in", proof).await;
    submit(client, "verify-form").await;
    wait_for(
        client,
        "document.getElementById('verify-verdict').textContent.indexOf('VALID: this driver has paid') === 0",
    )
    .await;
    let facts = text(client, "verify-facts").await;
    assert!(facts.contains("B-07 · Jing'an Temple"), "{facts}");
    assert!(facts.contains("沪A12345"), "{facts}");
    client
        .execute(
            "document.getElementById('w-verify').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the check");
    screenshot(client, "10-proof-offline.png").await;
    set_value(client, "proof-in", &with_plate(proof, "沪C99999")).await;
    submit(client, "verify-form").await;
    wait_for(
        client,
        "document.getElementById('verify-verdict').textContent.indexOf('NOT VALID: the signature does not match') === 0",
    )
    .await;
    assert_eq!(
        text(client, "verify-facts").await,
        "",
        "no claims of a forgery"
    );
    screenshot(client, "11-proof-forged.png").await;
    set_value(client, "proof-in", "not.a-proof").await;
    submit(client, "verify-form").await;
    wait_for(
        client,
        "document.getElementById('verify-verdict').textContent.indexOf('not a qrpark proof') > 0",
    )
    .await;
    set_offline(client, false).await;

    // A space's code opened by a signed-in warden: the space's enforcement view.
    client
        .goto(&format!("{base}/q/{}?lang=en", spaces[1].1))
        .await
        .expect("open the paid space's code");
    wait_for(client, "!document.getElementById('enforce').hidden").await;
    wait_for(
        client,
        "document.getElementById('enforce-plate').textContent === '沪B54321'",
    )
    .await;
    assert_eq!(text(client, "enforce-status").await, "Paid");
    assert!(
        client
            .execute("return document.getElementById('park').hidden", vec![])
            .await
            .unwrap()
            == Value::Bool(true),
        "the driver's controls give way"
    );
    screenshot(client, "12-warden-scan.png").await;
}
