//! Extractors that answer bad input in the problem format, and one per kind of caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::{ApiError, FieldError};
use crate::AppState;
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
            return Err(ApiError::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::problem(
                    StatusCode::BAD_REQUEST,
                    "body_unreadable",
                    "Body unreadable",
                    rejection.body_text(),
                )
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON body, naming the offending field's path on a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    result.map_err(|err| {
        let path = json_path(&err.path().to_string());
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::problem(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "Malformed JSON",
                    format!("the body is not valid JSON: {inner}"),
                )
            }
            serde_json::error::Category::Io | serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                if message.starts_with("unknown field") {
                    ApiError::problem(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown_field",
                        "Unknown field",
                        format!("{path}: {message}"),
                    )
                    .with(
                        "errors",
                        serde_json::json!([FieldError::new(path, message)]),
                    )
                } else {
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
            }
        }
    })
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
                "unauthorized",
                "send an operator API key as `Authorization: Bearer <key>`",
                OPERATOR_REALM,
            )
        })?;
        let invalid = || {
            ApiError::unauthorized(
                "api_key_invalid",
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
                "token_invalid",
                "sign in again with your city identity",
                CITY_REALM,
            )
        };
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "token_invalid",
                "send your city identity token as `Authorization: Bearer <token>`",
                CITY_REALM,
            ));
        };
        let Some(verifier) = &state.city else {
            tracing::warn!("a city identity token arrived but no city JWKS is configured");
            return Err(invalid());
        };
        match verifier.verify(token).await {
            Ok(identity) => Ok(Driver(identity)),
            Err(reason) => {
                // The reason helps whoever runs qrpark; an attacker learns nothing from it.
                tracing::info!(%reason, "refused a city identity token");
                Err(invalid())
            }
        }
    }
}

/// A city auditor: a city identity whose `roles` contain `auditor`.
#[derive(Debug, Clone)]
pub struct Auditor(pub CityIdentity);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Driver(identity) = Driver::from_request_parts(parts, state).await?;
        if identity.is_auditor() {
            Ok(Auditor(identity))
        } else {
            Err(ApiError::problem(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "this needs a city identity with the auditor role",
            ))
        }
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
