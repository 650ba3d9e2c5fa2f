//! The export's SQLite read: a read-only rusqlite connection of its own, one statement in
//! one read transaction on a blocking thread, typed records handed on in batches (why: the
//! parent module's documentation).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::OpenFlags;
use rusqlite::types::ValueRef;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::sqlite_values::{self, bind_id, bind_instant};
use super::{PAGE, Range, Records, Stored, bounds_sql, records_sql, required};
use crate::config::Backend;
use crate::domain::session::EndedBy;

/// Hands every record of the range to `records`, [`PAGE`] at a time.
pub(super) async fn for_each(
    pool: &sqlx::SqlitePool,
    range: &Range,
    records: &mut impl Records,
) -> anyhow::Result<()> {
    let path = pool.connect_options().get_filename().to_owned();
    let connection = tokio::task::spawn_blocking(move || open(&path)).await??;
    // However this function ends (an encoding error, the client gone, the whole export
    // dropped), the read stops at once, not at its next batch: a narrow filter may walk
    // a long stretch of the chain between two batches.
    let _stop = Interrupt(connection.get_interrupt_handle());
    let (sender, mut batches) = mpsc::channel(2);
    let reader = {
        let range = range.clone();
        tokio::task::spawn_blocking(move || read(&connection, &range, &sender))
    };
    // A batch is encoded while the reader reads the next.
    while let Some(batch) = batches.recv().await {
        records.take(&batch.stored()).await?;
    }
    // The reader closed the channel: at the end of the range, or on an error, which must
    // not pass for a shorter export.
    reader.await?
}

/// Interrupts the export's SQLite statement when dropped (a no-op once it has finished).
struct Interrupt(rusqlite::InterruptHandle);

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.0.interrupt();
    }
}

