//! The one way to read a scanned code: verify the token, load its space and lot, and compare
//! the code's version with the space's current one. The scan API, the start of a session
//! and the phone page all ask here, and map the answer the same way.

use chrono::{DateTime, Utc};

use crate::domain::qr_token::QrClaims;
use crate::qr::keyring::KeyRing;
use crate::store::lots::{self, Lot};
use crate::store::spaces::{self, Space};
use crate::store::{Db, StoreResult};

/// A genuine, current code: the space and lot it names and the key that signed it.
#[derive(Debug, Clone)]
pub struct Genuine {
    pub space: Space,
    pub lot: Lot,
    /// The `kid` of the signing key, as named in `/.well-known/jwks.json`.
    pub kid: String,
}

/// Why a scanned code must not be paid through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not signed by one of our keys, malformed, or naming a version never issued.
    Forged,
    /// Genuine but replaced: the operator rotated the space's code.
    Revoked,
    /// Genuine but naming no space (or lot) this database holds.
    NoSpace,
}

/// Resolves a scanned token (the token, not the URL). Whether the space is in service is
/// the caller's question: a scan shows an out-of-service space, a start refuses it.
pub async fn resolve(
    keys: &KeyRing,
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<Genuine, Refusal>> {
    match verify(keys, token, now).await? {
        Ok(claims) => look_up(db, &claims, token).await,
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// The first half of [`resolve`], without the database: the token's signature, key and
/// claims.
pub async fn verify(
    keys: &KeyRing,
    token: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<QrClaims, Refusal>> {
    Ok(keys.verify(token, now).await?.map_err(|reason| {
        // The reason goes to the log, not to whoever is probing with forged codes.
        tracing::info!(%reason, "refused a QR token");
        Refusal::Forged
    }))
}

/// The second half of [`resolve`]: the space and lot the verified `claims` name, if the
/// code's version is the space's current one.
pub async fn look_up(
    db: &Db,
    claims: &QrClaims,
    token: &str,
) -> StoreResult<Result<Genuine, Refusal>> {
    let Some(space) = spaces::get_public(db, claims.space_id).await? else {
        return Ok(Err(Refusal::NoSpace));
    };
    let version = i64::from(claims.version);
    let current = i64::from(space.qr_version);
    if version < current {
        return Ok(Err(Refusal::Revoked));
    }
    if version > current {
        return Ok(Err(Refusal::Forged));
    }
    let Some(lot) = lots::get_public(db, space.lot_id).await? else {
        return Ok(Err(Refusal::NoSpace));
    };
    let kid = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    Ok(Ok(Genuine { space, lot, kid }))
}

/// Whether a replica's answer to [`look_up`] may only mean that the replica lags: a code
/// newer than the space it read (just rotated), or a space or lot it does not hold yet (just
/// made). A revoked code stays revoked: the primary can only hold a newer version still.
pub fn lag_could_explain<T>(found: &Result<T, Refusal>) -> bool {
    matches!(found, Err(Refusal::Forged | Refusal::NoSpace))
}

/// The token of a scanned code, whether the caller sent the token or the whole `/q/` URL.
pub fn token_of(qr: &str) -> &str {
    qr.rsplit_once("/q/").map_or(qr, |(_, token)| token).trim()
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn a_url_or_a_token_gives_the_token() {
        assert_eq!(token_of("https://p.example/q/abc.def.ghi"), "abc.def.ghi");
        assert_eq!(token_of(" abc.def.ghi "), "abc.def.ghi");
    }
}
