//! The audit chain: each event's hash covers the previous event's hash and the event's
//! canonical encoding, so altering, removing, reordering or inserting an event breaks every
//! hash after it.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
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

/// Appends `text` as a JSON string, escaped exactly as [`canonical_json`] escapes it.
pub fn write_string(text: &str, out: &mut String) {
    // serde_json escapes exactly as JSON requires: control characters, `"` and `\`, and
    // nothing else (not DEL, not multibyte characters, whose bytes are all above 0x7f).
    // Text without those (the common case, plates like `沪A12345` included) is copied
    // without allocating.
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
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
    let mut out = String::with_capacity(27);
    write_instant(at, &mut out);
    out
}

/// Appends [`instant`]'s form of `at` (digits written directly: exports write millions).
pub fn write_instant(at: DateTime<Utc>, out: &mut String) {
    let (year, micros) = (at.year(), at.timestamp_subsec_micros());
    if !(0..=9999).contains(&year) || micros >= 1_000_000 {
        // Far years and leap seconds: chrono's own formatting.
        out.push_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true));
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    for (value, end, width) in [
        (year as u32, 4, 4),
        (at.month(), 7, 2),
        (at.day(), 10, 2),
        (at.hour(), 13, 2),
        (at.minute(), 16, 2),
        (at.second(), 19, 2),
        (micros, 26, 6),
    ] {
        let mut rest = value;
        for slot in text[end - width..end].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&text).expect("ASCII digits"));
}

/// Whether `text` is exactly what [`canonical_json`] writes for the JSON it holds, so it can
/// be embedded as it is. Conservative: anything it cannot prove canonical (escaped keys,
/// numbers other than integers, deep nesting) is `false`, and the caller re-encodes it.
pub fn is_canonical(text: &str) -> bool {
    let mut scan = Scan {
        bytes: text.as_bytes(),
        at: 0,
    };
    scan.value(0) && scan.at == scan.bytes.len()
}

/// A cursor over JSON text that accepts only the canonical form.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    const MAX_DEPTH: usize = 64;

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += usize::from(matched);
        matched
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let matched = self.bytes[self.at..].starts_with(word);
        self.at += if matched { word.len() } else { 0 };
        matched
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > Self::MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            // Keys must be plain (no escapes) and strictly increasing: sorted, no duplicates.
            let Some((key, plain)) = self.string() else {
                return false;
            };
            if !plain || previous.is_some_and(|p| p >= key) {
                return false;
            }
            previous = Some(key);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A string escaped as serde_json escapes it: its raw content and whether it had no
    /// escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        let bytes = self.bytes;
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let mut plain = true;
        loop {
            let byte = *bytes.get(self.at)?;
            self.at += 1;
            match byte {
                b'"' => return Some((&bytes[start..self.at - 1], plain)),
                0..=0x1f => return None,
                b'\\' => {
                    plain = false;
                    match *bytes.get(self.at)? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            // Only control characters without a short form, in lower case.
                            let hex = bytes.get(self.at + 1..self.at + 5)?;
                            let short = [0x08, 0x09, 0x0a, 0x0c, 0x0d];
                            let ok = hex[..2] == *b"00"
                                && matches!(hex[2], b'0' | b'1')
                                && matches!(hex[3], b'0'..=b'9' | b'a'..=b'f')
                                && !short.contains(
                                    &u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?,
                                );
                            if !ok {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                _ => {}
            }
        }
    }

    /// An integer as serde_json prints one: no leading zeros, no `-0`, within i64 or u64.
    fn integer(&mut self) -> bool {
        let start = self.at;
        self.eat(b'-');
        let digits = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        let body = &self.bytes[digits..self.at];
        if body.is_empty() || (body[0] == b'0' && (body.len() > 1 || text[0] == b'-')) {
            return false;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return false;
        }
        let text = std::str::from_utf8(text).unwrap_or("x");
        text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
    }
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

/// The chain's head: the last sealed event's number and hash (0 and [`GENESIS`] before the
/// first), and the latest instant the chain has shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
    pub at: Option<DateTime<Utc>>,
}

