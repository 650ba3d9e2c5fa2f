//! Offline verification of an export: every record's chain link, the checkpoint's count,
//! head and Ed25519 signature (against a JWKS), and optionally that the export extends an
//! earlier one (its first records chain to the earlier checkpoint's head).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Map, Value};

use super::export::{Format, record_canonical};
use crate::domain::audit::{GENESIS, canonical_json, chain_hash, hex, parse_hash};

/// What a sound export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head: String,
    pub kid: String,
}

/// The Ed25519 keys of a JWKS document, by `kid`.
pub fn keys_of(jwks: &Value) -> HashMap<String, [u8; 32]> {
    let mut keys = HashMap::new();
    for key in jwks["keys"].as_array().into_iter().flatten() {
        if key["kty"] != "OKP" || key["crv"] != "Ed25519" {
            continue;
        }
        let (Some(kid), Some(x)) = (key["kid"].as_str(), key["x"].as_str()) else {
            continue;
        };
        if let Some(bytes) = URL_SAFE_NO_PAD
            .decode(x)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            keys.insert(kid.to_owned(), bytes);
        }
    }
    keys
}

/// The key a checkpoint carries (`jwk`), by its `kid`: used when no JWKS is pinned.
pub fn embedded_keys(checkpoint: &Value) -> HashMap<String, [u8; 32]> {
    let body = checkpoint.get("checkpoint").unwrap_or(checkpoint);
    match body.get("jwk") {
        Some(jwk) => keys_of(&serde_json::json!({ "keys": [jwk] })),
        None => HashMap::new(),
    }
}

/// Checks a checkpoint's signature; returns its body.
pub fn check_checkpoint(
    checkpoint: &Value,
    keys: &HashMap<String, [u8; 32]>,
) -> Result<Map<String, Value>, String> {
    let body = checkpoint
        .get("checkpoint")
        .unwrap_or(checkpoint)
        .as_object()
        .ok_or("the checkpoint is not a JSON object")?;
    let kid = body["kid"].as_str().ok_or("the checkpoint names no key")?;
    let key = keys
        .get(kid)
        .ok_or_else(|| format!("the checkpoint's key {kid} is not in the JWKS"))?;
    // A pinned JWKS must agree with the key the checkpoint says it was signed with.
    if let Some(embedded) = embedded_keys(checkpoint).get(kid)
        && embedded != key
    {
        return Err(format!(
            "the checkpoint's key {kid} differs from the JWKS's {kid}"
        ));
    }
    let signature = body["signature"]
        .as_str()
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or("the checkpoint's signature is malformed")?;
    let mut unsigned = body.clone();
    unsigned.remove("signature");
    let message = canonical_json(&Value::Object(unsigned));
    VerifyingKey::from_bytes(key)
        .map_err(|_| "the JWKS key is not an Ed25519 key".to_owned())?
        .verify(message.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| "the checkpoint's signature does not verify".to_owned())?;
    Ok(body.clone())
}

/// Splits CSV text of our own export into records (RFC 4180: a quoted field may hold
/// commas, doubled quotes and line breaks), each with the line it starts on (from 1).
fn csv_records(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut line, mut starts) = (false, 1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            ('\n', false) => {
                fields.push(std::mem::take(&mut field));
                records.push((starts, std::mem::take(&mut fields)));
                line += 1;
                starts = line;
            }
            (c, _) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
        }
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((starts, fields));
    }
    records
}

/// An export file read back: its format, its records with their line numbers, and the
/// checkpoint it carries (JSONL only).
struct Parsed {
    format: Format,
    records: Vec<(usize, Value)>,
    checkpoint: Option<Value>,
}

/// The columns a CSV export's first line names, if it is such a header: plain names
/// (`a-z`, `_`) separated by commas.
fn csv_header(text: &str) -> Option<Vec<&str>> {
    let (first, _) = text.split_once('\n')?;
    let columns: Vec<&str> = first.split(',').collect();
    columns
        .iter()
        .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .then_some(columns)
}

