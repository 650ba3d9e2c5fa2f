//! The payment gateway is reached without following redirects and without a proxy, and
//! what a failed delivery leaves behind (the settlement's `last_error`, the audit chain, the
//! log) never holds the gateway URL, which may carry credentials.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::TimeDelta;
use qrpark::settlement::outbox;

use crate::helpers::TestApp;
use crate::money::{lot_of, park_two_hours};

/// A server counting the requests it gets, answering each with `status` and `location`.
async fn server(status: StatusCode, location: Option<String>) -> (Arc<Mutex<usize>>, String) {
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        let location = location.clone();
        async move {
            *counted.lock().unwrap() += 1;
            let mut response = axum::response::Response::new(axum::body::Body::empty());
            *response.status_mut() = status;
            if let Some(location) = location {
                response
                    .headers_mut()
                    .insert("location", location.parse().unwrap());
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/settlements", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (hits, url)
}

/// Parks for two hours and stops: one settlement waits in the outbox.
async fn one_pending_settlement(app: &TestApp) {
    let op = app.operator("Paid").await;
    let qr = lot_of(app, &op, &["A-1"]).await;
    let driver = app.driver_token("driver-1");
    let stopped = park_two_hours(app, &driver, "k", &qr[0]).await;
    assert_eq!(stopped["settlement"]["status"], "pending");
}

async fn deliver_round(app: &TestApp) -> usize {
    let client = outbox::gateway_client().expect("the gateway client builds");
    outbox::run_once(&app.state, &client).await.unwrap()
}

async fn settlement_row(app: &TestApp) -> (String, Option<String>) {
    let sql = "select status, last_error from settlement";
    match &app.db {
        qrpark::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        qrpark::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .expect("one settlement")
}

async fn a_redirect_is_retried_never_followed(app: TestApp, elsewhere: Arc<Mutex<usize>>) {
    one_pending_settlement(&app).await;
    assert_eq!(deliver_round(&app).await, 1);
    assert_eq!(*elsewhere.lock().unwrap(), 0, "the redirect was followed");
    let (status, error) = settlement_row(&app).await;
    assert_eq!(
        status, "pending",
        "a redirect is no refusal: the ledger stays"
    );
    assert_eq!(
        error.as_deref(),
        Some("gateway answered 307 Temporary Redirect")
    );
}

async fn failures_are_recorded_without_the_url(app: TestApp) {
    one_pending_settlement(&app).await;
    assert_eq!(deliver_round(&app).await, 1);
    let (status, error) = settlement_row(&app).await;
    assert_eq!(status, "pending");
    let error = error.expect("the failure is recorded");
    assert_eq!(
        error,
        "gateway unreachable: could not connect (connection refused)"
    );
    // Every retry fails the same way, until the outbox gives up (review) and says so in the
    // chain.
    for _ in 0..outbox::MAX_ATTEMPTS {
        app.clock.advance(TimeDelta::hours(1));
        deliver_round(&app).await;
    }
    let (status, error) = settlement_row(&app).await;
    assert_eq!(status, "review");
    let failed = app.audit_payloads("settlement.review").await;
    assert_eq!(failed.len(), 1);
    for text in [error.unwrap(), failed[0].to_string()] {
        assert!(text.contains("could not connect"), "{text}");
        for secret in ["s3cret", "collector", "127.0.0.1", "settlements"] {
            assert!(!text.contains(secret), "`{secret}` leaked into {text}");
        }
    }
}

/// A gateway URL with credentials whose port nothing listens on.
async fn closed_gateway_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://collector:s3cret@127.0.0.1:{port}/settlements")
}

async fn redirecting_gateway() -> (Arc<Mutex<usize>>, String) {
    let (elsewhere, target) = server(StatusCode::OK, None).await;
    let (_, url) = server(StatusCode::TEMPORARY_REDIRECT, Some(target)).await;
    (elsewhere, url)
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn a_redirect_is_retried_never_followed() {
        let (elsewhere, url) = redirecting_gateway().await;
        let app = TestApp::sqlite_paying(Some(url)).await;
        super::a_redirect_is_retried_never_followed(app, elsewhere).await;
    }

    #[tokio::test]
    async fn failures_are_recorded_without_the_url() {
        let app = TestApp::sqlite_paying(Some(closed_gateway_url().await)).await;
        super::failures_are_recorded_without_the_url(app).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn a_redirect_is_retried_never_followed() {
        let (elsewhere, url) = redirecting_gateway().await;
        if let Some(app) = TestApp::postgres_paying(Some(url)).await {
            super::a_redirect_is_retried_never_followed(app, elsewhere).await;
        }
    }

    #[tokio::test]
    async fn failures_are_recorded_without_the_url() {
        if let Some(app) = TestApp::postgres_paying(Some(closed_gateway_url().await)).await {
            super::failures_are_recorded_without_the_url(app).await;
        }
    }
}
