//! Tariff versions of a lot: append-only, numbered 1, 2, 3... per lot.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::cache::{self, Changed};
use super::{Constraint, Db, StoreError, StoreResult, on_db};

/// One stored tariff version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TariffVersion {
    pub tariff_id: Uuid,
    pub lot_id: Uuid,
    pub version: i32,
    pub document: String,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "tariff_id, lot_id, version, document, currency, effective_from, created_at";

/// Which version, without its document: what a cache keyed by version needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRef {
    pub tariff_id: Uuid,
    pub version: i32,
    pub effective_from: DateTime<Utc>,
}

/// How often a new version is retried when another writer took the same number.
const VERSION_RACE_RETRIES: usize = 5;

/// Stores `document` as the lot's next version, in force from `now`.
pub async fn publish(
    db: &Db,
    lot_id: Uuid,
    document: &str,
    currency: &str,
    now: DateTime<Utc>,
) -> StoreResult<TariffVersion> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let next: i32 = on_db!(db, pool => sqlx::query_scalar::<_, i32>(
            "select coalesce(max(version), 0) + 1 from tariff where lot_id = $1",
        )
        .bind(lot_id)
        .fetch_one(pool)
        .await)?;
        let row = TariffVersion {
            tariff_id: Uuid::now_v7(),
            lot_id,
            version: next,
            document: document.to_owned(),
            currency: currency.to_owned(),
            effective_from: now,
            created_at: now,
        };
        let inserted = on_db!(db, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into tariff (tariff_id, lot_id, version, document, currency, \
                 effective_from, created_at) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(row.tariff_id)
            .bind(row.lot_id)
            .bind(row.version)
            .bind(&row.document)
            .bind(&row.currency)
            .bind(row.effective_from)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            audit::append(
                &mut tx,
                now,
                "tariff.published",
                row.tariff_id,
                serde_json::json!({
                    "tariff_id": row.tariff_id,
                    "lot_id": row.lot_id,
                    "version": row.version,
                    "effective_from": crate::domain::audit::instant(row.effective_from),
                    "document": serde_json::from_str::<serde_json::Value>(&row.document)
                        .unwrap_or(serde_json::Value::Null),
                })
            )
            .await?;
            cache::note_change(&mut tx, Changed::Lot(row.lot_id)).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        }
        .await
        );
        match inserted {
            Ok(()) => return Ok(row),
            // Two operators' sessions published at once: the unique (lot, version) key
            // refused the loser, who takes the next number.
            Err(StoreError::Conflict(Constraint::TariffVersion))
                if attempt < VERSION_RACE_RETRIES => {}
            Err(err) => return Err(err),
        }
    }
}

/// The version in force at `at`: the latest one whose `effective_from` is not after it.
pub async fn in_force(
    db: &Db,
    lot_id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<Option<TariffVersion>> {
    let sql = format!(
        "select {COLUMNS} from tariff where lot_id = $1 and effective_from <= $2 \
         order by effective_from desc, version desc limit 1"
    );
    on_db!(db, pool => Ok(sqlx::query_as::<_, TariffVersion>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .bind(at)
        .fetch_optional(pool)
        .await?))
}

/// Which version is in force at `at` (the same choice as [`in_force`]), or the latest one
/// whatever its `effective_from` when `at` is `None`; without the document.
pub async fn in_force_ref(
    db: &Db,
    lot_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> StoreResult<Option<VersionRef>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, VersionRef>(
        "select tariff_id, version, effective_from from tariff \
         where lot_id = $1 and ($2 is null or effective_from <= $2) \
         order by effective_from desc, version desc limit 1",
    )
    .bind(lot_id)
    .bind(at)
    .fetch_optional(pool)
    .await?))
}

/// Every version of a lot's tariff, newest first.
pub async fn history(db: &Db, lot_id: Uuid) -> StoreResult<Vec<TariffVersion>> {
    let sql = format!("select {COLUMNS} from tariff where lot_id = $1 order by version desc");
    on_db!(db, pool => Ok(sqlx::query_as::<_, TariffVersion>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .fetch_all(pool)
        .await?))
}

/// One stored version by its id (the one a session locked at its start).
pub async fn get(db: &Db, tariff_id: Uuid) -> StoreResult<Option<TariffVersion>> {
    let sql = format!("select {COLUMNS} from tariff where tariff_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, TariffVersion>(sqlx::AssertSqlSafe(sql))
        .bind(tariff_id)
        .fetch_optional(pool)
        .await?))
}

/// These tariff versions (one query however many; unknown ids are left out).
pub async fn get_many(db: &Db, tariff_ids: &[Uuid]) -> StoreResult<Vec<TariffVersion>> {
    let select = format!("select {COLUMNS} from tariff where tariff_id");
    super::fetch_by_ids(db, &select, tariff_ids, "").await
}
