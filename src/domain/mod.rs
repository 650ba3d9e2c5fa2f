//! The pure domain: values and rules with no I/O, no HTTP and no database.

pub mod audit;
pub mod currency;
pub mod idempotency_key;
pub mod json_diff;
pub mod key_purpose;
pub mod keyed_hash;
pub mod ledger;
pub mod lot;
pub mod metrics;
pub mod money;
pub mod plate;
pub mod proof;
pub mod pseudonym;
pub mod qr_token;
pub mod session;
pub mod space;
pub mod space_range;
pub mod tariff;
pub mod text;
pub mod timezone;
