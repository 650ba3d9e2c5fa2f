//! The audit chain: each event's hash covers the previous event's hash and the event's
//! canonical encoding, so altering, removing, reordering or inserting an event breaks every
//! hash after it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// JSON with object keys sorted at every level and no insignificant whitespace, so that the
/// same data always encodes to the same bytes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_canonical(value, &mut out);
    out
}

fn write_string(text: &str, out: &mut String) {
    // serde_json escapes exactly as JSON requires; plain text (the common case) is copied.
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Value::String(text.to_owned()).to_string());
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// An instant as the chain writes it: RFC 3339, UTC, microseconds, `Z`.
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// SHA-256 of the previous hash followed by the canonical bytes.
pub fn chain_hash(prev: &[u8; 32], canonical: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical.as_bytes());
    hasher.finalize().into()
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub entity_id: String,
    pub payload: Value,
}

impl Event {
    /// The bytes the chain hashes.
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::json!({
            "seq": self.seq,
            "at": instant(self.at),
            "kind": self.kind,
            "entity_id": self.entity_id,
            "payload": self.payload,
        }))
    }

    /// This event's hash after `prev`.
    pub fn hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        chain_hash(prev, &self.canonical())
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Parses lower- or upper-case hex of exactly 32 bytes.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_strings_are_escaped_as_json() {
        let value = json!({"q\"uote": "line\nbreak", "é": "ü\\", "plain": "A-1"});
        let text = canonical_json(&value);
        assert_eq!(text, r#"{"plain":"A-1","q\"uote":"line\nbreak","é":"ü\\"}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_changed_event_changes_its_hash() {
        let event = Event {
            seq: 1,
            at: DateTime::parse_from_rfc3339("2026-09-29T02:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            kind: "session.stopped".into(),
            entity_id: "s".into(),
            payload: json!({"fee_minor": 2500}),
        };
        let mut altered = event.clone();
        altered.payload = json!({"fee_minor": 2400});
        assert_ne!(event.hash(&GENESIS), altered.hash(&GENESIS));
        assert_ne!(event.hash(&GENESIS), event.hash(&[1; 32]));
        assert_eq!(
            parse_hash(&hex(&event.hash(&GENESIS))),
            Some(event.hash(&GENESIS))
        );
    }
}
