//! One record at a time: a stopped session's stored values become a chained CSV or JSONL
//! line. Written straight from the values in key order, with no JSON tree in between: an
//! export writes millions of these. `record_canonical` (used by `audit verify`) is the
//! reference this must agree with, byte for byte.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

use uuid::Uuid;

use super::{COLUMNS, Format};
use crate::domain::audit::{
    canonical_json, chain_hash, is_canonical, write_hex, write_instant, write_string,
};
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::store::export::Stored;

/// A record's keys in sorted order: the order of its canonical form.
const KEYS: [&str; 18] = [
    "audit_hash",
    "audit_seq",
    "currency",
    "driver",
    "ended_at",
    "ended_by",
    "fee",
    "fee_total",
    "lot_id",
    "operator_id",
    "plate",
    "refunded_total",
    "session_id",
    "settlement_reference",
    "settlement_status",
    "space_code",
    "started_at",
    "tariff_version",
];

/// The breakdown travels in JSONL only.
const FEE: usize = 6;

/// A value of a record, before it is written as JSON or as CSV text.
enum Field<'a> {
    Null,
    Int(i64),
    /// Text as stored: escaped for JSON, quoted for CSV where it needs it.
    Text(&'a str),
    /// Text this encoder wrote into its scratch buffer (ids, instants, amounts, hashes):
    /// ASCII that needs no escaping or quoting.
    Ours(Range<usize>),
    /// Canonical JSON, embedded as it is (the fee breakdown).
    Json(Cow<'a, str>),
}

impl Field<'_> {
    fn text(value: Option<&str>) -> Field<'_> {
        value.map_or(Field::Null, Field::Text)
    }

    /// As canonical JSON; in a CSV record's canonical form, as the text the CSV carries.
    fn write_canonical(&self, format: Format, scratch: &str, out: &mut String) {
        match (self, format) {
            (Field::Null, Format::Jsonl) => out.push_str("null"),
            (Field::Null, Format::Csv) => out.push_str("\"\""),
            (Field::Int(n), Format::Jsonl) => write!(out, "{n}").expect("a String takes any write"),
            (Field::Int(n), Format::Csv) => {
                write!(out, "\"{n}\"").expect("a String takes any write");
            }
            (Field::Text(text), _) => write_string(text, out),
            (Field::Ours(range), _) => {
                out.push('"');
                out.push_str(&scratch[range.clone()]);
                out.push('"');
            }
            (Field::Json(json), _) => out.push_str(json),
        }
    }

    /// As a CSV field: nulls empty, quoted when it holds a comma, a quote or a line break.
    fn write_csv(&self, scratch: &str, out: &mut String) {
        match self {
            Field::Null => {}
            Field::Int(n) => write!(out, "{n}").expect("a String takes any write"),
            Field::Text(text) => write_csv_text(text, out),
            Field::Ours(range) => out.push_str(&scratch[range.clone()]),
            Field::Json(text) => write_csv_text(text, out),
        }
    }
}

