//! What anyone may check about a QR code: the public keys, and a scanned token.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::domain::space::SpaceStatus;
use crate::http::error::{ApiError, ProblemBody};
use crate::qr::resolve::{Genuine, Lookup, Refusal, resolve};
use crate::store::cache::CachedTariff;

/// The scan routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(scan))
}

/// The public keys that verify QR tokens (RFC 7517), current and still-valid older ones.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "public",
    responses((status = 200, description = "A JWK set of Ed25519 (OKP) keys", body = JwkSetDoc, content_type = "application/jwk-set+json"))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let set = state.keys.jwks().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        set.to_string(),
    ))
}

/// A JWK set (RFC 7517), as `/.well-known/jwks.json` answers it.
#[derive(ToSchema)]
#[schema(as = JwkSet)]
#[allow(dead_code)]
pub struct JwkSetDoc {
    keys: Vec<JwkDoc>,
}

/// One public key: Ed25519 (`OKP`), for signatures.
#[derive(ToSchema)]
#[schema(as = Jwk)]
#[allow(dead_code)]
pub struct JwkDoc {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    kid: String,
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(rename = "use", example = "sig")]
    use_: String,
    /// What the key signs: `qr`, `proof`, `checkpoint` or `gateway`.
    purpose: String,
}

/// The lot a scanned space belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanLot {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
    pub timezone: String,
    pub currency: String,
}

/// The scanned space.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanSpace {
    pub id: Uuid,
    pub code: String,
    /// `active`, or `out_of_service`: parking cannot start there.
    #[schema(value_type = String)]
    pub status: SpaceStatus,
    /// Whether a session may start on this space now.
    pub available: bool,
    pub qr_version: i32,
}

/// The tariff in force, as published by the operator.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanTariff {
    pub version: i32,
    pub effective_from: DateTime<Utc>,
    /// The tariff document (docs/tariffs.md).
    #[schema(value_type = Object)]
    #[serde(serialize_with = "document")]
    pub tariff: Arc<CachedTariff>,
}

/// A cached version's document, as published: parsed once per process, not per scan.
fn document<S: serde::Serializer>(tariff: &Arc<CachedTariff>, out: S) -> Result<S::Ok, S::Error> {
    tariff.document.serialize(out)
}

/// What a genuine code names.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanResult {
    pub lot: ScanLot,
    pub space: ScanSpace,
    /// `null` while the operator has not published a tariff.
    pub tariff: Option<ScanTariff>,
    /// The key that signed the code, as named in `/.well-known/jwks.json`.
    pub kid: String,
}

/// Verifies a scanned token (signature, key, algorithm, code version) and answers what it
/// names: the lot, the space and the tariff in force.
#[utoipa::path(
    get, path = "/v1/scan/{token}", tag = "public",
    params(("token" = String, Path, min_length = 1, description = "The token from the QR code's URL")),
    responses(
        (status = 200, description = "A genuine, current code", body = ScanResult),
        (status = 400, description = "`qr_invalid`: forged, tampered or malformed", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`qr_revoked`: the code was replaced", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn scan(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<ScanResult>, ApiError> {
    // A path that is not UTF-8 once decoded holds no token: the same answer as garbage.
    let Ok(Path(token)) = token else {
        return Err(Refusal::Forged.into());
    };
    let now = state.clock.now();
    let Genuine { space, lot, kid } =
        resolve(&state.keys, Lookup::Cached(&state.cache), &token, now).await??;
    let tariff = state
        .cache
        .tariff_in_force(lot.lot_id, now)
        .await?
        .map(|t| ScanTariff {
            version: t.stored.version,
            effective_from: t.stored.effective_from,
            tariff: t,
        });
    let status = space.status;
    Ok(axum::Json(ScanResult {
        lot: ScanLot {
            id: lot.lot_id,
            name: lot.name.clone(),
            address: lot.address.clone(),
            timezone: lot.timezone.clone(),
            currency: lot.currency.clone(),
        },
        space: ScanSpace {
            id: space.space_id,
            code: space.code.clone(),
            status,
            available: status == SpaceStatus::Active,
            qr_version: space.qr_version,
        },
        tariff,
        kid,
    }))
}
