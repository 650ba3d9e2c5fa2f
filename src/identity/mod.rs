//! Who is calling: operator API keys, city identity tokens (drivers, auditors), and the
//! development identity provider of `qrpark demo`.

pub mod city;
pub mod demo_idp;
pub mod operator_key;