/// An event a change wrote, waiting to be sealed into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Its place in the order events were written (`audit_pending.id`).
    pub id: i64,
    /// When the change happened, by the clock of the process that made it.
    pub at: DateTime<Utc>,
    pub kind: String,
    pub entity_id: String,
    pub payload: Value,
}

/// A pending event linked into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub pending_id: i64,
    pub event: Event,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Links `pending`, in the order given (the order the events were written), after `head`:
/// each takes the next number and a hash over the previous one, and its instant is never
/// earlier than the one before it, whatever the writers' clocks said. Returns the sealed
/// events and the new head (`head` itself for an empty batch).
pub fn seal(head: &Head, pending: Vec<Pending>) -> (Vec<Sealed>, Head) {
    let mut next = head.clone();
    let sealed = pending
        .into_iter()
        .map(|p| {
            let at = match next.at {
                Some(latest) if latest > p.at => latest,
                _ => p.at,
            };
            let event = Event {
                seq: next.seq + 1,
                at,
                kind: p.kind,
                entity_id: p.entity_id,
                payload: p.payload,
            };
            let prev_hash = next.hash;
            let hash = event.hash(&prev_hash);
            next = Head {
                seq: event.seq,
                hash,
                at: Some(at),
            };
            Sealed {
                pending_id: p.id,
                event,
                prev_hash,
                hash,
            }
        })
        .collect();
    (sealed, next)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    write_hex(bytes, &mut out);
    out
}

