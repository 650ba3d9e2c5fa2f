//! The session export: every stopped session of a range in a fixed order (its place in the
//! audit chain), as CSV or JSON lines, each record chained to the previous one
//! (`hash = SHA-256(prev_hash || canonical JSON of the record)`), then a checkpoint with the
//! count and the head, signed with qrpark's Ed25519 key (published in the JWKS).

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::audit::{GENESIS, canonical_json, chain_hash, hex, instant};
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::qr_token::QrSigningKey;
use crate::store::{Db, on_db};

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

/// Which sessions to export: stopped, with `ended_at` in `[from, to)`.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub operator: Option<Uuid>,
    pub lot: Option<Uuid>,
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
    "prev_hash",
    "hash",
];

#[derive(sqlx::FromRow)]
struct Row {
    session_id: Uuid,
    operator_id: Uuid,
    lot_id: Uuid,
    space_code: String,
    driver: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    currency: String,
    fee_minor: Option<i64>,
    tariff_version: i32,
    fee_lines: Option<String>,
    settlement_status: Option<String>,
    settlement_reference: Option<String>,
    audit_seq: Option<i64>,
    audit_hash: Option<Vec<u8>>,
}

const WHERE: &str = "from session s \
    join space sp on sp.space_id = s.space_id \
    left join settlement st on st.session_id = s.session_id \
    where s.status = 'stopped' and s.ended_at >= $1 and s.ended_at < $2 \
    and ($3 is null or s.operator_id = $3) and ($4 is null or s.lot_id = $4)";

/// How many records a range holds (for progress).
pub async fn count(db: &Db, range: &Range) -> anyhow::Result<i64> {
    let sql = format!("select count(*) {WHERE}");
    Ok(
        on_db!(db, pool => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .bind(range.from)
        .bind(range.to)
        .bind(range.operator)
        .bind(range.lot)
        .fetch_one(pool)
        .await)?,
    )
}

/// Turns rows into chained lines.
struct Encoder {
    format: Format,
    prev: [u8; 32],
    count: u64,
}

impl Encoder {
    fn header(&self) -> Option<String> {
        (self.format == Format::Csv).then(|| format!("{}\n", COLUMNS.join(",")))
    }

    fn line(&mut self, row: Row) -> anyhow::Result<String> {
        let currency = Currency::parse(&row.currency)?;
        let fee_total = Money::from_minor(row.fee_minor.unwrap_or(0), currency).to_string();
        let mut record = Map::new();
        record.insert("session_id".into(), json!(row.session_id));
        record.insert("operator_id".into(), json!(row.operator_id));
        record.insert("lot_id".into(), json!(row.lot_id));
        record.insert("space_code".into(), json!(row.space_code));
        record.insert("driver".into(), json!(row.driver));
        record.insert("started_at".into(), json!(instant(row.started_at)));
        record.insert("ended_at".into(), json!(row.ended_at.map(instant)));
        record.insert("currency".into(), json!(row.currency));
        record.insert("fee_total".into(), json!(fee_total));
        record.insert("tariff_version".into(), json!(row.tariff_version));
        record.insert("settlement_status".into(), json!(row.settlement_status));
        record.insert(
            "settlement_reference".into(),
            json!(row.settlement_reference),
        );
        record.insert("audit_seq".into(), json!(row.audit_seq));
        record.insert(
            "audit_hash".into(),
            json!(row.audit_hash.as_deref().map(hex)),
        );
        if self.format == Format::Jsonl {
            // The breakdown lets an auditor recompute the fee line by line.
            let fee: Value = match &row.fee_lines {
                Some(text) => serde_json::from_str(text)?,
                None => Value::Null,
            };
            record.insert("fee".into(), fee);
        }
        let record = Value::Object(record);
        let hash = chain_hash(&self.prev, &record_canonical(&record, self.format));
        let mut chained = record;
        chained["prev_hash"] = json!(hex(&self.prev));
        chained["hash"] = json!(hex(&hash));
        self.prev = hash;
        self.count += 1;
        Ok(match self.format {
            Format::Jsonl => format!("{}\n", canonical_json(&chained)),
            Format::Csv => csv_line(&chained),
        })
    }
}

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

fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_line(record: &Value) -> String {
    let fields: Vec<String> = COLUMNS.iter().map(|c| csv_field(&record[*c])).collect();
    format!("{}\n", fields.join(","))
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

/// Streams the export into `sink` in chunks of about 64 KiB; returns the count and the
/// chain head. Memory stays flat whatever the range: rows are encoded as they arrive.
pub async fn produce(
    db: &Db,
    range: &Range,
    format: Format,
    sink: &mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<(u64, [u8; 32])> {
    let mut encoder = Encoder {
        format,
        prev: GENESIS,
        count: 0,
    };
    let mut buffer = Vec::with_capacity(80 * 1024);
    if let Some(header) = encoder.header() {
        buffer.extend_from_slice(header.as_bytes());
    }
    let sql = format!(
        "select s.session_id, s.operator_id, s.lot_id, sp.code as space_code, s.driver, \
         s.started_at, s.ended_at, s.currency, s.fee_minor, s.tariff_version, s.fee_lines, \
         st.status as settlement_status, st.reference as settlement_reference, \
         s.audit_seq, s.audit_hash {WHERE} order by s.audit_seq, s.session_id"
    );
    on_db!(db, pool => {
        let mut rows = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
            .bind(range.from)
            .bind(range.to)
            .bind(range.operator)
            .bind(range.lot)
            .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            buffer.extend_from_slice(encoder.line(row)?.as_bytes());
            if buffer.len() >= 64 * 1024 {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(80 * 1024));
                sink.send(full).await.map_err(|_| anyhow::anyhow!("the reader went away"))?;
            }
        }
    });
    if !buffer.is_empty() {
        sink.send(buffer)
            .await
            .map_err(|_| anyhow::anyhow!("the reader went away"))?;
    }
    Ok((encoder.count, encoder.prev))
}
