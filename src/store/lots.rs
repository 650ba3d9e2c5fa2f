//! Lots, always read and written on behalf of the operator that owns them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit;
use super::cache::{self, Changed};
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::lot::{Address, LotName, NewLot};

/// A lot as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Lot {
    pub lot_id: Uuid,
    pub operator_id: Uuid,
    pub name: String,
    pub address: Option<String>,
    pub timezone: String,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every session must name the vehicle's plate.
    pub plate_required: bool,
}

/// What the audit log records of a lot.
fn lot_payload(lot: &Lot) -> serde_json::Value {
    serde_json::json!({
        "lot_id": lot.lot_id,
        "operator_id": lot.operator_id,
        "name": lot.name,
        "address": lot.address,
        "timezone": lot.timezone,
        "currency": lot.currency,
        "plate_required": lot.plate_required,
    })
}

const COLUMNS: &str = "lot_id, operator_id, name, address, timezone, currency, created_at, updated_at, \
     plate_required";

/// Creates a lot for an operator.
pub async fn create(
    db: &Db,
    operator_id: Uuid,
    lot: &NewLot,
    now: DateTime<Utc>,
) -> StoreResult<Lot> {
    let row = Lot {
        lot_id: Uuid::now_v7(),
        operator_id,
        name: lot.name.as_str().to_owned(),
        address: lot.address.as_ref().map(|a| a.as_str().to_owned()),
        timezone: lot.timezone.name().to_owned(),
        currency: lot.currency.code().to_owned(),
        created_at: now,
        updated_at: now,
        plate_required: lot.plate_required,
    };
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "insert into lot (lot_id, operator_id, name, address, timezone, currency, minor_unit, \
             created_at, updated_at, plate_required) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row.lot_id)
        .bind(row.operator_id)
        .bind(&row.name)
        .bind(&row.address)
        .bind(&row.timezone)
        .bind(&row.currency)
        .bind(i16::try_from(lot.currency.minor_unit()).unwrap_or(i16::MAX))
        .bind(now)
        .bind(now)
        .bind(lot.plate_required)
        .execute(&mut *tx)
        .await?;
        audit::append(&mut tx, now, "lot.created", row.lot_id, lot_payload(&row)).await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }
    .await
    )?;
    Ok(row)
}

/// The operator's lots, oldest first.
pub async fn list(db: &Db, operator_id: Uuid) -> StoreResult<Vec<Lot>> {
    let sql =
        format!("select {COLUMNS} from lot where operator_id = $1 order by created_at, lot_id");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Lot>(sqlx::AssertSqlSafe(sql))
        .bind(operator_id)
        .fetch_all(pool)
        .await?))
}

/// One of the operator's lots; `None` when it does not exist or belongs to someone else.
pub async fn get(db: &Db, operator_id: Uuid, lot_id: Uuid) -> StoreResult<Option<Lot>> {
    let sql = format!("select {COLUMNS} from lot where lot_id = $1 and operator_id = $2");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Lot>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .bind(operator_id)
        .fetch_optional(pool)
        .await?))
}

/// What an operator may change about a lot. Time zone and currency are fixed at creation:
/// tariffs and past fees are expressed in them.
#[derive(Debug, Default)]
pub struct LotChanges {
    pub name: Option<LotName>,
    /// `Some(None)` removes the address.
    pub address: Option<Option<Address>>,
    pub plate_required: Option<bool>,
}

/// Applies changes to one of the operator's lots; `None` when it is not theirs.
pub async fn update(
    db: &Db,
    operator_id: Uuid,
    lot_id: Uuid,
    changes: &LotChanges,
    now: DateTime<Utc>,
) -> StoreResult<Option<Lot>> {
    let sql = format!(
        "update lot set name = coalesce($3, name), \
         address = case when $4 then $5 else address end, updated_at = $6, \
         plate_required = coalesce($7, plate_required) \
         where lot_id = $1 and operator_id = $2 returning {COLUMNS}"
    );
    let name = changes.name.as_ref().map(|n| n.as_str().to_owned());
    let address_given = changes.address.is_some();
    let address = changes
        .address
        .as_ref()
        .and_then(|a| a.as_ref().map(|a| a.as_str().to_owned()));
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let lot = sqlx::query_as::<_, Lot>(sqlx::AssertSqlSafe(sql))
            .bind(lot_id)
            .bind(operator_id)
            .bind(name)
            .bind(address_given)
            .bind(address)
            .bind(now)
            .bind(changes.plate_required)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(lot) = &lot {
            audit::append(&mut tx, now, "lot.updated", lot.lot_id, lot_payload(lot)).await?;
            cache::note_change(&mut tx, Changed::Lot(lot.lot_id)).await?;
        }
        tx.commit().await?;
        Ok::<Option<Lot>, StoreError>(lot)
    }
    .await
    )
}

/// A lot of any operator, for public pages (scans, quotes).
pub async fn get_public(db: &Db, lot_id: Uuid) -> StoreResult<Option<Lot>> {
    let sql = format!("select {COLUMNS} from lot where lot_id = $1");
    on_db!(db, pool => Ok(sqlx::query_as::<_, Lot>(sqlx::AssertSqlSafe(sql))
        .bind(lot_id)
        .fetch_optional(pool)
        .await?))
}

/// These lots, whoever owns them (one query however many; unknown ids are left out).
pub async fn get_many(db: &Db, lot_ids: &[Uuid]) -> StoreResult<Vec<Lot>> {
    super::fetch_by_ids(
        db,
        &format!("select {COLUMNS} from lot where lot_id"),
        lot_ids,
        "",
    )
    .await
}
