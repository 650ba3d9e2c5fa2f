//! Extractors that answer bad input in the problem format, and one per kind of caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, FieldError};
use crate::AppState;
use crate::domain::idempotency_key::IdempotencyKey;
use crate::identity::city::CityIdentity;
use crate::identity::operator_key;
use crate::store::operators;

/// A JSON body: 415 without a JSON content type, 413 over the size limit, 400 when it is not
/// JSON, 422 `unknown_field` or `validation_failed` (with the field's path) when it does not
/// fit the expected shape.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::new(ErrorCode::BodyUnreadable, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON body, naming the offending field's path on a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from a JSON array too, member by member in declaration order
    // (`["Lot", "UTC", "EUR"]` would create a lot). Every request body is an object, as the
    // OpenAPI document says: an array is refused once it is known to be JSON at all.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "$",
            "must be a JSON object",
        )]));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    result.map_err(|err| {
        let path = json_path(&err.path().to_string());
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON: {inner}"),
                )
            }
            serde_json::error::Category::Io | serde_json::error::Category::Data => {
                shape_problem(path, strip_position(&inner.to_string()))
            }
        }
    })
}

/// A member that does not fit the expected shape: 422 `unknown_field`, or
/// `validation_failed` naming the member's path.
fn shape_problem(path: String, message: String) -> ApiError {
    if message.starts_with("unknown field") {
        return ApiError::new(ErrorCode::UnknownField, format!("{path}: {message}")).with(
            "errors",
            serde_json::json!([FieldError::new(path, message)]),
        );
    }
    // "missing field `x`" is about the member `x`, not the object holding it.
    let path = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((field, _)) => format!("{path}.{field}"),
        None => path,
    };
    ApiError::validation(vec![FieldError::new(path, message)])
}

/// A query string: a member that does not parse is 422 `validation_failed` with its path
/// (`$.status`), an unknown one 422 `unknown_field` where the type denies them: the same
/// answers as a body, never axum's plain-text 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|err| {
                let path = json_path(&err.path().to_string());
                shape_problem(path, strip_position(&err.into_inner().to_string()))
            })
    }
}

/// An instant both databases store exactly: between 1970 and 9999, in whole microseconds
/// (PostgreSQL's precision). Anything else is a field error at `path`, never a database
/// error later.
pub fn storable_instant(
    at: chrono::DateTime<chrono::Utc>,
    path: &str,
) -> Result<chrono::DateTime<chrono::Utc>, FieldError> {
    use chrono::{Datelike, DurationRound};
    if !(1970..=9999).contains(&at.year()) {
        return Err(FieldError::new(
            path,
            "must lie between the years 1970 and 9999",
        ));
    }
    Ok(at
        .duration_trunc(chrono::TimeDelta::microseconds(1))
        .unwrap_or(at))
}

/// Checks each optional instant of a query with [`storable_instant`], in order.
pub fn storable_instants<const N: usize>(
    instants: [(&mut Option<chrono::DateTime<chrono::Utc>>, &str); N],
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (slot, path) in instants {
        if let Some(at) = *slot {
            match storable_instant(at, path) {
                Ok(exact) => *slot = Some(exact),
                Err(error) => errors.push(error),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// An instant written as RFC 3339 writes it, and as the OpenAPI document's `date-time` says:
/// four-digit years, `T` between date and time, an offset. chrono's own parsing is more
/// lenient (`+10000-01-01T00:00:00Z`, a space for the `T`), which the document does not
/// allow.
pub fn rfc3339(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if text.as_bytes().get(10) == Some(&b' ') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&chrono::Utc))
}

/// serde's reading of a strict RFC 3339 instant ([`rfc3339`]):
/// `#[serde(deserialize_with = "crate::http::extract::instant")]`.
pub fn instant<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<chrono::DateTime<chrono::Utc>, D::Error> {
    let text = String::deserialize(d)?;
    rfc3339(&text).ok_or_else(|| serde::de::Error::custom("must be an RFC 3339 instant"))
}

/// The same for an optional member: `#[serde(default, deserialize_with = "...")]`.
pub fn optional_instant<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| {
            rfc3339(&text).ok_or_else(|| serde::de::Error::custom("must be an RFC 3339 instant"))
        })
        .transpose()
}

/// Brings each optional instant of a filter into what both databases store: 1970 to 9999,
/// whole microseconds. Nothing is stored outside that range, so a filter bound outside it
/// selects the same as the range's own bound, and every RFC 3339 instant is a good filter.
pub fn clamp_instants<const N: usize>(instants: [&mut Option<chrono::DateTime<chrono::Utc>>; N]) {
    use chrono::{DurationRound, NaiveDate, TimeZone, Utc};
    let first = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid instant"),
    );
    let last = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
            .expect("a valid instant"),
    );
    for at in instants.into_iter().flatten() {
        let exact = at
            .duration_trunc(chrono::TimeDelta::microseconds(1))
            .unwrap_or(*at);
        *at = exact.clamp(first, last);
    }
}

