//! Who is calling: operator API keys (city identity tokens come with driver sessions).

pub mod operator_key;
