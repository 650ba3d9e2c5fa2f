//! The one way to read a scanned code: verify the token, load its space and lot, and compare
//! the code's version with the space's current one. The scan API, the start of a session
//! and the phone page all ask here, and map the answer the same way.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::qr_token::QrClaims;
use crate::qr::keyring::KeyRing;
use crate::store::cache::PublicCache;
use crate::store::lots::{self, Lot};
use crate::store::spaces::{self, Space};
use crate::store::{Db, StoreResult};

/// A genuine, current code: the space and lot it names and the key that signed it.
#[derive(Debug, Clone)]
pub struct Genuine {
    pub space: Arc<Space>,
    pub lot: Arc<Lot>,
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

/// Where the space and lot of a code are read.
#[derive(Clone, Copy)]
pub enum Lookup<'a> {
    /// The database itself: what a warden's check must see.
    Fresh(&'a Db),
    /// The process's cache, which sees every change within a second (`store::cache`): the
    /// public reads and the start, whose write checks the space again.
    Cached(&'a PublicCache),
}

impl Lookup<'_> {
    async fn space(self, space_id: uuid::Uuid) -> StoreResult<Option<Arc<Space>>> {
        match self {
            Self::Fresh(db) => Ok(spaces::get_public(db, space_id).await?.map(Arc::new)),
            Self::Cached(cache) => cache.space(space_id).await,
        }
    }

    async fn lot(self, lot_id: uuid::Uuid) -> StoreResult<Option<Arc<Lot>>> {
        match self {
            Self::Fresh(db) => Ok(lots::get_public(db, lot_id).await?.map(Arc::new)),
            Self::Cached(cache) => cache.lot(lot_id).await,
        }
    }
}

/// Resolves a scanned token (the token, not the URL). Whether the space is in service is
/// the caller's question: a scan shows an out-of-service space, a start refuses it.
pub async fn resolve(
    keys: &KeyRing,
    lookup: Lookup<'_>,
    token: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<Genuine, Refusal>> {
    let claims = match keys.verify(token, now).await? {
        Ok(claims) => claims,
        Err(reason) => {
            // The reason goes to the log, not to whoever is probing with forged codes.
            tracing::info!(%reason, "refused a QR token");
            return Ok(Err(Refusal::Forged));
        }
    };
    let found = match look_up(lookup, &claims).await? {
        // A cached copy may be up to a second old: a code newer than it, or a space or lot
        // it does not hold yet, may just be new. The token's signature is genuine, so only
        // a real change leads here (no forger can make the database be asked); ask it.
        Err(Refusal::Forged | Refusal::NoSpace) if matches!(lookup, Lookup::Cached(_)) => {
            let Lookup::Cached(cache) = lookup else {
                unreachable!("matched just above")
            };
            look_up(Lookup::Fresh(cache.db()), &claims).await?
        }
        found => found,
    };
    let (space, lot) = match found {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let kid = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    Ok(Ok(Genuine { space, lot, kid }))
}

/// The space and lot a verified code names, if the code is the space's current one.
async fn look_up(
    lookup: Lookup<'_>,
    claims: &QrClaims,
) -> StoreResult<Result<(Arc<Space>, Arc<Lot>), Refusal>> {
    let Some(space) = lookup.space(claims.space_id).await? else {
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
    let Some(lot) = lookup.lot(space.lot_id).await? else {
        return Ok(Err(Refusal::NoSpace));
    };
    Ok(Ok((space, lot)))
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
