//! qrpark: QR-code parking payment. Drivers scan a signed code on a space and pay with their
//! city identity; operators run lots and tariffs; city auditors export every session.
//!
//! Layout: [`domain`] is pure (no I/O), [`store`] persists through sqlx on SQLite or
//! PostgreSQL, [`http`] serves one module per audience, [`cli`] is the command line.

use std::sync::Arc;

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod identity;
pub mod qr;
pub mod render;
pub mod secrets;
pub mod sessions;
pub mod settlement;
pub mod store;
pub mod telemetry;

pub use http::app;

/// Everything a request handler may need, cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read that must not lag.
    pub db: store::Db,
    /// Where reads that may lag go: a read replica while it is fresh, else the primary
    /// (`QRPARK_DATABASE_READ_URL`; docs/operations.md, "Read replica").
    pub reads: store::reads::Reads,
    pub config: Arc<config::Config>,
    pub clock: Arc<dyn clock::Clock>,
    pub metrics: telemetry::Metrics,
    /// The keys that sign and verify QR tokens.
    pub keys: Arc<qr::keyring::KeyRing>,
    /// Verifies city identity tokens (drivers, auditors); `None` in offline tools, where
    /// driver routes answer 401.
    pub city: Option<Arc<identity::city::CityVerifier>>,
    /// The development identity provider: only under `qrpark demo` (and tests).
    pub demo_idp: Option<Arc<identity::demo_idp::DemoIdp>>,
    /// Where settlements are delivered (`QRPARK_CITY_PAYMENTS_URL`); `None` settles at once
    /// against the ledger.
    pub payments_url: Option<String>,
    /// The key of the keyed hash by which the audit chain commits to plates.
    pub plate_key: Arc<[u8; 32]>,
    /// Rate limits and the request deadline.
    pub limits: Arc<http::limits::Limits>,
    /// The key of the keyed hash that shows operators a pseudonym of each driver.
    pub pseudonym_key: Arc<[u8; 32]>,
    /// Sign-in attempts to the operator console, per client address.
    pub sign_in_limiter: Arc<http::console::limiter::SignInLimiter>,
    /// Spaces, lots and tariffs as the public reads and starts see them, kept per process
    /// and invalidated across processes within a second (`store::cache`).
    pub cache: Arc<store::cache::PublicCache>,
}

impl AppState {
    /// The same state, trusting `verifier` for city identities (and offering `demo_idp`);
    /// both should read the state's clock, so that token times and the app agree.
    pub fn with_city(
        mut self,
        verifier: identity::city::CityVerifier,
        demo_idp: Option<identity::demo_idp::DemoIdp>,
    ) -> Self {
        self.city = Some(Arc::new(verifier));
        self.demo_idp = demo_idp.map(Arc::new);
        self
    }
}
