//! Values as sqlx writes them to SQLite, for the export's rusqlite connection, which binds
//! and reads them outside sqlx: the two must agree, or a range would silently mean
//! something else to the export than to the rest of qrpark. This is the one place that
//! knows the encoding; the test below holds it to what sqlx actually stores.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// An instant as sqlx binds a `DateTime<Utc>`: RFC 3339 text with as many fraction digits
/// as it needs and a `+00:00` offset, which sorts as time does.
pub(super) fn bind_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// An id as sqlx binds a `Uuid`: its 16 bytes, as a blob.
pub(super) fn bind_id(id: &Uuid) -> &[u8; 16] {
    id.as_bytes()
}

/// An instant as stored (RFC 3339 text).
pub(super) fn instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

/// An id as stored (a 16-byte blob).
pub(super) fn id(blob: &[u8]) -> anyhow::Result<Uuid> {
    Ok(Uuid::from_slice(blob)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instants with every length of fraction sqlx may write.
    fn instants() -> Vec<DateTime<Utc>> {
        [
            "2026-09-29T02:00:00Z",
            "2026-09-29T02:00:00.5Z",
            "2026-09-29T02:00:00.123Z",
            "2026-09-29T02:00:00.123456Z",
            "2026-09-29T02:00:00.123456789Z",
            "1970-01-01T00:00:00Z",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect()
    }

    #[tokio::test]
    async fn values_bound_here_are_the_values_sqlx_stores() {
        let dir = std::env::temp_dir().join(format!("qrpark-values-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("create table value (at text not null, id blob not null) strict")
            .execute(&pool)
            .await
            .unwrap();
        let rows: Vec<(DateTime<Utc>, Uuid)> = instants()
            .into_iter()
            .map(|at| (at, Uuid::now_v7()))
            .collect();
        for (at, id) in &rows {
            sqlx::query("insert into value (at, id) values ($1, $2)")
                .bind(at)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        // What sqlx stored, byte for byte, is what this module binds...
        let stored: Vec<(String, Vec<u8>)> =
            sqlx::query_as("select at, id from value order by rowid")
                .fetch_all(&pool)
                .await
                .unwrap();
        for ((at, id), (text, blob)) in rows.iter().zip(&stored) {
            assert_eq!(&bind_instant(*at), text);
            assert_eq!(&bind_id(id)[..], &blob[..]);
            // ...and reads back as the value sqlx was given.
            assert_eq!(instant(text).unwrap(), *at);
            assert_eq!(self::id(blob).unwrap(), *id);
        }
        pool.close().await;

        // So a rusqlite lookup bound here finds each row sqlx wrote.
        let connection = rusqlite::Connection::open(&path).unwrap();
        for (at, id) in &rows {
            let found: i64 = connection
                .query_row(
                    "select count(*) from value where at = ?1 and id = ?2",
                    (bind_instant(*at), bind_id(id)),
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(found, 1, "{at} {id}");
        }
        drop(connection);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