/// serde_path_to_error writes `codes[2]` or `.` for the root; we write `$.codes[2]` or `$`.
fn json_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        "$".to_owned()
    } else if path.starts_with('[') {
        format!("${path}")
    } else {
        format!("$.{path}")
    }
}

/// serde_json appends " at line 1 column 42", which means nothing to an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5]
                .to_ascii_lowercase()
                .starts_with("application/")
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// A UUID in the path; anything else is 404, since no such resource can exist.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("resource"))?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The `Idempotency-Key` header: required (400 `idempotency_key_required`), and 1 to 255
/// visible ASCII characters (400 `idempotency_key_invalid`).
impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::new(
                ErrorCode::IdempotencyKeyRequired,
                "send an `Idempotency-Key` header (a fresh random value per tap of Start)",
            )
        })?;
        let key = value.to_str().ok().map(str::trim).unwrap_or("");
        // Structured-header strings are quoted; accept a quoted or a bare value.
        let key = key
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(key);
        IdempotencyKey::parse(key)
            .map_err(|invalid| ApiError::new(ErrorCode::IdempotencyKeyInvalid, invalid.to_string()))
    }
}

/// The lot operator whose API key authenticated this request.
#[derive(Debug, Clone, Copy)]
pub struct Operator {
    pub operator_id: Uuid,
    pub operator_key_id: Uuid,
}

const OPERATOR_REALM: &str = "qrpark-operator";

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                ErrorCode::Unauthorized,
                "send an operator API key as `Authorization: Bearer <key>`",
                OPERATOR_REALM,
            )
        })?;
        let invalid = || {
            ApiError::unauthorized(
                ErrorCode::ApiKeyInvalid,
                "the API key is unknown or revoked",
                OPERATOR_REALM,
            )
        };
        if !operator_key::looks_like_key(key) {
            return Err(invalid());
        }
        let owner = operators::authenticate(&state.db, &operator_key::hash(key))
            .await?
            .ok_or_else(invalid)?;
        Ok(Operator {
            operator_id: owner.operator_id,
            operator_key_id: owner.operator_key_id,
        })
    }
}

/// A driver, proven by a city identity token.
#[derive(Debug, Clone)]
pub struct Driver(pub CityIdentity);

const CITY_REALM: &str = "qrpark";

impl FromRequestParts<AppState> for Driver {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let invalid = || {
            ApiError::unauthorized(
                ErrorCode::TokenInvalid,
                "sign in again with your city identity",
                CITY_REALM,
            )
        };
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                ErrorCode::TokenInvalid,
                "send your city identity token as `Authorization: Bearer <token>`",
                CITY_REALM,
            ));
        };
        let Some(verifier) = &state.city else {
            tracing::warn!("a city identity token arrived but no city JWKS is configured");
            return Err(invalid());
        };
        match verifier.verify(token).await {
            Ok(identity) => {
                state.limits.check_identity(&identity.subject)?;
                Ok(Driver(identity))
            }
            Err(reason) => {
                // The reason helps whoever runs qrpark; an attacker learns nothing from it.
                tracing::info!(%reason, "refused a city identity token");
                Err(invalid())
            }
        }
    }
}

/// A city identity holding one of `roles`; 401 without a good token, 403 without the role.
async fn with_role(
    parts: &mut Parts,
    state: &AppState,
    roles: &[&str],
    needs: &str,
) -> Result<CityIdentity, ApiError> {
    let Driver(identity) = Driver::from_request_parts(parts, state).await?;
    if identity.roles.iter().any(|r| roles.contains(&r.as_str())) {
        Ok(identity)
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this needs a city identity with {needs}"),
        ))
    }
}

/// A city auditor: a city identity whose `roles` contain `auditor`.
#[derive(Debug, Clone)]
pub struct Auditor(pub CityIdentity);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_role(parts, state, &["auditor"], "the auditor role")
            .await
            .map(Auditor)
    }
}

/// A city warden (enforcement officer): a city identity whose `roles` contain `warden`.
/// Wardens work city-wide, across every operator's lots.
#[derive(Debug, Clone)]
pub struct Warden(pub CityIdentity);

impl FromRequestParts<AppState> for Warden {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_role(parts, state, &["warden"], "the warden role")
            .await
            .map(Warden)
    }
}

/// A warden or an auditor: who may read the violations recorded.
#[derive(Debug, Clone)]
pub struct WardenOrAuditor(pub CityIdentity);

impl FromRequestParts<AppState> for WardenOrAuditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_role(
            parts,
            state,
            &["warden", "auditor"],
            "the warden or the auditor role",
        )
        .await
        .map(WardenOrAuditor)
    }
}

/// The credential of an `Authorization: Bearer ...` header, if there is one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_json_paths() {
        assert_eq!(json_path("."), "$");
        assert_eq!(json_path("codes[2]"), "$.codes[2]");
        assert_eq!(json_path("rules[0].price"), "$.rules[0].price");
    }

    #[test]
    fn positions_are_stripped() {
        assert_eq!(
            strip_position("unknown field `x`, expected `name` at line 1 column 9"),
            "unknown field `x`, expected `name`"
        );
    }
}
