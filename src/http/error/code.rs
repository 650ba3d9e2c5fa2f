//! The vocabulary of problems: every stable `code` an answer can carry, with its status, its
//! title and what it means. Handlers name a variant; the OpenAPI document, the README's table
//! and the phone page's messages are checked against this list.

use std::borrow::Cow;

use axum::http::StatusCode;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A kind of problem, answered as `urn:qrpark:problem:{code}` with a fixed status and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: the body could not be read.
    BodyUnreadable,
    /// 400: starting a session without an `Idempotency-Key` header.
    IdempotencyKeyRequired,
    /// 400: an `Idempotency-Key` that is not 1 to 255 visible ASCII characters.
    IdempotencyKeyInvalid,
    /// 400: a scanned token that is forged, tampered, unsigned, foreign or garbage.
    QrInvalid,
    /// 401: no credential.
    Unauthorized,
    /// 401: an unknown or revoked operator API key.
    ApiKeyInvalid,
    /// 401: a missing or bad city identity token.
    TokenInvalid,
    /// 402: a start by a driver with more sessions in arrears than allowed.
    ArrearsOutstanding,
    /// 403: a city identity without the role the route needs.
    Forbidden,
    /// 404: no such route, or no such resource of the caller's.
    NotFound,
    /// 404: reading a lot's tariff before one is published.
    TariffNotPublished,
    /// 405: the path does not take this method.
    MethodNotAllowed,
    /// 409: another session is active on the space.
    SpaceOccupied,
    /// 409: the space is out of service.
    SpaceOutOfService,
    /// 409: the lot has no tariff, so nothing can be priced or started.
    NoTariff,
    /// 409: a request with the same `Idempotency-Key` is still running.
    IdempotencyKeyInFlight,
    /// 409: a receipt asked for before the session stopped.
    SessionActive,
    /// 409: a proof of parking asked for once the session stopped.
    SessionNotActive,
    /// 409: the driver already holds the most active sessions allowed.
    TooManyActiveSessions,
    /// 409: a violation recorded for a vehicle that has paid for the space.
    SpacePaid,
    /// 409: a refund of a fee that was not collected (pending, arrears or review).
    SettlementNotSettled,
    /// 409: paying again a payment the city's payment office is reviewing.
    SettlementInReview,
    /// 409: the operator already has a lot with this name.
    LotNameTaken,
    /// 409: the lot already has spaces with these codes.
    SpaceCodeTaken,
    /// 409: an operator with this name exists.
    OperatorNameTaken,
    /// 409: another tariff was published for the lot at the same moment.
    TariffConflict,
    /// 410: a scanned code that the operator has replaced.
    QrRevoked,
    /// 413: a body over `max_body_bytes`.
    PayloadTooLarge,
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 422: the same `Idempotency-Key` with another request body.
    IdempotencyKeyReused,
    /// 422: a member the request does not know.
    UnknownField,
    /// 422: fields that do not validate, each with its JSON path.
    ValidationFailed,
    /// 422: a tariff document with problems, each with its JSON path.
    TariffInvalid,
    /// 422: a start without a plate on a lot that requires one.
    PlateRequired,
    /// 422: refunds that would give back more than the session was charged.
    RefundExceedsCharge,
    /// 429: a client address or city identity over its rate limit (with `Retry-After`).
    RateLimited,
    /// 500: a bug, logged with its cause and answered without it.
    Internal,
    /// 503: the database does not answer.
    Unavailable,
}

impl ErrorCode {
    /// Every code, in the order of their statuses.
    pub const ALL: [ErrorCode; 39] = [
        Self::MalformedJson,
        Self::BodyUnreadable,
        Self::IdempotencyKeyRequired,
        Self::IdempotencyKeyInvalid,
        Self::QrInvalid,
        Self::Unauthorized,
        Self::ApiKeyInvalid,
        Self::TokenInvalid,
        Self::ArrearsOutstanding,
        Self::Forbidden,
        Self::NotFound,
        Self::TariffNotPublished,
        Self::MethodNotAllowed,
        Self::SpaceOccupied,
        Self::SpaceOutOfService,
        Self::NoTariff,
        Self::IdempotencyKeyInFlight,
        Self::SessionActive,
        Self::SessionNotActive,
        Self::TooManyActiveSessions,
        Self::SpacePaid,
        Self::SettlementNotSettled,
        Self::SettlementInReview,
        Self::LotNameTaken,
        Self::SpaceCodeTaken,
        Self::OperatorNameTaken,
        Self::TariffConflict,
        Self::QrRevoked,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::UnknownField,
        Self::ValidationFailed,
        Self::TariffInvalid,
        Self::PlateRequired,
        Self::RefundExceedsCharge,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The stable machine-readable code.
    pub const fn code(self) -> &'static str {
        self.facts().0
    }

