//! qrpark: QR-code parking payment. Drivers scan a signed code on a space and pay with their
//! city identity; operators run lots and tariffs; city auditors export every session.
//!
//! Layout: [`domain`] is pure (no I/O), [`store`] persists through sqlx on SQLite or
//! PostgreSQL, [`http`] serves one module per audience, [`cli`] is the command line.

use std::sync::Arc;

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod identity;
pub mod qr;
pub mod render;
pub mod store;
pub mod telemetry;

pub use http::app;

/// Everything a request handler may need, cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    pub db: store::Db,
    pub config: Arc<config::Config>,
    pub clock: Arc<dyn clock::Clock>,
    pub metrics: telemetry::Metrics,
    /// The keys that sign and verify QR tokens.
    pub keys: Arc<qr::keyring::KeyRing>,
}
