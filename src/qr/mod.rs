//! Signed QR codes: the key ring that signs and verifies tokens, and each space's code.

pub mod codes;
pub mod keyring;
pub mod resolve;
