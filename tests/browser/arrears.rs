//! Money after the stop on the phone page, with a real HTTP gateway double: park, stop, the
//! gateway refuses (422) -> the receipt says so and the arrears come up -> a start is
//! refused (402 `arrears_outstanding`) with the arrears shown -> *Pay* -> sent -> the
//! gateway accepts -> paid -> the start goes through. Then the same in Chinese. The test
//! runs the outbox itself (`run_once`), so nothing waits on a timer but the page's own
//! 3-second follow-up of a payment on its way.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::TimeDelta;
use fantoccini::{Client, Locator};
use qrpark::clock::{Clock, ManualClock};
use serde_json::{Value, json};

use crate::{
    TempDir, chromedriver, click, click_css, connect, screenshot, set_value, start_app_with,
    start_driver, text, wait_for,
};

/// The city's payment gateway: refuses a payment with 422 when told to, accepts otherwise;
/// counts what it was sent.
#[derive(Clone, Default)]
struct Gateway {
    refuse_next: Arc<Mutex<bool>>,
    payments: Arc<Mutex<Vec<Value>>>,
}

impl Gateway {
    async fn start() -> (Self, String) {
        let gateway = Gateway::default();
        let state = gateway.clone();
        let router = axum::Router::new().route(
            "/settlements",
            axum::routing::post(move |body: String| {
                let state = state.clone();
                async move {
                    let payment: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    state.payments.lock().unwrap().push(payment);
                    let mut refuse = state.refuse_next.lock().unwrap();
                    if std::mem::take(&mut *refuse) {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway");
        let url = format!(
            "http://{}/settlements",
            listener.local_addr().expect("gateway address")
        );
        tokio::spawn(async move { axum::serve(listener, router).await.expect("gateway") });
        (gateway, url)
    }

    fn refuse_next(&self) {
        *self.refuse_next.lock().unwrap() = true;
    }
}

/// One delivery round of the outbox; asserts it made `attempts` attempts.
async fn deliver(state: &qrpark::AppState, attempts: usize) {
    let made = qrpark::settlement::outbox::run_once(state, &reqwest::Client::new())
        .await
        .expect("deliver");
    assert_eq!(made, attempts, "delivery attempts");
}

async fn hidden(client: &Client, id: &str) -> bool {
    client
        .execute(
            "return document.getElementById(arguments[0]).hidden",
            vec![json!(id)],
        )
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        == Value::Bool(true)
}

/// The one arrears item's text and the panel's total.
async fn arrears_shown(client: &Client) -> (String, String) {
    wait_for(
        client,
        "!document.getElementById('arrears').hidden && document.querySelectorAll('#arrears-list li').length === 1",
    )
    .await;
    let item = client
        .find(Locator::Css("#arrears-list li p"))
        .await
        .expect("an arrears item")
        .text()
        .await
        .expect("its text");
    (item, text(client, "arrears-total").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_is_shown_as_arrears_and_paid_from_the_phone_page() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let (gateway, payments_url) = Gateway::start().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let data = TempDir::new("browser-arrears-db");
    let profile = TempDir::new("browser-arrears-profile");
    let (base, spaces, _, state) =
        start_app_with(&data, Some(payments_url), Some(clock.clone())).await;
    let driver = start_driver(&chromedriver);
    let client = connect(&driver, &profile).await;

    // English: park on B-07 for 20 minutes (past the grace: a fee) and stop. (The demo
    // sign-in lasts an hour on the manual clock: the test moves it 40 minutes in all.)
    client
        .goto(&format!("{base}/q/{}", spaces[0].1))
        .await
        .expect("open B-07");
    wait_for(&client, "document.getElementById('signin-btn')").await;
    click(&client, "signin-btn").await;
    wait_for(&client, "!document.getElementById('ready').hidden").await;
    assert!(hidden(&client, "arrears").await, "nothing owed yet");
    set_value(&client, "plate", "沪A12345").await;
    click(&client, "start-btn").await;
    wait_for(&client, "!document.getElementById('live').hidden").await;
    clock.advance(TimeDelta::minutes(20));
    click(&client, "stop-btn").await;
    wait_for(&client, "!document.getElementById('receipt').hidden").await;
    assert!(
        text(&client, "receipt-settlement")
            .await
            .contains("being processed")
    );
    let total = text(&client, "receipt-total").await;
    let amount = total.trim_start_matches('¥').to_owned();
    assert_ne!(amount, "0.00", "a fee past the grace");
    let reference = text(&client, "receipt-ref").await;

    // The gateway refuses: the receipt says so, and the arrears come up.
    gateway.refuse_next();
    deliver(&state, 1).await;
    wait_for(
        &client,
        "document.getElementById('receipt-settlement').textContent.indexOf('refused this payment') > 0",
    )
    .await;
    let (item, owed) = arrears_shown(&client).await;
    assert!(item.contains(&format!("{amount} CNY")), "{item}");
    assert!(item.contains(&reference), "{item}");
    let since = clock
        .now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .format("refused %Y-%m-%d %H:%M")
        .to_string();
    assert!(item.contains(&since), "{since:?} in {item}");
    assert_eq!(owed, format!("{amount} CNY"));
    assert_eq!(
        text(&client, "arrears-h").await.trim(),
        "Unpaid parking fees"
    );
    screenshot(&client, "20-arrears.png").await;

    // A new start, on B-08, is refused with the arrears (from the 402's `arrears`).
    client
        .goto(&format!("{base}/q/{}", spaces[1].1))
        .await
        .expect("open B-08");
    arrears_shown(&client).await;
    client
        .execute(
            "document.getElementById('arrears').hidden = true; \
             document.getElementById('arrears-list').textContent = '';",
            vec![],
        )
        .await
        .expect("forget the arrears shown after sign-in");
    set_value(&client, "plate", "沪A12345").await;
    click(&client, "start-btn").await;
    wait_for(
        &client,
        "document.getElementById('alert').textContent.indexOf('You have unpaid parking fees') === 0",
    )
    .await;
    let (item, owed) = arrears_shown(&client).await;
    assert!(item.contains(&reference), "{item}");
    assert_eq!(
        owed,
        format!("{amount} CNY"),
        "the total, added up on the page"
    );
    assert!(hidden(&client, "live").await, "no session started");
    assert_eq!(
        client
            .execute("return document.activeElement.id", vec![])
            .await
            .expect("focus"),
        "arrears-h",
        "the arrears get the focus"
    );
    assert_eq!(
        client
            .find(Locator::Css("#arrears-list button.pay"))
            .await
            .expect("pay button")
            .text()
            .await
            .expect("its text"),
        format!("Pay {amount} CNY")
    );
    screenshot(&client, "21-start-refused.png").await;

    // Pay: sent (pending), then the gateway accepts: paid, and the start goes through.
    click_css(&client, "#arrears-list button.pay").await;
    wait_for(
        &client,
        "document.querySelector('#arrears-list .pay-status').textContent.indexOf('Sent') === 0",
    )
    .await;
    deliver(&state, 1).await;
    wait_for(
        &client,
        "document.querySelector('#arrears-list .pay-status').textContent === 'Paid.'",
    )
    .await;
    assert!(
        text(&client, "arrears-done")
            .await
            .contains("Nothing is owed")
    );
    click(&client, "start-btn").await;
    wait_for(&client, "!document.getElementById('live').hidden").await;
    screenshot(&client, "22-paid-and-parked.png").await;

    // Chinese: the same driver stops on B-08; refused, shown, paid.
    click_css(&client, "nav.lang a").await;
    wait_for(&client, "document.documentElement.lang === 'zh-CN'").await;
    wait_for(&client, "!document.getElementById('live').hidden").await;
    clock.advance(TimeDelta::minutes(20));
    click(&client, "stop-btn").await;
    wait_for(&client, "!document.getElementById('receipt').hidden").await;
    let amount = text(&client, "receipt-total")
        .await
        .trim_start_matches('¥')
        .to_owned();
    let reference = text(&client, "receipt-ref").await;
    gateway.refuse_next();
    deliver(&state, 1).await;
    wait_for(
        &client,
        "document.getElementById('receipt-settlement').textContent.indexOf('城市支付网关拒绝了这笔付款') === 0",
    )
    .await;
    let (item, owed) = arrears_shown(&client).await;
    assert!(item.contains(&format!("{amount} CNY")), "{item}");
    assert!(item.contains(&format!("付款编号 {reference}")), "{item}");
    assert!(item.contains("拒绝于"), "{item}");
    assert_eq!(owed, format!("{amount} CNY"));
    assert_eq!(text(&client, "arrears-h").await.trim(), "未付停车费");
    screenshot(&client, "23-arrears-zh.png").await;
    click_css(&client, "#arrears-list button.pay").await;
    wait_for(
        &client,
        "document.querySelector('#arrears-list .pay-status').textContent.indexOf('已发送') === 0",
    )
    .await;
    deliver(&state, 1).await;
    wait_for(
        &client,
        "document.querySelector('#arrears-list .pay-status').textContent === '已支付。'",
    )
    .await;
    wait_for(
        &client,
        "document.getElementById('receipt-settlement').textContent === '已从您的城市账户扣款。'",
    )
    .await;
    assert!(text(&client, "arrears-done").await.contains("已无欠费"));

    // Four payment requests: refused, paid again, refused, paid again (new rounds).
    let payments = gateway.payments.lock().unwrap().clone();
    let rounds: Vec<&Value> = payments.iter().map(|p| &p["payment_round"]).collect();
    assert_eq!(payments.len(), 4, "{payments:?}");
    assert!(
        rounds[0] != rounds[1] && rounds[2] != rounds[3],
        "{rounds:?}"
    );
    let books = qrpark::store::ledger::reconcile(&state.db)
        .await
        .expect("reconcile");
    assert!(books.problems().is_empty(), "{:#?}", books.problems());
    client.close().await.expect("close the browser");
    drop(driver);
}
