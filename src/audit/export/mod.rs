//! The session export: every stopped session of a range in a fixed order (its place in the
//! audit chain), as CSV or JSON lines, each record chained to the previous one
//! (`hash = SHA-256(prev_hash || canonical JSON of the record)`), then a checkpoint with the
//! count and the head, signed with qrpark's Ed25519 key (published in the JWKS).

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::domain::audit::{GENESIS, canonical_json, hex, instant};
use crate::domain::qr_token::QrSigningKey;
use crate::store::Db;
use crate::store::export::{Records, Stored};

mod encode;

pub use crate::store::export::{Range, count};

use encode::Encoder;

/// The two export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// `csv` or `jsonl`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    /// The name used in checkpoints and media types.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The columns of a record, in CSV order.
pub const COLUMNS: &[&str] = &[
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
    // Added after the first release: appended, so every earlier column keeps its place.
    "plate",
    "ended_by",
    "refunded_total",
    "prev_hash",
    "hash",
];

/// What a record's chain hash covers: every field of the record except the chain's own.
pub fn record_canonical(record: &Value, format: Format) -> String {
    let mut fields = Map::new();
    for (key, value) in record.as_object().into_iter().flatten() {
        if key == "prev_hash" || key == "hash" {
            continue;
        }
        // CSV carries every value as text, so its canonical form is text too.
        let value = match (format, value) {
            (Format::Csv, Value::Null) => Value::String(String::new()),
            (Format::Csv, Value::String(_)) => value.clone(),
            (Format::Csv, other) => Value::String(other.to_string()),
            (Format::Jsonl, other) => other.clone(),
        };
        fields.insert(key.clone(), value);
    }
    canonical_json(&Value::Object(fields))
}

/// The signed summary of an export: the range, the count and the chain head.
pub fn checkpoint(
    format: Format,
    range: &Range,
    count: u64,
    head: &[u8; 32],
    key: &QrSigningKey,
) -> Value {
    let mut body = json!({
        "format": format.name(),
        "from": instant(range.from),
        "to": instant(range.to),
        "operator": range.operator,
        "lot": range.lot,
        "count": count,
        "head": hex(head),
        "kid": key.kid,
        "alg": "EdDSA",
        // The public key travels with the export so `qrpark audit verify FILE` can check
        // it anywhere; pinning it against qrpark's JWKS (`--jwks`) is what proves who signed.
        "jwk": crate::domain::qr_token::jwk(&key.kid, &key.public_key()),
    });
    let signature = key.sign_bytes(canonical_json(&body).as_bytes());
    body["signature"] = json!(signature);
    json!({ "checkpoint": body })
}

/// A piece of an export on its way out, with the number of records written up to its end
/// (for progress).
#[derive(Debug)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub records: u64,
}

/// Streams the export into `sink` in chunks of about 64 KiB, a JSONL export closed by its
/// signed checkpoint line; returns the count and the chain head. Memory stays flat whatever
/// the range: records are encoded as they arrive, from one snapshot of the database.
pub async fn produce(
    db: &Db,
    range: &Range,
    format: Format,
    key: &QrSigningKey,
    sink: &mpsc::Sender<Chunk>,
) -> anyhow::Result<(u64, [u8; 32])> {
    let mut output = Output {
        encoder: Encoder::new(format, GENESIS),
        buffer: String::with_capacity(CHUNK + 16 * 1024),
        sink,
    };
    if let Some(header) = output.encoder.header() {
        output.buffer.push_str(&header);
    }
    crate::store::export::for_each(db, range, &mut output).await?;
    let (count, head) = output.encoder.head();
    if format == Format::Jsonl {
        output.buffer.push_str(&canonical_json(&checkpoint(
            format, range, count, &head, key,
        )));
        output.buffer.push('\n');
    }
    output.send().await?;
    Ok((count, head))
}

/// The size of the chunks an export is sent on in.
const CHUNK: usize = 64 * 1024;

/// Where records go: encoded into a buffer that is sent on once it is full.
struct Output<'s> {
    encoder: Encoder,
    buffer: String,
    sink: &'s mpsc::Sender<Chunk>,
}

impl Records for Output<'_> {
    async fn take(&mut self, records: &[Stored<'_>]) -> anyhow::Result<()> {
        for record in records {
            self.encoder.line(record, &mut self.buffer)?;
            if self.buffer.len() >= CHUNK {
                self.send().await?;
            }
        }
        Ok(())
    }
}

impl Output<'_> {
    /// Sends what the buffer holds, if anything.
    async fn send(&mut self) -> anyhow::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buffer, String::with_capacity(CHUNK + 16 * 1024));
        let chunk = Chunk {
            bytes: full.into_bytes(),
            records: self.encoder.head().0,
        };
        self.sink
            .send(chunk)
            .await
            .map_err(|_| anyhow::anyhow!("the reader went away"))
    }
}
