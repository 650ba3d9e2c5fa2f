//! Each space's code: signing a new version, its URL, giving codes to spaces that lack one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::keyring::KeyRing;
use crate::domain::key_purpose::KeyPurpose;
use crate::domain::qr_token::{QrClaims, QrSigningKey};
use crate::domain::space::SpaceCode;
use crate::render::{QrMatrix, SheetEntry, qr_sheet_pdf};
use crate::store::space_qr::{self, NewSpaceQr, SpaceQr};
use crate::store::spaces::NewSpace;
use crate::store::{Db, StoreResult, spaces};

/// Signs version `version` of a space's code.
pub fn sign(key: &QrSigningKey, space_id: Uuid, version: i32, now: DateTime<Utc>) -> NewSpaceQr {
    let token = key.sign(QrClaims {
        space_id,
        version: u32::try_from(version).unwrap_or(0),
    });
    NewSpaceQr {
        space_id,
        qr_version: version,
        kid: key.kid.clone(),
        token,
        created_at: now,
    }
}

/// What the QR code holds: `{public_url}/q/{token}`.
pub fn url(public_url: &str, token: &str) -> String {
    format!("{public_url}/q/{token}")
}

/// Gives every space without a code its code (spaces made before codes existed).
pub async fn backfill(db: &Db, keys: &KeyRing, now: DateTime<Utc>) -> StoreResult<usize> {
    let missing = spaces::without_code(db).await?;
    if missing.is_empty() {
        return Ok(0);
    }
    let key = keys.signing_key(KeyPurpose::Qr, now).await?;
    for (space_id, version) in &missing {
        spaces::add_missing_code(db, &sign(&key, *space_id, *version, now)).await?;
    }
    Ok(missing.len())
}

/// New spaces with their first codes (version 1), ready for [`spaces::create_many`].
pub async fn new_spaces(
    keys: &KeyRing,
    codes: Vec<SpaceCode>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<NewSpace>> {
    let key = keys.signing_key(KeyPurpose::Qr, now).await?;
    Ok(codes
        .into_iter()
        .map(|code| NewSpace {
            code,
            qr: sign(&key, Uuid::now_v7(), 1, now),
        })
        .collect())
}

/// The cached matrix of a code, if it encodes exactly `url`.
fn cached(qr: &SpaceQr, url: &str) -> Option<QrMatrix> {
    match (&qr.matrix, &qr.matrix_url) {
        (Some(bytes), Some(cached_url)) if cached_url == url => QrMatrix::from_bytes(bytes).ok(),
        _ => None,
    }
}

/// The built QR matrix of a space's current code: from the cache when it encodes this URL,
/// otherwise built now (the costly mask choice) and kept for next time.
pub async fn matrix(db: &Db, qr: &SpaceQr, public_url: &str) -> anyhow::Result<QrMatrix> {
    let url = url(public_url, &qr.token);
    if let Some(matrix) = cached(qr, &url) {
        return Ok(matrix);
    }
    let built = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || QrMatrix::build(&url)).await??
    };
    space_qr::store_matrix(db, qr.space_id, qr.qr_version, &url, &built.to_bytes()).await?;
    Ok(built)
}

/// The matrices of many codes, in order: cached ones as they are, the rest built on every
/// core at once and kept.
pub async fn matrices(
    db: &Db,
    codes: &[SpaceQr],
    public_url: &str,
) -> anyhow::Result<Vec<QrMatrix>> {
    let urls: Vec<String> = codes.iter().map(|qr| url(public_url, &qr.token)).collect();
    let mut found: Vec<Option<QrMatrix>> = codes
        .iter()
        .zip(&urls)
        .map(|(qr, url)| cached(qr, url))
        .collect();
    let missing: Vec<usize> = (0..codes.len()).filter(|&i| found[i].is_none()).collect();
    if !missing.is_empty() {
        let to_build: Vec<String> = missing.iter().map(|&i| urls[i].clone()).collect();
        let built = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = to_build.iter().map(String::as_str).collect();
            QrMatrix::build_many(&refs)
        })
        .await?;
        let mut keep = Vec::with_capacity(missing.len());
        for (&i, matrix) in missing.iter().zip(built) {
            let matrix = matrix?;
            let qr = &codes[i];
            keep.push((
                qr.space_id,
                qr.qr_version,
                urls[i].clone(),
                matrix.to_bytes(),
            ));
            found[i] = Some(matrix);
        }
        space_qr::store_matrices(db, &keep).await?;
    }
    Ok(found.into_iter().flatten().collect())
}

/// The printable sheet of every space of a lot: A4 pages, a labelled code per space.
pub async fn lot_sheet(
    db: &Db,
    lot_id: Uuid,
    lot_name: &str,
    public_url: &str,
) -> anyhow::Result<Vec<u8>> {
    let (space_codes, codes): (Vec<String>, Vec<SpaceQr>) =
        space_qr::for_lot(db, lot_id).await?.into_iter().unzip();
    let matrices = matrices(db, &codes, public_url).await?;
    let urls: Vec<String> = codes.iter().map(|qr| url(public_url, &qr.token)).collect();
    let title = format!("{lot_name}: parking space codes");
    let lot_name = lot_name.to_owned();
    tokio::task::spawn_blocking(move || {
        let entries: Vec<SheetEntry<'_>> = space_codes
            .iter()
            .zip(&urls)
            .zip(&matrices)
            .map(|((code, url), matrix)| SheetEntry {
                lot_name: &lot_name,
                space_code: code,
                url,
                matrix,
            })
            .collect();
        qr_sheet_pdf(&title, &entries)
    })
    .await?
    .map_err(Into::into)
}