/// Reads an export file.
fn records(text: &str) -> Result<Parsed, String> {
    if let Some(columns) = csv_header(text) {
        return csv(text, &columns);
    }
    let lines = text.lines().enumerate().filter(|(_, l)| !l.is_empty());
    let mut out = Vec::new();
    let mut checkpoint = None;
    for (i, line) in lines {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        if value.get("checkpoint").is_some() {
            if checkpoint.is_some() {
                return Err(format!("line {}: a second checkpoint", i + 1));
            }
            checkpoint = Some(value);
        } else if checkpoint.is_some() {
            return Err(format!("line {}: a record after the checkpoint", i + 1));
        } else {
            out.push((i + 1, value));
        }
    }
    Ok(Parsed {
        format: Format::Jsonl,
        records: out,
        checkpoint,
    })
}

/// Reads a CSV export by the columns its header names. The chain covers whatever columns
/// a record has, so exports written before a column was added (`plate` and `ended_by`
/// were) verify as they were written; a column removed, added or renamed afterwards
/// changes every hash.
fn csv(text: &str, columns: &[&str]) -> Result<Parsed, String> {
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            return Err(format!("line 1: the header names `{column}` twice"));
        }
    }
    for chain in ["prev_hash", "hash"] {
        if !columns.contains(&chain) {
            return Err(format!(
                "line 1: the header has no `{chain}` column: not a qrpark export"
            ));
        }
    }
    let body = &text[text.find('\n').map_or(text.len(), |end| end + 1)..];
    let mut out = Vec::new();
    for (line, fields) in csv_records(body) {
        let line = line + 1;
        if fields.len() != columns.len() {
            return Err(format!(
                "line {line}: {} fields, expected {}",
                fields.len(),
                columns.len()
            ));
        }
        let record: Map<String, Value> = columns
            .iter()
            .zip(fields)
            .map(|(c, f)| ((*c).to_owned(), Value::String(f)))
            .collect();
        out.push((line, Value::Object(record)));
    }
    Ok(Parsed {
        format: Format::Csv,
        records: out,
        checkpoint: None,
    })
}