/// The export's own connection to the database file: read-only, outside the pool.
fn open(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

/// Reads the range (a blocking thread's work), sending the records on in batches; stops
/// early, without error, once nobody receives them.
fn read(
    connection: &rusqlite::Connection,
    range: &Range,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    // One read transaction: the bounds and the records come from the same snapshot. It is
    // only read, and rolled back when dropped.
    let snapshot = connection.unchecked_transaction()?;
    // Bound as sqlx binds them for the rest of qrpark, so the range means the same here.
    let filter = (
        bind_instant(range.from),
        bind_instant(range.to),
        range.operator.as_ref().map(bind_id),
        range.lot.as_ref().map(bind_id),
    );
    let (first, last): (Option<i64>, Option<i64>) =
        snapshot.query_row(&bounds_sql(Backend::Sqlite), filter.clone(), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    let mut statement = snapshot.prepare(&records_sql(Backend::Sqlite))?;
    let (from, to, operator, lot) = filter;
    let mut rows = statement.query((from, to, operator, lot, first, last))?;
    let mut batch = Batch::default();
    while let Some(row) = rows.next()? {
        batch.push(row)?;
        if batch.records.len() == PAGE && batches.blocking_send(batch.take()).is_err() {
            return Ok(());
        }
    }
    if !batch.records.is_empty() {
        let _ = batches.blocking_send(batch);
    }
    Ok(())
}

/// Records read from SQLite, their texts in one buffer: one allocation per batch, not per
/// value.
#[derive(Default)]
struct Batch {
    texts: String,
    records: Vec<Read>,
}

/// A record of a [`Batch`]: typed values, and where its texts are in the batch's buffer.
struct Read {
    session_id: Uuid,
    operator_id: Uuid,
    lot_id: Uuid,
    space_code: TextRange,
    driver: TextRange,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    currency: TextRange,
    fee_minor: i64,
    tariff_version: i64,
    fee: TextRange,
    settlement_status: Option<TextRange>,
    settlement_reference: Option<TextRange>,
    audit_seq: i64,
    audit_hash: [u8; 32],
    plate: Option<TextRange>,
    ended_by: EndedBy,
    refunded_minor: Option<i64>,
}

type TextRange = std::ops::Range<usize>;

impl Batch {
    fn take(&mut self) -> Self {
        std::mem::replace(
            self,
            Self {
                texts: String::with_capacity(self.texts.capacity()),
                records: Vec::with_capacity(PAGE),
            },
        )
    }

    /// Reads a row of the record's columns. A null where the schema allows none is an
    /// error.
    fn push(&mut self, row: &rusqlite::Row<'_>) -> anyhow::Result<()> {
        let texts = &mut self.texts;
        let mut text = |column: usize| -> anyhow::Result<Option<TextRange>> {
            let value = row.get_ref(column)?;
            if value == ValueRef::Null {
                return Ok(None);
            }
            let start = texts.len();
            texts.push_str(value.as_str()?);
            Ok(Some(start..texts.len()))
        };
        let space_code = required(text(3)?, "space")?;
        let driver = required(text(4)?, "driver")?;
        let currency = required(text(7)?, "currency")?;
        let fee = required(text(10)?, "breakdown")?;
        let settlement_status = text(11)?;
        let settlement_reference = text(12)?;
        let plate = text(15)?;
        let id = |column: usize| sqlite_values::id(row.get_ref(column)?.as_blob()?);
        let at = |column: usize| sqlite_values::instant(row.get_ref(column)?.as_str()?);
        // Parsed, not copied: one of four names, checked as strictly as the rest of qrpark
        // reads it.
        let ended_by: EndedBy = match row.get_ref(16)? {
            ValueRef::Null => anyhow::bail!("a stopped session has no ending"),
            value => value.as_str()?.parse().map_err(anyhow::Error::msg)?,
        };
        self.records.push(Read {
            session_id: id(0)?,
            operator_id: id(1)?,
            lot_id: id(2)?,
            space_code,
            driver,
            started_at: at(5)?,
            ended_at: at(6)?,
            currency,
            fee_minor: row.get(8)?,
            tariff_version: row.get(9)?,
            fee,
            settlement_status,
            settlement_reference,
            audit_seq: row.get(13)?,
            audit_hash: row.get_ref(14)?.as_blob()?.try_into()?,
            plate,
            ended_by,
            refunded_minor: row.get(17)?,
        });
        Ok(())
    }

    /// The batch's records as the encoder takes them.
    fn stored(&self) -> Vec<Stored<'_>> {
        let text = |range: &TextRange| &self.texts[range.clone()];
        self.records
            .iter()
            .map(|r| Stored {
                session_id: r.session_id,
                operator_id: r.operator_id,
                lot_id: r.lot_id,
                space_code: text(&r.space_code),
                driver: text(&r.driver),
                started_at: r.started_at,
                ended_at: Some(r.ended_at),
                currency: text(&r.currency),
                fee_minor: Some(r.fee_minor),
                tariff_version: r.tariff_version,
                fee: Some(text(&r.fee)),
                settlement_status: r.settlement_status.as_ref().map(text),
                settlement_reference: r.settlement_reference.as_ref().map(text),
                audit_seq: r.audit_seq,
                audit_hash: Some(r.audit_hash),
                plate: r.plate.as_ref().map(text),
                ended_by: r.ended_by,
                refunded_minor: r.refunded_minor,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's values that vary from test to test; the rest are fixed.
    struct Row<'a> {
        driver: Option<&'a str>,
        reference: Option<&'a str>,
        hash: &'a [u8],
        plate: Option<&'a str>,
        ended_by: Option<&'a str>,
    }

    impl Default for Row<'_> {
        fn default() -> Self {
            Self {
                driver: Some("d"),
                reference: None,
                hash: &[0; 32],
                plate: None,
                ended_by: Some("driver"),
            }
        }
    }

    /// Reads one row shaped like the record's columns into `batch`, from values bound as
    /// qrpark stores them.
    fn push(batch: &mut Batch, row: Row<'_>) -> anyhow::Result<()> {
        let connection = rusqlite::Connection::open_in_memory()?;
        let mut statement = connection.prepare(
            "select ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18",
        )?;
        let id = |n: u8| [n; 16];
        let mut rows = statement.query(rusqlite::params![
            id(1),
            id(2),
            id(3),
            "A-1",
            row.driver,
            "2026-09-29T02:00:00+00:00",
            "2026-09-29T03:00:00.5+00:00",
            "CNY",
            1000,
            2,
            r#"{"total":"10.00"}"#,
            row.reference.map(|_| "settled"),
            row.reference,
            7,
            row.hash,
            row.plate,
            row.ended_by,
            row.reference.map(|_| 150),
        ])?;
        let read = rows.next()?.expect("one row");
        batch.push(read)
    }

    #[test]
    fn batches_read_back_every_field_whatever_the_texts_hold() {
        let driver = "d;1:2-3, \"ü中\"\n";
        let mut batch = Batch::default();
        push(
            &mut batch,
            Row {
                driver: Some(driver),
                hash: &[0xab; 32],
                ..Row::default()
            },
        )
        .unwrap();
        push(
            &mut batch,
            Row {
                driver: Some("x"),
                reference: Some("QRP-1;2"),
                hash: &[0xcd; 32],
                plate: Some("沪AD12345"),
                ended_by: Some("max_stay"),
            },
        )
        .unwrap();
        let records = batch.stored();
        let first = &records[0];
        assert_eq!(first.driver, driver);
        assert_eq!(first.settlement_reference, None);
        assert_eq!(first.settlement_status, None);
        assert_eq!(first.space_code, "A-1");
        assert_eq!(first.currency, "CNY");
        assert_eq!(first.fee, Some(r#"{"total":"10.00"}"#));
        assert_eq!(first.fee_minor, Some(1000));
        assert_eq!(first.tariff_version, 2);
        assert_eq!(first.audit_seq, 7);
        assert_eq!(first.audit_hash, Some([0xab; 32]));
        assert_eq!(first.session_id, Uuid::from_bytes([1; 16]));
        assert_eq!(first.lot_id, Uuid::from_bytes([3; 16]));
        assert_eq!(
            first.ended_at.unwrap().to_rfc3339(),
            "2026-09-29T03:00:00.500+00:00"
        );
        assert_eq!(first.plate, None);
        assert_eq!(first.ended_by, EndedBy::Driver);
        // The second record's texts follow the first's in the batch's buffer.
        assert_eq!(records[1].driver, "x");
        assert_eq!(records[1].space_code, "A-1");
        assert_eq!(records[1].settlement_reference, Some("QRP-1;2"));
        assert_eq!(records[1].settlement_status, Some("settled"));
        assert_eq!(records[1].audit_hash, Some([0xcd; 32]));
        assert_eq!(records[1].plate, Some("沪AD12345"));
        assert_eq!(records[1].ended_by, EndedBy::MaxStay);
    }

    #[test]
    fn a_value_the_schema_should_have_refused_is_an_error_not_a_record() {
        let mut batch = Batch::default();
        let refused = [
            (
                "null driver",
                Row {
                    driver: None,
                    ..Row::default()
                },
            ),
            (
                "short hash",
                Row {
                    hash: &[0; 31],
                    ..Row::default()
                },
            ),
            (
                "no ending",
                Row {
                    ended_by: None,
                    ..Row::default()
                },
            ),
            (
                "unknown ending",
                Row {
                    ended_by: Some("towed"),
                    ..Row::default()
                },
            ),
        ];
        for (what, row) in refused {
            assert!(push(&mut batch, row).is_err(), "{what}");
        }
        assert!(batch.records.is_empty());
    }
}
