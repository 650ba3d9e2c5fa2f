//! The pure domain: values and rules with no I/O, no HTTP and no database.

pub mod audit;
pub mod currency;
pub mod idempotency_key;
pub mod ledger;
pub mod lot;
pub mod money;
pub mod plate;
pub mod proof;
pub mod qr_token;
pub mod session;
pub mod space;
pub mod tariff;
pub mod text;
pub mod timezone;
