//! HMAC-SHA256 (RFC 2104): how qrpark commits to a value without revealing it, under a
//! server secret (plates in the audit chain, drivers' pseudonyms for operators).

use sha2::{Digest, Sha256};

/// HMAC-SHA256 of `message` under a 32-byte key (shorter than the block, so used as is).
pub fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    padded[..key.len()].copy_from_slice(key);
    let inner_key: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let outer_key: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_key)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_key)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::hex;

    #[test]
    fn matches_rfc_4231() {
        // Test case 1's key is 20 bytes of 0x0b: zero-padded to 32 it is the same HMAC key.
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(
            hex(&hmac_sha256(&key, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
