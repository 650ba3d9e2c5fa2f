//! Each space's current signed code: its token, and its QR matrix once built.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, on_db};

/// A space's current code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpaceQr {
    pub space_id: Uuid,
    pub qr_version: i32,
    pub kid: String,
    pub token: String,
    pub matrix: Option<Vec<u8>>,
    pub matrix_url: Option<String>,
}

/// The current code of a space.
pub async fn get(db: &Db, space_id: Uuid) -> StoreResult<Option<SpaceQr>> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, SpaceQr>(
        "select space_id, qr_version, kid, token, matrix, matrix_url from space_qr \
         where space_id = $1",
    )
    .bind(space_id)
    .fetch_optional(pool)
    .await?))
}

/// The current codes of a lot's spaces, by space code.
pub async fn for_lot(db: &Db, lot_id: Uuid) -> StoreResult<Vec<(String, SpaceQr)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        code: String,
        #[sqlx(flatten)]
        qr: SpaceQr,
    }
    let rows = on_db!(db, pool => sqlx::query_as::<_, Row>(
        "select space.code, space_qr.space_id, space_qr.qr_version, space_qr.kid, \
         space_qr.token, space_qr.matrix, space_qr.matrix_url from space_qr \
         join space on space.space_id = space_qr.space_id \
         where space.lot_id = $1 order by space.code",
    )
    .bind(lot_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().map(|r| (r.code, r.qr)).collect())
}

/// Keeps a built matrix, and the URL it encodes, for the code version it was built from
/// (a no-op if the code has been rotated meanwhile).
pub async fn store_matrix(
    db: &Db,
    space_id: Uuid,
    qr_version: i32,
    url: &str,
    matrix: &[u8],
) -> StoreResult<()> {
    store_matrices(
        db,
        &[(space_id, qr_version, url.to_owned(), matrix.to_vec())],
    )
    .await
}

/// Keeps many built matrices at once (`(space_id, qr_version, url, matrix)`), each like
/// [`store_matrix`], in one transaction: a lot's first sheet of thousands of codes made one
/// commit per code, each waiting for the disk.
pub async fn store_matrices(db: &Db, built: &[(Uuid, i32, String, Vec<u8>)]) -> StoreResult<()> {
    on_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        for (space_id, qr_version, url, matrix) in built {
            sqlx::query(
                "update space_qr set matrix = $3, matrix_url = $4 \
                 where space_id = $1 and qr_version = $2",
            )
            .bind(space_id)
            .bind(qr_version)
            .bind(matrix)
            .bind(url)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await
    )
}

/// Inserts a space's code, inside the transaction that creates or rotates it.
pub(crate) async fn insert_in<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    qr: &NewSpaceQr,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "insert into space_qr (space_id, qr_version, kid, token, created_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(qr.space_id)
    .bind(qr.qr_version)
    .bind(qr.kid.as_str())
    .bind(qr.token.as_str())
    .bind(qr.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A code about to be stored.
#[derive(Debug, Clone)]
pub struct NewSpaceQr {
    pub space_id: Uuid,
    pub qr_version: i32,
    pub kid: String,
    pub token: String,
    pub created_at: DateTime<Utc>,
}