    /// The HTTP status every answer with this code carries.
    pub const fn status(self) -> StatusCode {
        self.facts().1
    }

    /// The short, fixed title of the problem.
    pub const fn title(self) -> &'static str {
        self.facts().2
    }

    /// When the code is answered, for the OpenAPI document and the docs.
    pub const fn description(self) -> &'static str {
        self.facts().3
    }

    const fn facts(self) -> (&'static str, StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::MalformedJson => (
                "malformed_json",
                S::BAD_REQUEST,
                "Malformed JSON",
                "the body is not JSON",
            ),
            Self::BodyUnreadable => (
                "body_unreadable",
                S::BAD_REQUEST,
                "Body unreadable",
                "the body could not be read",
            ),
            Self::IdempotencyKeyRequired => (
                "idempotency_key_required",
                S::BAD_REQUEST,
                "Idempotency-Key required",
                "starting a session needs an `Idempotency-Key` header",
            ),
            Self::IdempotencyKeyInvalid => (
                "idempotency_key_invalid",
                S::BAD_REQUEST,
                "Idempotency-Key invalid",
                "the `Idempotency-Key` is not 1 to 255 visible ASCII characters",
            ),
            Self::QrInvalid => (
                "qr_invalid",
                S::BAD_REQUEST,
                "QR code invalid",
                "a scanned token that is forged, tampered, unsigned, foreign, oversized or garbage",
            ),
            Self::Unauthorized => (
                "unauthorized",
                S::UNAUTHORIZED,
                "Unauthorized",
                "no operator API key (with `WWW-Authenticate`)",
            ),
            Self::ApiKeyInvalid => (
                "api_key_invalid",
                S::UNAUTHORIZED,
                "Unauthorized",
                "an unknown or revoked operator API key (with `WWW-Authenticate`)",
            ),
            Self::TokenInvalid => (
                "token_invalid",
                S::UNAUTHORIZED,
                "Unauthorized",
                "a missing or bad city identity token (with `WWW-Authenticate`; the reason is logged, not answered)",
            ),
            Self::Forbidden => (
                "forbidden",
                S::FORBIDDEN,
                "Forbidden",
                "a city identity without the role the route needs",
            ),
            Self::NotFound => (
                "not_found",
                S::NOT_FOUND,
                "Not found",
                "no such route, or no such resource of the caller's",
            ),
            Self::TariffNotPublished => (
                "no_tariff",
                S::NOT_FOUND,
                "No tariff",
                "reading a lot's tariff before one is published",
            ),
            Self::MethodNotAllowed => (
                "method_not_allowed",
                S::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "the path does not take this method (with an `Allow` header)",
            ),
            Self::SpaceOccupied => (
                "space_occupied",
                S::CONFLICT,
                "Space occupied",
                "another session is active on the space",
            ),
            Self::SpaceOutOfService => (
                "space_out_of_service",
                S::CONFLICT,
                "Space out of service",
                "the space is out of service",
            ),
            Self::NoTariff => (
                "no_tariff",
                S::CONFLICT,
                "No tariff",
                "the lot has no tariff yet, so nothing can be priced or started",
            ),
            Self::IdempotencyKeyInFlight => (
                "idempotency_key_in_flight",
                S::CONFLICT,
                "Request in progress",
                "a request with this `Idempotency-Key` is still running",
            ),
            Self::SessionActive => (
                "session_active",
                S::CONFLICT,
                "Session active",
                "the session is still active: receipts, arrears payments and refunds exist once it is stopped",
            ),
            Self::SessionNotActive => (
                "session_not_active",
                S::CONFLICT,
                "Session not active",
                "the session has stopped, so there is no proof of parking for it",
            ),
            Self::TooManyActiveSessions => (
                "too_many_active_sessions",
                S::CONFLICT,
                "Too many active sessions",
                "the driver already holds `QRPARK_MAX_ACTIVE_SESSIONS` active sessions",
            ),
            Self::ArrearsOutstanding => (
                "arrears_outstanding",
                S::PAYMENT_REQUIRED,
                "Arrears outstanding",
                "the driver has more sessions in arrears than `QRPARK_MAX_UNPAID_SESSIONS`: pay them first (listed in `arrears`)",
            ),
            Self::SettlementNotSettled => (
                "settlement_not_settled",
                S::CONFLICT,
                "Fee not collected",
                "the session's fee is pending, in arrears or in review: nothing was collected to refund yet",
            ),
            Self::SettlementInReview => (
                "settlement_in_review",
                S::CONFLICT,
                "Payment in review",
                "the city's payment office is reviewing this payment (it may have been charged): it is not sent again",
            ),
            Self::RefundExceedsCharge => (
                "refund_exceeds_charge",
                S::UNPROCESSABLE_ENTITY,
                "Refund exceeds charge",
                "with the refunds already made this would give back more than the session was charged",
            ),
            Self::SpacePaid => (
                "space_paid",
                S::CONFLICT,
                "Space paid",
                "the space holds an active session for this plate: no violation",
            ),
            Self::PlateRequired => (
                "plate_required",
                S::UNPROCESSABLE_ENTITY,
                "Plate required",
                "the lot requires the vehicle's plate to start a session",
            ),
            Self::LotNameTaken => (
                "lot_name_taken",
                S::CONFLICT,
                "Conflict",
                "the operator already has a lot with this name",
            ),
            Self::SpaceCodeTaken => (
                "space_code_taken",
                S::CONFLICT,
                "Conflict",
                "the lot already has spaces with these codes (listed in `codes`)",
            ),
            Self::OperatorNameTaken => (
                "operator_name_taken",
                S::CONFLICT,
                "Conflict",
                "an operator with this name exists",
            ),
            Self::TariffConflict => (
                "tariff_conflict",
                S::CONFLICT,
                "Conflict",
                "another tariff was published for the lot at the same moment",
            ),
            Self::QrRevoked => (
                "qr_revoked",
                S::GONE,
                "QR code revoked",
                "a scanned code that the operator has replaced",
            ),
            Self::PayloadTooLarge => (
                "payload_too_large",
                S::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "the body is larger than `max_body_bytes`",
            ),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                S::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                "a body that is not `application/json`",
            ),
            Self::IdempotencyKeyReused => (
                "idempotency_key_reused",
                S::UNPROCESSABLE_ENTITY,
                "Idempotency-Key reused",
                "the same `Idempotency-Key` with another request body",
            ),
            Self::UnknownField => (
                "unknown_field",
                S::UNPROCESSABLE_ENTITY,
                "Unknown field",
                "a member the request does not know, with its path in `errors`",
            ),
            Self::ValidationFailed => (
                "validation_failed",
                S::UNPROCESSABLE_ENTITY,
                "Validation failed",
                "fields that do not validate, each with its JSON path in `errors`",
            ),
            Self::TariffInvalid => (
                "tariff_invalid",
                S::UNPROCESSABLE_ENTITY,
                "Tariff invalid",
                "a tariff document with problems, each with its JSON path in `errors`",
            ),
            Self::RateLimited => (
                "rate_limited",
                S::TOO_MANY_REQUESTS,
                "Too many requests",
                "a client address or city identity over its rate limit; `Retry-After` says when to try again",
            ),
            Self::Internal => (
                "internal",
                S::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "a failure on the server's side, logged with the request id",
            ),
            Self::Unavailable => (
                "unavailable",
                S::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "the database does not answer, or the request ran past its deadline",
            ),
        }
    }

    /// The variant answered as `code` with `status`, if there is one.
    pub fn find(code: &str, status: StatusCode) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == code && c.status() == status)
    }
}