fn write_csv_text(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Where a CSV column's value comes from.
#[derive(Clone, Copy)]
enum Column {
    Key(usize),
    PrevHash,
    Hash,
}

/// Turns stored sessions into chained lines: `hash = SHA-256(prev_hash || canonical form)`.
pub(super) struct Encoder {
    format: Format,
    prev: [u8; 32],
    count: u64,
    /// Where `hash` and `prev_hash` go among the sorted keys (before these indices).
    hash_before: usize,
    prev_before: usize,
    columns: Vec<Column>,
    /// The last currency seen, parsed (an export is mostly one currency).
    currency: Option<(String, Currency)>,
    /// Reused from record to record: no allocation per record.
    canonical: String,
    scratch: String,
}

impl Encoder {
    pub fn new(format: Format, prev: [u8; 32]) -> Self {
        debug_assert!(KEYS.is_sorted());
        debug_assert_eq!(KEYS[FEE], "fee");
        let before = |chain_key: &str| {
            KEYS.iter()
                .position(|key| *key > chain_key)
                .expect("the chain fields sort before the last key")
        };
        let columns = COLUMNS
            .iter()
            .map(|column| match *column {
                "prev_hash" => Column::PrevHash,
                "hash" => Column::Hash,
                name => Column::Key(
                    KEYS.iter()
                        .position(|key| *key == name)
                        .expect("every CSV column is a record key"),
                ),
            })
            .collect();
        Self {
            format,
            prev,
            count: 0,
            hash_before: before("hash"),
            prev_before: before("prev_hash"),
            columns,
            currency: None,
            canonical: String::with_capacity(1024),
            scratch: String::with_capacity(256),
        }
    }

    /// The records encoded so far and the hash of the last (the chain head).
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.count, self.prev)
    }

    /// The CSV header line (JSONL has none).
    pub fn header(&self) -> Option<String> {
        (self.format == Format::Csv).then(|| format!("{}\n", COLUMNS.join(",")))
    }

    /// Encodes one record, appending its line (newline included) to `out`.
    pub fn line(&mut self, stored: &Stored<'_>, out: &mut String) -> anyhow::Result<()> {
        let format = self.format;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let fields = self.fields(stored, &mut scratch)?;

        // The canonical form: the record's fields in key order, without the chain's own.
        let mut hash_at = 0;
        let mut prev_at = 0;
        let canonical = &mut self.canonical;
        canonical.clear();
        canonical.push('{');
        for (i, (key, value)) in KEYS.iter().zip(&fields).enumerate() {
            if format == Format::Csv && i == FEE {
                continue;
            }
            if canonical.len() > 1 {
                canonical.push(',');
            }
            if i == self.hash_before {
                hash_at = canonical.len();
            }
            if i == self.prev_before {
                prev_at = canonical.len();
            }
            // Keys are plain ASCII identifiers: no escaping to look for.
            canonical.push('"');
            canonical.push_str(key);
            canonical.push_str("\":");
            value.write_canonical(format, &scratch, canonical);
        }
        canonical.push('}');
        let hash = chain_hash(&self.prev, canonical);

        match format {
            Format::Jsonl => {
                // The canonical form with the two chain fields inserted in key order.
                out.push_str(&canonical[..hash_at]);
                out.push_str("\"hash\":\"");
                write_hex(&hash, out);
                out.push_str("\",");
                out.push_str(&canonical[hash_at..prev_at]);
                out.push_str("\"prev_hash\":\"");
                write_hex(&self.prev, out);
                out.push_str("\",");
                out.push_str(&canonical[prev_at..]);
            }
            Format::Csv => {
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match column {
                        Column::Key(key) => fields[*key].write_csv(&scratch, out),
                        Column::PrevHash => write_hex(&self.prev, out),
                        Column::Hash => write_hex(&hash, out),
                    }
                }
            }
        }
        out.push('\n');
        self.scratch = scratch;
        self.prev = hash;
        self.count += 1;
        Ok(())
    }

    /// The record's values, in [`KEYS`] order; what this encoder writes goes to `scratch`.
    fn fields<'a>(
        &mut self,
        s: &Stored<'a>,
        scratch: &mut String,
    ) -> anyhow::Result<[Field<'a>; KEYS.len()]> {
        let currency = match &self.currency {
            Some((code, currency)) if code == s.currency => *currency,
            _ => {
                let currency = Currency::parse(s.currency)?;
                self.currency = Some((s.currency.to_owned(), currency));
                currency
            }
        };
        let mut ours = |write: &dyn Fn(&mut String)| {
            let start = scratch.len();
            write(scratch);
            Field::Ours(start..scratch.len())
        };
        let id = |id: Uuid| {
            move |out: &mut String| {
                out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
            }
        };
        let audit_hash = match &s.audit_hash {
            Some(hash) => ours(&|out| write_hex(hash, out)),
            None => Field::Null,
        };
        let ended_at = match s.ended_at {
            Some(at) => ours(&|out| write_instant(at, out)),
            None => Field::Null,
        };
        let fee_total = ours(&|out| {
            let total = Money::from_minor(s.fee_minor.unwrap_or(0), currency);
            write!(out, "{total}").expect("a String takes any write");
        });
        let lot_id = ours(&id(s.lot_id));
        let operator_id = ours(&id(s.operator_id));
        let session_id = ours(&id(s.session_id));
        let started_at = ours(&|out| write_instant(s.started_at, out));
        let refunded_total = match s.refunded_minor {
            Some(minor) => ours(&|out| {
                let refunded = Money::from_minor(minor, currency);
                write!(out, "{refunded}").expect("a String takes any write");
            }),
            None => Field::Null,
        };
        let fee = match (self.format, s.fee) {
            (Format::Csv, _) | (_, None) => Field::Null,
            // Stored canonical since the breakdown is written so; older rows are re-encoded.
            (Format::Jsonl, Some(text)) if is_canonical(text) => Field::Json(text.into()),
            (Format::Jsonl, Some(text)) => {
                Field::Json(canonical_json(&serde_json::from_str(text)?).into())
            }
        };
        Ok([
            audit_hash,
            Field::Int(s.audit_seq),
            Field::Text(s.currency),
            Field::Text(s.driver),
            ended_at,
            Field::Text(s.ended_by.as_str()),
            fee,
            fee_total,
            lot_id,
            operator_id,
            Field::text(s.plate),
            refunded_total,
            session_id,
            Field::text(s.settlement_reference),
            Field::text(s.settlement_status),
            Field::Text(s.space_code),
            started_at,
            Field::Int(s.tariff_version),
        ])
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::audit::export::record_canonical;
    use crate::domain::audit::{GENESIS, hex, instant};
    use crate::domain::session::EndedBy;

    /// The record as its definition reads: a JSON object of the stored values, hashed in
    /// canonical form; the JSONL line is its canonical form with the chain fields, the CSV
    /// line its columns. The encoder must write exactly this, however it gets there.
    fn reference(s: &Stored<'_>, format: Format, prev: &[u8; 32]) -> (String, [u8; 32]) {
        let currency = Currency::parse(s.currency).unwrap();
        let mut record = Map::new();
        record.insert("session_id".into(), json!(s.session_id));
        record.insert("operator_id".into(), json!(s.operator_id));
        record.insert("lot_id".into(), json!(s.lot_id));
        record.insert("space_code".into(), json!(s.space_code));
        record.insert("driver".into(), json!(s.driver));
        record.insert("started_at".into(), json!(instant(s.started_at)));
        record.insert("ended_at".into(), json!(s.ended_at.map(instant)));
        record.insert("currency".into(), json!(s.currency));
        let total = Money::from_minor(s.fee_minor.unwrap_or(0), currency);
        record.insert("fee_total".into(), json!(total.to_string()));
        record.insert("tariff_version".into(), json!(s.tariff_version));
        record.insert("settlement_status".into(), json!(s.settlement_status));
        record.insert("settlement_reference".into(), json!(s.settlement_reference));
        record.insert("audit_seq".into(), json!(s.audit_seq));
        record.insert("audit_hash".into(), json!(s.audit_hash.map(|h| hex(&h))));
        record.insert("plate".into(), json!(s.plate));
        let refunded = s
            .refunded_minor
            .map(|minor| Money::from_minor(minor, currency).to_string());
        record.insert("refunded_total".into(), json!(refunded));
        record.insert("ended_by".into(), json!(s.ended_by));
        if format == Format::Jsonl {
            let fee: Value = s
                .fee
                .map_or(Value::Null, |f| serde_json::from_str(f).unwrap());
            record.insert("fee".into(), fee);
        }
        let mut record = Value::Object(record);
        let hash = chain_hash(prev, &record_canonical(&record, format));
        record["prev_hash"] = json!(hex(prev));
        record["hash"] = json!(hex(&hash));
        let line = match format {
            Format::Jsonl => canonical_json(&record),
            Format::Csv => COLUMNS
                .iter()
                .map(|c| {
                    let text = match &record[*c] {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let mut out = String::new();
                    write_csv_text(&text, &mut out);
                    out
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        (format!("{line}\n"), hash)
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,;:\"\\-\n\r\t\u{1}\u{7f}é中]{1,12}"
    }

    /// Plates as qrpark stores them (a province character is three bytes of UTF-8), and
    /// any other text, which the encoder must write as faithfully.
    fn plate() -> impl Strategy<Value = String> {
        prop_oneof!["[沪京粤川]?[A-Z0-9]{2,10}", text()]
    }

    fn ending() -> impl Strategy<Value = EndedBy> {
        proptest::sample::select(EndedBy::ALL)
    }

    /// A stopped session of the demo lot, for the cases written out by hand.
    fn stored<'a>(plate: Option<&'a str>, ended_by: EndedBy) -> Stored<'a> {
        let started_at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        Stored {
            session_id: Uuid::from_u128(1),
            operator_id: Uuid::from_u128(2),
            lot_id: Uuid::from_u128(3),
            space_code: "A-1",
            driver: "driver-1",
            started_at,
            ended_at: Some(started_at + chrono::TimeDelta::hours(1)),
            currency: "CNY",
            fee_minor: Some(1000),
            tariff_version: 1,
            fee: Some(r#"{"total":"10.00"}"#),
            settlement_status: Some("settled"),
            settlement_reference: Some("QP-1"),
            audit_seq: 9,
            audit_hash: Some([0xab; 32]),
            plate,
            ended_by,
            refunded_minor: Some(250),
        }
    }

    fn line(format: Format, stored: &Stored<'_>) -> String {
        let mut line = String::new();
        Encoder::new(format, GENESIS)
            .line(stored, &mut line)
            .unwrap();
        line
    }

    #[test]
    fn the_plate_and_the_ending_sit_in_key_order_and_at_the_end_of_csv() {
        let planned = stored(Some("沪AD12345"), EndedBy::Planned);
        let jsonl = line(Format::Jsonl, &planned);
        assert!(
            jsonl.contains(
                r#""ended_at":"2026-09-21T15:13:20.000000Z","ended_by":"planned","fee":{"#
            ),
            "{jsonl}"
        );
        assert!(
            jsonl.contains(
                r#""operator_id":"00000000-0000-0000-0000-000000000002","plate":"沪AD12345","prev_hash":"#
            ),
            "{jsonl}"
        );
        let record: Value = serde_json::from_str(&jsonl).unwrap();
        assert_eq!(format!("{}\n", canonical_json(&record)), jsonl);
        let csv = line(Format::Csv, &planned);
        let tail = format!(
            ",QP-1,9,{},沪AD12345,planned,{},",
            "ab".repeat(32),
            hex(&GENESIS)
        );
        assert!(csv.contains(&tail), "{csv}");

        // No plate (none given, or erased): null in JSON, an empty cell in CSV.
        let plain = stored(None, EndedBy::MaxStay);
        let jsonl = line(Format::Jsonl, &plain);
        assert!(jsonl.contains(r#""ended_by":"max_stay","#), "{jsonl}");
        assert!(jsonl.contains(r#""plate":null,"prev_hash""#), "{jsonl}");
        let csv = line(Format::Csv, &plain);
        assert!(
            csv.contains(&format!("{},,max_stay,", "ab".repeat(32))),
            "{csv}"
        );
        // Which is not the same record as one with a plate.
        assert_ne!(
            line(Format::Csv, &stored(Some("B123XYZ"), EndedBy::MaxStay)),
            csv
        );
    }

    proptest! {
        #[test]
        fn lines_are_the_records_definition(
            space_code in text(),
            driver in text(),
            reference_text in proptest::option::of(text()),
            status in proptest::option::of(prop_oneof![Just("pending"), Just("settled"), Just("arrears"), Just("review")]),
            fee_minor in proptest::option::of(0i64..10_000_000),
            ended in proptest::option::of(0i64..100_000_000),
            seq in 1i64..i64::MAX,
            hash in proptest::option::of(any::<[u8; 32]>()),
            canonical_fee: bool,
            jsonl: bool,
            plate in proptest::option::of(plate()),
            ended_by in ending(),
            refunded_minor in proptest::option::of(0i64..10_000_000),
        ) {
            let fee_value = json!({"total": "1.50", "lines": [{"rule": driver, "increments": 3}], "currency": "CNY"});
            let fee = if canonical_fee {
                canonical_json(&fee_value)
            } else {
                serde_json::to_string_pretty(&fee_value).unwrap()
            };
            let started_at = DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap();
            let stored = Stored {
                session_id: Uuid::now_v7(),
                operator_id: Uuid::now_v7(),
                lot_id: Uuid::now_v7(),
                space_code: &space_code,
                driver: &driver,
                started_at,
                ended_at: ended.map(|s| started_at + chrono::TimeDelta::seconds(s)),
                currency: "CNY",
                fee_minor,
                tariff_version: 3,
                fee: Some(&fee),
                settlement_status: status,
                settlement_reference: reference_text.as_deref(),
                audit_seq: seq,
                audit_hash: hash,
                plate: plate.as_deref(),
                ended_by,
                refunded_minor,
            };
            let format = if jsonl { Format::Jsonl } else { Format::Csv };
            let mut encoder = Encoder::new(format, GENESIS);
            let mut prev = GENESIS;
            // Two records, so the second links to the first.
            for _ in 0..2 {
                let (expected, hash) = reference(&stored, format, &prev);
                let mut line = String::new();
                encoder.line(&stored, &mut line).unwrap();
                prop_assert_eq!(line, expected);
                prev = hash;
            }
            prop_assert_eq!(encoder.head(), (2, prev));
        }
    }
}
