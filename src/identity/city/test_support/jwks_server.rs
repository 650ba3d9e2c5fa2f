//! A stub JWKS endpoint on 127.0.0.1 that counts its requests and answers what the test
//! publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::{AUDIENCE, ISSUER, clock};
use crate::identity::city::{CityVerifier, JwksSource};

/// A running stub endpoint.
pub struct JwksServer {
    /// Where it serves the JWKS.
    pub url: String,
    hits: Arc<AtomicUsize>,
    body: Arc<std::sync::Mutex<(u16, String)>>,
    cache_control: Arc<std::sync::Mutex<Option<String>>>,
}

impl JwksServer {
    /// Serves `body` with status 200 at `/jwks.json` until the test ends.
    pub async fn start(body: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(std::sync::Mutex::new((200, body.to_string())));
        let cache_control = Arc::new(std::sync::Mutex::new(None::<String>));
        let handler = {
            let (hits, body, cache_control) = (hits.clone(), body.clone(), cache_control.clone());
            move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let (status, body) = body.lock().unwrap().clone();
                let cache_control = cache_control.lock().unwrap().clone();
                async move {
                    let mut response = axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    ));
                    if let Some(value) = cache_control {
                        response.headers_mut().insert(
                            "cache-control",
                            axum::http::HeaderValue::from_str(&value).unwrap(),
                        );
                    }
                    response
                }
            }
        };
        let app = axum::Router::new().route("/jwks.json", axum::routing::get(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://127.0.0.1:{port}/jwks.json"),
            hits,
            body,
            cache_control,
        }
    }

    /// Sends `Cache-Control: value` from now on (`None`: no such header).
    pub fn cache_control(&self, value: Option<&str>) {
        *self.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// How many requests it answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Answers `status` and `body` from now on.
    pub fn publish(&self, status: u16, body: String) {
        *self.body.lock().unwrap() = (status, body);
    }

    /// A verifier whose source is this endpoint, read through the setting's URL rules.
    pub async fn verifier(&self) -> CityVerifier {
        self.verifier_on(clock()).await
    }

    /// The same, on the test's clock.
    pub async fn verifier_on(&self, clock: Arc<crate::clock::ManualClock>) -> CityVerifier {
        let source = JwksSource::from_setting(&self.url).unwrap();
        CityVerifier::new(source, ISSUER.into(), AUDIENCE.into(), clock)
            .await
            .unwrap()
    }
}