/// Appends lower-case hex.
pub fn write_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Parses lower- or upper-case hex of exactly 32 bytes.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
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

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pending(id: i64, when: &str) -> Pending {
        Pending {
            id,
            at: at(when),
            kind: "session.started".into(),
            entity_id: format!("s{id}"),
            payload: json!({"n": id, "plate_hmac": null}),
        }
    }

    const GENESIS_HEAD: Head = Head {
        seq: 0,
        hash: GENESIS,
        at: None,
    };

    #[test]
    fn a_sealed_batch_links_every_event_to_the_one_before() {
        let batch = vec![
            pending(3, "2026-09-29T02:00:00Z"),
            pending(7, "2026-09-29T02:00:01Z"),
            pending(8, "2026-09-29T02:00:02Z"),
        ];
        let (sealed, head) = seal(&GENESIS_HEAD, batch.clone());
        // Numbers follow on from the head whatever the pending ids, in the order given.
        assert_eq!(
            sealed
                .iter()
                .map(|s| (s.pending_id, s.event.seq))
                .collect::<Vec<_>>(),
            vec![(3, 1), (7, 2), (8, 3)]
        );
        let mut prev = GENESIS;
        for (s, p) in sealed.iter().zip(&batch) {
            assert_eq!(s.prev_hash, prev);
            assert_eq!(
                s.hash,
                s.event.hash(&prev),
                "the hash an auditor recomputes"
            );
            assert_eq!(
                (&s.event.kind, &s.event.payload, s.event.at),
                (&p.kind, &p.payload, p.at)
            );
            prev = s.hash;
        }
        assert_eq!(
            head,
            Head {
                seq: 3,
                hash: prev,
                at: Some(at("2026-09-29T02:00:02Z"))
            }
        );
    }

    #[test]
    fn sealing_in_batches_makes_the_chain_one_batch_makes() {
        let events: Vec<Pending> = (1..=10)
            .map(|i| pending(i * 2, &format!("2026-09-29T02:00:{i:02}Z")))
            .collect();
        let (whole, whole_head) = seal(&GENESIS_HEAD, events.clone());
        let (first, middle) = seal(&GENESIS_HEAD, events[..4].to_vec());
        let (rest, head) = seal(&middle, events[4..].to_vec());
        assert_eq!([first, rest].concat(), whole);
        assert_eq!(head, whole_head);
        // An empty batch leaves the head as it was.
        let (none, same) = seal(&head, Vec::new());
        assert!(none.is_empty());
        assert_eq!(same, head);
    }

    #[test]
    fn the_chain_clock_never_runs_backwards() {
        // The head already shows 02:00:05; the batch was written by processes whose clocks
        // disagree.
        let head = Head {
            seq: 41,
            hash: [7; 32],
            at: Some(at("2026-09-29T02:00:05Z")),
        };
        let batch = vec![
            pending(1, "2026-09-29T02:00:03Z"),
            pending(2, "2026-09-29T02:00:09Z"),
            pending(3, "2026-09-29T02:00:08Z"),
        ];
        let (sealed, head) = seal(&head, batch);
        let ats: Vec<_> = sealed.iter().map(|s| s.event.at).collect();
        assert_eq!(
            ats,
            vec![
                at("2026-09-29T02:00:05Z"),
                at("2026-09-29T02:00:09Z"),
                at("2026-09-29T02:00:09Z")
            ]
        );
        assert_eq!(sealed[0].prev_hash, [7; 32]);
        assert_eq!(sealed[0].event.seq, 42);
        assert_eq!(head.at, Some(at("2026-09-29T02:00:09Z")));
    }

    #[test]
    fn canonical_text_is_recognised_and_anything_else_is_not() {
        for canonical in [
            r#"{"a":{"c":"x","d":[1,{"y":-1,"z":0}]},"b":true,"c":null,"d":false}"#,
            r#"{"":"","a":1}"#,
            r#"["line\nbreak","tab\t","\u0001\u001f","ü€","\"\\"]"#,
            r#"18446744073709551615"#,
            r#"-9223372036854775808"#,
            "{}",
            "[]",
        ] {
            assert!(is_canonical(canonical), "{canonical}");
            let value: Value = serde_json::from_str(canonical).unwrap();
            assert_eq!(canonical_json(&value), canonical);
        }
        for other in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":1}
"#,
            r#"{"a\u0062":1}"#,
            r#"["\/"]"#,
            r#"["\u0041"]"#,
            r#"["\u001F"]"#,
            r#"["\u000a"]"#,
            r#"[1.0]"#,
            r#"[1e3]"#,
            r#"[-0]"#,
            r#"[01]"#,
            r#"[18446744073709551616]"#,
            r#"{"a":1"#,
            r#"["a"#,
            r#"tru"#,
            "",
        ] {
            assert!(!is_canonical(other), "{other}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!is_canonical(&deep));
    }

    /// Arbitrary JSON; with `floats`, numbers may be floats and keys may need escapes (which
    /// the scanner never proves canonical: such values are re-encoded).
    fn json_value(floats: bool) -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let float_or_int = if floats {
            (-1e6f64..1e6).prop_map(|f| json!(f)).boxed()
        } else {
            any::<i32>().prop_map(|n| json!(n)).boxed()
        };
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            float_or_int,
            "\\PC{0,6}|[\\x00-\\x1f\"\\\\/]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(
                    if floats {
                        "[a-c\"é]{0,3}"
                    } else {
                        "[a-cé]{0,3}"
                    },
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(
            text in "\\PC{0,8}|[\\x00-\\x20\"\\\\/\\x7f\u{80}\u{a0}é中沪\u{2028}\u{1f697}]{0,8}",
        ) {
            let mut out = String::new();
            write_string(&text, &mut out);
            proptest::prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn canonical_json_is_always_recognised(value in json_value(false)) {
            proptest::prop_assert!(is_canonical(&canonical_json(&value)));
        }

        /// What the scanner accepts is exactly what re-encoding would write, so embedding
        /// it as it is changes no hash.
        #[test]
        fn accepted_text_is_its_own_canonical_form(value in json_value(true), pretty: bool) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            if is_canonical(&text) {
                let parsed: Value = serde_json::from_str(&text).unwrap();
                proptest::prop_assert_eq!(canonical_json(&parsed), text);
            }
        }

        #[test]
        fn instants_are_written_as_chrono_writes_them(
            seconds in -62_000_000_000i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            proptest::prop_assert_eq!(instant(at), at.to_rfc3339_opts(SecondsFormat::Micros, true));
        }
    }
}
