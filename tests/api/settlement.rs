//! Settlements delivered to the city's payment gateway through the outbox: signed,
//! idempotent by reference, retried with backoff, settled or refused into arrears.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::helpers::TestApp;
use crate::sessions::{assert_ledger_balanced, parking_lot, start};

/// A stand-in for the city's payment gateway: answers from a script, records requests.
#[derive(Clone, Default)]
struct Gateway {
    script: Arc<Mutex<Vec<StatusCode>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

impl Gateway {
    async fn start(script: Vec<StatusCode>) -> (Self, String) {
        let gateway = Gateway {
            script: Arc::new(Mutex::new(script)),
            ..Default::default()
        };
        let state = gateway.clone();
        let router = axum::Router::new().route(
            "/settlements",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push((headers, body));
                    let mut script = state.script.lock().unwrap();
                    if script.is_empty() {
                        StatusCode::OK
                    } else {
                        script.remove(0)
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/settlements", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (gateway, url)
    }
}

async fn deliver_round(app: &TestApp) -> usize {
    qrpark::settlement::outbox::run_once(&app.state, &reqwest::Client::new())
        .await
        .unwrap()
}

/// Parks for two hours (25.00) and stops; returns the stop answer's body.
pub(crate) async fn park_and_stop(app: &TestApp) -> serde_json::Value {
    let op = app.operator("Paid").await;
    let (_, spaces) = parking_lot(app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");
    let started = start(app, &driver, "k", &spaces[0].1).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::hours(2));
    let stopped = app.stop(&driver, &id).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    stopped.body
}

async fn delivered_with_retries_and_a_signature(app: TestApp, gateway: Gateway) {
    let stopped = park_and_stop(&app).await;
    assert_eq!(stopped["settlement"]["status"], "pending");
    let reference = stopped["settlement"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = stopped["id"].as_str().unwrap().to_owned();
    let driver = app.driver_token("driver-1");

    // First attempt: the gateway is down (503): still pending, retried after backoff.
    assert_eq!(deliver_round(&app).await, 1);
    let read = app
        .get(&format!("/v1/sessions/{session}"), Some(&driver))
        .await;
    assert_eq!(read.body["settlement"]["status"], "pending");
    // Not yet due again.
    assert_eq!(deliver_round(&app).await, 0);
    app.clock.advance(TimeDelta::seconds(3));
    assert_eq!(deliver_round(&app).await, 1);
    let read = app
        .get(&format!("/v1/sessions/{session}"), Some(&driver))
        .await;
    assert_eq!(
        read.body["settlement"]["status"], "settled",
        "{}",
        read.text
    );
    assert_eq!(deliver_round(&app).await, 0, "nothing left to deliver");

    // Both attempts carried the same reference as idempotency key, and a signature that
    // verifies with qrpark's published JWKS.
    let seen = gateway.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let jwks = app.get("/.well-known/jwks.json", None).await;
    for (headers, body) in &seen {
        assert_eq!(headers["idempotency-key"], reference.as_str());
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["amount"], "25.00");
        assert_eq!(payload["currency"], "CNY");
        assert_eq!(payload["driver"], "driver-1");
        let signature = headers["qrpark-signature"].to_str().unwrap();
        let kid = signature
            .split("kid=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let sig = signature
            .split("sig=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let jwk = jwks.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        let x: [u8; 32] = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
        VerifyingKey::from_bytes(&x)
            .unwrap()
            .verify(body.as_bytes(), &Signature::from_bytes(&sig))
            .expect("the signature verifies");
    }
    let totals = qrpark::store::ledger::totals(&app.db).await.unwrap();
    assert_eq!(totals, vec![("CNY".to_owned(), 2500, 2500)]);
}

async fn refused_payment_becomes_arrears(app: TestApp) {
    let stopped = park_and_stop(&app).await;
    let session = stopped["id"].as_str().unwrap().to_owned();
    assert_eq!(deliver_round(&app).await, 1);
    let driver = app.driver_token("driver-1");
    let read = app
        .get(&format!("/v1/sessions/{session}"), Some(&driver))
        .await;
    assert_eq!(
        read.body["settlement"]["status"], "arrears",
        "{}",
        read.text
    );
    // Never written off: the stop's posting stays, and the refusal moves the fee from
    // gateway clearing to the driver's receivable.
    let totals = qrpark::store::ledger::totals(&app.db).await.unwrap();
    assert_eq!(totals, vec![("CNY".to_owned(), 5000, 5000)]);
    assert_ledger_balanced(&app).await;
    assert_eq!(deliver_round(&app).await, 0);
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn delivered_with_retries_and_a_signature() {
        let (gateway, url) = Gateway::start(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
        let app = TestApp::sqlite_paying(Some(url)).await;
        super::delivered_with_retries_and_a_signature(app, gateway).await;
    }

    #[tokio::test]
    async fn refused_payment_becomes_arrears() {
        let (_gateway, url) = Gateway::start(vec![StatusCode::UNPROCESSABLE_ENTITY]).await;
        let app = TestApp::sqlite_paying(Some(url)).await;
        super::refused_payment_becomes_arrears(app).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn delivered_with_retries_and_a_signature() {
        let (gateway, url) = Gateway::start(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
        if let Some(app) = TestApp::postgres_paying(Some(url)).await {
            super::delivered_with_retries_and_a_signature(app, gateway).await;
        }
    }

    #[tokio::test]
    async fn refused_payment_becomes_arrears() {
        let (_gateway, url) = Gateway::start(vec![StatusCode::UNPROCESSABLE_ENTITY]).await;
        if let Some(app) = TestApp::postgres_paying(Some(url)).await {
            super::refused_payment_becomes_arrears(app).await;
        }
    }
}
