//! Money after the stop (docs/money.md) against a double of the city's payment gateway:
//! arrears and paying again, deliveries that give up into review and the payment office's
//! command line, refunds and their races. Every test ends with the books reconciled and
//! the gateway double clean (every request signed, nothing charged twice).

use std::future::Future;

use chrono::TimeDelta;
use qrpark::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, TestOperator};
use crate::sessions::{parking_lot, start};

mod arrears;
pub mod gateway;
mod refunds;
mod review;

pub use gateway::{Gateway, Kind, Reply};

/// The gateway's time to answer in these tests: short, so a timeout costs little, and
/// long enough that a loaded machine does not make an answer in time a timeout.
pub const GATEWAY_TIMEOUT_MS: u64 = 1000;

/// The test configuration with a short gateway timeout.
pub fn fast(config: &mut Config) {
    config.city_payments_timeout_ms = GATEWAY_TIMEOUT_MS;
}

/// Generates, for each `name: tweak`, a test on SQLite and one on PostgreSQL of
/// `async fn name(TestApp, Gateway)`, the app paying to a fresh gateway double.
macro_rules! with_gateway {
    ($($name:ident: $tweak:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let gateway = $crate::money::Gateway::start().await;
                    let url = Some(gateway.url.clone());
                    let app = $crate::helpers::TestApp::sqlite_configured(url, super::$tweak).await;
                    $crate::money::run(app, gateway, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let gateway = $crate::money::Gateway::start().await;
                    let url = Some(gateway.url.clone());
                    if let Some(app) =
                        $crate::helpers::TestApp::postgres_configured(url, super::$tweak).await
                    {
                        $crate::money::run(app, gateway, super::$name).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use with_gateway;

/// Runs `test` with the gateway trusting the app's JWKS, then checks the books and the
/// gateway.
pub async fn run<F, Fut>(app: TestApp, gateway: Gateway, test: F)
where
    F: FnOnce(TestApp, Gateway) -> Fut,
    Fut: Future<Output = ()>,
{
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK, "{}", jwks.text);
    gateway.trust(jwks.body);
    let books = app.books();
    test(app, gateway.clone()).await;
    books.assert_reconcile().await;
    gateway.assert_clean();
}

/// One delivery round of the outbox; returns the attempts made.
pub async fn deliver(app: &TestApp) -> usize {
    qrpark::settlement::outbox::run_once(&app.state, &reqwest::Client::new())
        .await
        .expect("a delivery round")
}

/// A lot of `op` with the spec tariff and these spaces; returns their QR tokens.
pub async fn lot_of(app: &TestApp, op: &TestOperator, codes: &[&str]) -> Vec<String> {
    let (_, spaces) = parking_lot(app, op, codes).await;
    spaces.into_iter().map(|(_, qr)| qr).collect()
}

/// Parks `driver` at `qr` for two hours and stops; returns the stop's answer (25.00 by
/// the spec tariff between 10:00 and 19:00).
pub async fn park_two_hours(app: &TestApp, driver: &str, key: &str, qr: &str) -> Value {
    let started = start(app, driver, key, qr).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().expect("session id").to_owned();
    app.clock.advance(TimeDelta::hours(2));
    let stopped = app.stop(driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    stopped.body
}

/// A POST with an optional `Idempotency-Key` and an optional JSON body.
pub async fn post_keyed(
    app: &TestApp,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut headers = Vec::new();
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    app.call_raw_with(Method::POST, path, token, &headers, bytes)
        .await
}

/// An operator's refund of `amount` for `reason`.
pub async fn refund(
    app: &TestApp,
    op: &TestOperator,
    session: &str,
    key: Option<&str>,
    amount: &str,
    reason: &str,
) -> Answer {
    let path = format!("/v1/operator/sessions/{session}/refunds");
    let body = json!({"amount": amount, "reason": reason});
    post_keyed(app, &path, &op.key, key, Some(body)).await
}

/// Checks that `answer` is the problem `code` with `status`.
#[track_caller]
pub fn assert_problem(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.problem_code(), code, "{}", answer.text);
}

/// The driver's view of a session.
pub async fn session_view(app: &TestApp, driver: &str, session: &str) -> Value {
    let read = app
        .get(&format!("/v1/sessions/{session}"), Some(driver))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    read.body
}

/// Prints the books: debits and credits per currency, each account's balance against
/// what the states say, and fails on any discrepancy.
pub async fn print_reconciliation(label: &str, db: &qrpark::store::Db) {
    let books = qrpark::store::ledger::reconcile(db)
        .await
        .expect("reconcile the books");
    let mut out = format!("--- reconciliation: {label} ---\n");
    for (currency, debits, credits) in &books.totals {
        out.push_str(&format!(
            "  {currency}: debits {debits}, credits {credits}\n"
        ));
    }
    for a in &books.accounts {
        out.push_str(&format!(
            "  {} ({}): balance {} expected {}{}\n",
            a.account,
            a.currency,
            a.balance,
            a.expected,
            if a.balance == a.expected {
                ""
            } else {
                "  <-- MISMATCH"
            }
        ));
    }
    eprintln!("{out}");
    let problems = books.problems();
    assert!(problems.is_empty(), "{label}: {problems:#?}");
}
