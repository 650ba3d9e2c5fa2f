//! The name an operator knows a driver by: a keyed hash of the driver's city subject and
//! the operator's id under a server secret. Stable for one operator (it can tell a regular
//! from a newcomer, and match a complaint to sessions), different for each operator (two
//! operators cannot join their records), and not reversible without the server secret.

use uuid::Uuid;

use super::audit::write_hex;
use super::keyed_hash::hmac_sha256;

/// Bytes of the keyed hash kept: 128 bits, far beyond any collision among drivers.
const KEPT: usize = 16;

/// The pseudonym `operator` sees for the driver `subject`: `d_` and 32 hex digits.
pub fn pseudonym(key: &[u8; 32], operator: Uuid, subject: &str) -> String {
    // The operator id is fixed-length, so the message splits one way only.
    let mut message = Vec::with_capacity(16 + subject.len());
    message.extend_from_slice(operator.as_bytes());
    message.extend_from_slice(subject.as_bytes());
    let hash = hmac_sha256(key, &message);
    let mut out = String::with_capacity(2 + 2 * KEPT);
    out.push_str("d_");
    write_hex(&hash[..KEPT], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_operator_different_across_operators_and_keys() {
        let key = [3u8; 32];
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let p = pseudonym(&key, a, "driver-42");
        assert_eq!(p, pseudonym(&key, a, "driver-42"));
        assert_eq!(p.len(), 34);
        assert!(p.starts_with("d_") && p[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!p.contains("driver-42"));
        assert_ne!(p, pseudonym(&key, b, "driver-42"));
        assert_ne!(p, pseudonym(&key, a, "driver-43"));
        assert_ne!(p, pseudonym(&[4u8; 32], a, "driver-42"));
    }
}
