//! Each space's code: signing a new version, its URL, giving codes to spaces that lack one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::keyring::KeyRing;
use crate::domain::qr_token::{QrClaims, QrSigningKey};
use crate::domain::space::SpaceCode;
use crate::store::space_qr::NewSpaceQr;
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
    let key = keys.signing_key().await?;
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
    let key = keys.signing_key().await?;
    Ok(codes
        .into_iter()
        .map(|code| NewSpace {
            code,
            qr: sign(&key, Uuid::now_v7(), 1, now),
        })
        .collect())
}
