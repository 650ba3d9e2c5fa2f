//! Operator API keys: 256 random bits, shown once, stored only as a SHA-256 hash.

use crate::domain::audit::hex;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked key is easy to recognise in logs and scanners.
pub const PREFIX: &str = "qrpk_";

/// A freshly issued key: the plaintext goes to the operator once, the hash to the database.
pub struct IssuedKey {
    pub plaintext: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedKey(***)")
    }
}

/// Draws a new key from the operating system's random source.
pub fn generate() -> IssuedKey {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source is available");
    let plaintext = format!("{PREFIX}{}", hex(&secret));
    let hash = hash(&plaintext);
    IssuedKey { plaintext, hash }
}

/// The stored form of a presented key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a presented credential could be an operator key at all (saves a database
/// lookup for obvious garbage such as a city identity token sent to the wrong path).
pub fn looks_like_key(key: &str) -> bool {
    key.len() == PREFIX.len() + 64
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_well_formed_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert!(looks_like_key(&a.plaintext));
        assert_eq!(hash(&a.plaintext), a.hash);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn refuses_lookalikes() {
        assert!(!looks_like_key("qrpk_short"));
        assert!(!looks_like_key(&format!("xxxx_{}", "0".repeat(64))));
        assert!(!looks_like_key(&format!("{PREFIX}{}", "G".repeat(64))));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", generate()), "IssuedKey(***)");
    }
}