/// The OpenAPI schema of `code`: every code, with its status and meaning.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let mut codes: Vec<&str> = Vec::new();
        let mut description = String::from("A stable machine-readable code:\n");
        for code in ErrorCode::ALL {
            if !codes.contains(&code.code()) {
                codes.push(code.code());
            }
            description.push_str(&format!(
                "\n- `{}` ({}): {}",
                code.code(),
                code.status().as_u16(),
                code.description()
            ));
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some(description))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProblemCode")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::ErrorCode;

    #[test]
    fn every_variant_is_listed_once() {
        // The match fails to compile when a variant is added, reminding to list it in ALL.
        let listed = |code: ErrorCode| match code {
            ErrorCode::MalformedJson
            | ErrorCode::BodyUnreadable
            | ErrorCode::IdempotencyKeyRequired
            | ErrorCode::IdempotencyKeyInvalid
            | ErrorCode::QrInvalid
            | ErrorCode::Unauthorized
            | ErrorCode::ApiKeyInvalid
            | ErrorCode::TokenInvalid
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::TariffNotPublished
            | ErrorCode::MethodNotAllowed
            | ErrorCode::SpaceOccupied
            | ErrorCode::SpaceOutOfService
            | ErrorCode::NoTariff
            | ErrorCode::IdempotencyKeyInFlight
            | ErrorCode::SessionActive
            | ErrorCode::SessionNotActive
            | ErrorCode::TooManyActiveSessions
            | ErrorCode::SpacePaid
            | ErrorCode::ArrearsOutstanding
            | ErrorCode::SettlementNotSettled
            | ErrorCode::SettlementInReview
            | ErrorCode::RefundExceedsCharge
            | ErrorCode::PlateRequired
            | ErrorCode::LotNameTaken
            | ErrorCode::SpaceCodeTaken
            | ErrorCode::OperatorNameTaken
            | ErrorCode::TariffConflict
            | ErrorCode::QrRevoked
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::IdempotencyKeyReused
            | ErrorCode::UnknownField
            | ErrorCode::ValidationFailed
            | ErrorCode::TariffInvalid
            | ErrorCode::RateLimited
            | ErrorCode::Internal
            | ErrorCode::Unavailable => 39,
        };
        let distinct: HashSet<_> = ErrorCode::ALL.into_iter().collect();
        assert_eq!(distinct.len(), listed(ErrorCode::Internal));
    }

    #[test]
    fn a_code_and_its_status_name_one_variant() {
        let pairs: HashSet<_> = ErrorCode::ALL
            .into_iter()
            .map(|c| (c.code(), c.status()))
            .collect();
        assert_eq!(pairs.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::find(code.code(), code.status()), Some(code));
            assert!(
                code.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    /// The codes a text names in backticks (`like_this`), as the OpenAPI descriptions do.
    fn backticked(text: &str) -> Vec<&str> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .filter(|word| word.contains('_') || ErrorCode::ALL.iter().any(|c| c.code() == *word))
            .collect()
    }

    #[test]
    fn every_code_the_openapi_document_names_is_answered_with_that_status() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let mut named = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    let status: u16 = status.parse().unwrap();
                    let description = response["description"].as_str().unwrap_or("");
                    if status < 400 {
                        continue;
                    }
                    for code in backticked(description) {
                        let status = axum::http::StatusCode::from_u16(status).unwrap();
                        assert!(
                            ErrorCode::find(code, status).is_some(),
                            "{method} {path}: `{code}` is documented under {status} but no \
                             ErrorCode answers it so"
                        );
                        named += 1;
                    }
                }
            }
        }
        assert!(
            named > 10,
            "the descriptions name the codes ({named} found)"
        );
    }

    #[test]
    fn every_code_the_pages_explain_exists() {
        let phone = include_str!("../pages/assets/page.js");
        let warden = include_str!("../pages/assets/warden.js");
        let mut explained = 0;
        for (script, quoted) in [phone, warden]
            .into_iter()
            .flat_map(|s| s.split('"').skip(1).step_by(2).map(move |q| (s, q)))
        {
            let is_code =
                quoted.contains('_') && quoted.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let near_code = script.contains(&format!("case \"{quoted}\""))
                || script.contains(&format!("code === \"{quoted}\""))
                || script.contains(&format!("code !== \"{quoted}\""));
            if is_code && near_code {
                assert!(
                    ErrorCode::ALL.iter().any(|c| c.code() == quoted),
                    "a page's script explains `{quoted}`, which no answer carries"
                );
                explained += 1;
            }
        }
        assert!(
            explained >= 8,
            "the scripts explain the codes ({explained} found)"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_code_with_its_meaning() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let schema = &doc["components"]["schemas"]["ProblemCode"];
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let description = schema["description"].as_str().unwrap();
        for code in ErrorCode::ALL {
            assert!(
                listed.contains(&code.code()),
                "{} not in the enum",
                code.code()
            );
            assert!(description.contains(code.description()), "{:?}", code);
        }
        assert_eq!(
            doc["components"]["schemas"]["Problem"]["properties"]["code"]["$ref"],
            "#/components/schemas/ProblemCode"
        );
    }
}
