//! The pure domain: values and rules with no I/O, no HTTP and no database.

pub mod currency;
pub mod lot;
pub mod qr_token;
pub mod space;
pub mod text;
pub mod timezone;