/// Verifies an export. `checkpoint` is needed for CSV (JSONL carries its own as the last
/// line); `since` is an earlier export's checkpoint that this one must extend.
pub fn verify(
    text: &str,
    checkpoint: Option<&Value>,
    keys: &HashMap<String, [u8; 32]>,
    since: Option<&Value>,
) -> Result<Verified, String> {
    let Parsed {
        format,
        records,
        checkpoint: own_checkpoint,
    } = records(text)?;
    let checkpoint = own_checkpoint.as_ref().or(checkpoint).ok_or(
        "no checkpoint: a JSONL export ends with one; give a CSV export's checkpoint file",
    )?;
    let body = check_checkpoint(checkpoint, keys)?;
    if body["format"] != format.name() {
        return Err(format!(
            "the checkpoint is for {} but the file is {}",
            body["format"],
            format.name()
        ));
    }
    let since_body = since.map(|s| check_checkpoint(s, keys)).transpose()?;
    let since_at = match &since_body {
        Some(earlier) => {
            for field in ["format", "from", "operator", "lot"] {
                if earlier[field] != body[field] {
                    return Err(format!(
                        "the earlier export has another `{field}`: it cannot be extended by this one"
                    ));
                }
            }
            let count = earlier["count"]
                .as_u64()
                .ok_or("the earlier checkpoint has no count")?;
            let head = earlier["head"]
                .as_str()
                .and_then(parse_hash)
                .ok_or("the earlier checkpoint has no head")?;
            Some((count, head))
        }
        None => None,
    };
    let mut prev = GENESIS;
    for (n, (line, record)) in records.iter().enumerate() {
        let n = n as u64 + 1;
        let session = record["session_id"].as_str().unwrap_or("?");
        let bad = |why: &str| format!("record {n} (line {line}, session {session}): {why}");
        if record["prev_hash"].as_str() != Some(hex(&prev).as_str()) {
            return Err(bad(
                "its prev_hash does not link to the record before it (removed, reordered or inserted records)",
            ));
        }
        let hash = chain_hash(&prev, &record_canonical(record, format));
        if record["hash"].as_str() != Some(hex(&hash).as_str()) {
            return Err(bad("its content does not match its hash (altered)"));
        }
        prev = hash;
        if let Some((count, head)) = since_at
            && n == count
            && prev != head
        {
            return Err(bad(
                "the chain differs from the earlier export's at its last record (history rewritten)",
            ));
        }
    }
    let count = records.len() as u64;
    if let Some((earlier, _)) = since_at
        && earlier > count
    {
        return Err(format!(
            "this export holds {count} records, fewer than the earlier export's {earlier} (truncated)"
        ));
    }
    if body["count"].as_u64() != Some(count) {
        return Err(format!(
            "the checkpoint counts {} records but the file holds {count} (truncated or padded)",
            body["count"]
        ));
    }
    if body["head"].as_str() != Some(hex(&prev).as_str()) {
        return Err("the checkpoint's head is not the last record's hash".to_owned());
    }
    Ok(Verified {
        records: count,
        head: hex(&prev),
        kid: body["kid"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::export::{COLUMNS, Range, checkpoint};
    use crate::domain::qr_token::QrSigningKey;

    /// The columns of exports written before `plate` and `ended_by` were added.
    const FIRST_COLUMNS: &[&str] = &[
        "session_id",
        "operator_id",
        "lot_id",
        "space_code",
        "driver",
        "started_at",
        "ended_at",
        "currency",
        "fee_total",
        "tariff_version",
        "settlement_status",
        "settlement_reference",
        "audit_seq",
        "audit_hash",
        "prev_hash",
        "hash",
    ];

    /// A value for each column a record may have.
    fn value(column: &str, n: usize) -> String {
        match column {
            "session_id" => format!("00000000-0000-7000-8000-{n:012}"),
            "plate" if n == 2 => String::new(),
            "plate" => "沪A12345".to_owned(),
            "ended_by" => "planned".to_owned(),
            "refunded_total" => "2.50".to_owned(),
            "fee_total" => "10.00".to_owned(),
            other => format!("{other}-{n}"),
        }
    }

    /// A CSV export of three records with `columns`, chained as the exporter chains them,
    /// and its signed checkpoint.
    fn csv_export(columns: &[&str], key: &QrSigningKey) -> (String, Value) {
        let mut text = format!("{}\n", columns.join(","));
        let mut prev = GENESIS;
        for n in 1..=3 {
            let record: Map<String, Value> = columns
                .iter()
                .filter(|c| !["prev_hash", "hash"].contains(c))
                .map(|c| ((*c).to_owned(), json!(value(c, n))))
                .collect();
            let hash = chain_hash(
                &prev,
                &record_canonical(&Value::Object(record), Format::Csv),
            );
            let fields: Vec<String> = columns
                .iter()
                .map(|c| match *c {
                    "prev_hash" => hex(&prev),
                    "hash" => hex(&hash),
                    other => value(other, n),
                })
                .collect();
            text.push_str(&fields.join(","));
            text.push('\n');
            prev = hash;
        }
        let range = Range {
            from: "2026-09-29T00:00:00Z".parse().unwrap(),
            to: "2026-09-30T00:00:00Z".parse().unwrap(),
            operator: None,
            lot: None,
        };
        let checkpoint = checkpoint(Format::Csv, &range, 3, &prev, key);
        (text, checkpoint)
    }

    #[test]
    fn csv_exports_verify_by_the_columns_they_were_written_with() {
        let key = QrSigningKey::from_seed("k1", &[7; 32]);
        let (first, checkpoint) = csv_export(FIRST_COLUMNS, &key);
        let keys = embedded_keys(&checkpoint);
        let verified = verify(&first, Some(&checkpoint), &keys, None).expect("verifies");
        assert_eq!(verified.records, 3);
        let (text, checkpoint) = csv_export(COLUMNS, &key);
        let verified = verify(&text, Some(&checkpoint), &keys, None).expect("verifies");
        assert_eq!(verified.records, 3);

        // A column taken out of every record (the plates, say) breaks the chain.
        let plate = COLUMNS.iter().position(|c| *c == "plate").unwrap();
        let without: String = text
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split(',').collect();
                fields.remove(plate);
                fields.join(",") + "\n"
            })
            .collect();
        let problem = verify(&without, Some(&checkpoint), &keys, None).expect_err("altered");
        assert!(
            problem.contains("record 1") && problem.contains("altered"),
            "{problem}"
        );

        // Headers that no export writes.
        let twice = text.replacen("ended_by", "plate", 1);
        let problem = verify(&twice, Some(&checkpoint), &keys, None).expect_err("twice");
        assert!(problem.contains("names `plate` twice"), "{problem}");
        let unchained = text.replacen(",hash\n", ",digest\n", 1);
        let problem = verify(&unchained, Some(&checkpoint), &keys, None).expect_err("no hash");
        assert!(problem.contains("no `hash` column"), "{problem}");
    }
}
