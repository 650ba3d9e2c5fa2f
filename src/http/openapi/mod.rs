//! What makes the OpenAPI document exact beyond each handler's own `#[utoipa::path]`: the
//! problems the shared extractors answer on every route that uses them, and the schemas of
//! the inputs whose rules live in the domain (so that the document states exactly what the
//! validation accepts, never looser, never stricter).
//!
//! `.ci/schemathesis` checks the result against a running server.

mod tariff;

pub use tariff::TariffDocument;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::error::PROBLEM_JSON;
use crate::domain::currency::Currency;
use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::lot::{MAX_ADDRESS, MAX_NAME};
use crate::domain::space::{CODE_PATTERN, MAX_CODE};
use crate::domain::timezone::TimeZone;

/// Adds to every operation the problems its extractors answer, whatever the handler:
///
/// - a JSON body ([`super::extract::Json`]): 400 `malformed_json`, `body_unreadable`; 413
///   `payload_too_large`; 415 `unsupported_media_type`; 422 `unknown_field`,
///   `validation_failed`;
/// - query parameters ([`super::extract::Query`]): 422 `unknown_field`, `validation_failed`;
/// - path parameters: 404 `not_found` (a malformed id names nothing; an empty segment no route);
/// - an `Idempotency-Key` header: 400 `idempotency_key_required`, `idempotency_key_invalid`,
///   and the key's pattern;
/// - an operator API key: 401 `unauthorized`, `api_key_invalid`;
/// - a city identity: 401 `token_invalid`, and 403 `forbidden` where a role is needed (the
///   `audit` and `enforcement` tags).
///
/// Where the handler already lists the status, the missing codes are added to its description.
pub struct ProblemsDoc;

impl utoipa::Modify for ProblemsDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (_, operation) in operations_mut(openapi) {
            for (status, codes, why) in problems_of(operation) {
                add_problem(operation, status, codes, why);
            }
            describe_idempotency_key(operation);
        }
    }
}

/// Every operation of the document, with its path.
pub(crate) fn operations_mut(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&str, &mut Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        .map(move |operation| (path.as_str(), operation))
    })
}

/// The statuses and codes the extractors of `operation` can answer.
fn problems_of(
    operation: &Operation,
) -> Vec<(&'static str, &'static [&'static str], &'static str)> {
    let mut problems = Vec::new();
    let parameters: Vec<(ParameterIn, String)> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some((p.parameter_in.clone(), p.name.clone())),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has = |place: ParameterIn| parameters.iter().any(|(at, _)| *at == place);
    if operation.request_body.is_some() {
        problems.push((
            "400",
            &["malformed_json", "body_unreadable"][..],
            "the body is not JSON, or could not be read",
        ));
        problems.push((
            "413",
            &["payload_too_large"][..],
            "the body is larger than this server accepts",
        ));
        problems.push((
            "415",
            &["unsupported_media_type"][..],
            "the body is not sent as `application/json`",
        ));
        problems.push((
            "422",
            &["unknown_field", "validation_failed"][..],
            "a member that is not known or does not validate, with its path in `errors`",
        ));
    }
    if has(ParameterIn::Query) {
        problems.push((
            "422",
            &["unknown_field", "validation_failed"][..],
            "a query parameter that is not known or does not validate, with its path in `errors`",
        ));
    }
    if has(ParameterIn::Path) {
        problems.push((
            "404",
            &["not_found"][..],
            "nothing of yours has this id (or no route has this path)",
        ));
    }
    if parameters
        .iter()
        .any(|(at, name)| *at == ParameterIn::Header && name == "Idempotency-Key")
    {
        problems.push((
            "400",
            &["idempotency_key_required", "idempotency_key_invalid"][..],
            "no `Idempotency-Key`, or one that is not 1 to 255 visible ASCII characters",
        ));
    }
    let security = serde_json::to_string(&operation.security).unwrap_or_default();
    if security.contains("operator_key") {
        problems.push((
            "401",
            &["unauthorized", "api_key_invalid"][..],
            "no operator API key, or an unknown or revoked one",
        ));
    }
    if security.contains("city_identity") {
        problems.push((
            "401",
            &["token_invalid"][..],
            "no city identity token, or one that does not verify",
        ));
        let tags = operation.tags.iter().flatten();
        if tags
            .into_iter()
            .any(|tag| tag == "audit" || tag == "enforcement")
        {
            problems.push((
                "403",
                &["forbidden"][..],
                "the city identity lacks the role this needs",
            ));
        }
    }
    problems
}

/// Documents `codes` under `status` as problem JSON, or adds the codes its description lacks.
fn add_problem(operation: &mut Operation, status: &str, codes: &[&str], why: &str) {
    let named = |code: &str| format!("`{code}`");
    let responses = &mut operation.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(response)) => {
            let missing: Vec<String> = codes
                .iter()
                .filter(|code| !response.description.contains(&named(code)))
                .map(|code| named(code))
                .collect();
            if !missing.is_empty() {
                response.description = format!("{}; {}", response.description, missing.join(", "));
            }
            response
                .content
                .entry(PROBLEM_JSON.to_owned())
                .or_insert_with(problem_content);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let codes: Vec<String> = codes.iter().map(|code| named(code)).collect();
            let response = ResponseBuilder::new()
                .description(format!("{}: {why}", codes.join(", ")))
                .content(PROBLEM_JSON, problem_content_inner())
                .build();
            responses.insert(status.to_owned(), response.into());
        }
    }
}

fn problem_content_inner() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn problem_content() -> RefOr<utoipa::openapi::Content> {
    RefOr::T(problem_content_inner())
}

/// The `Idempotency-Key` header's schema: what [`IdempotencyKey::parse`] accepts.
fn describe_idempotency_key(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.parameter_in == ParameterIn::Header
            && parameter.name == "Idempotency-Key"
        {
            parameter.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(IdempotencyKey::PATTERN))
                    .min_length(Some(1))
                    .max_length(Some(IdempotencyKey::MAX_LEN))
                    .into(),
            );
        }
    }
}

/// A string schema, or a string-or-null one.
fn string(nullable: bool) -> ObjectBuilder {
    let kind: SchemaType = if nullable {
        [Type::String, Type::Null].into_iter().collect()
    } else {
        Type::String.into()
    };
    ObjectBuilder::new().schema_type(kind)
}

/// A one-line human text of 1 to `max` characters ([`crate::domain::text::check_line`]).
fn line(max: usize, nullable: bool) -> Object {
    string(nullable)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(crate::domain::text::LINE_PATTERN.as_str()))
        .build()
}

/// A lot's name ([`crate::domain::lot::LotName`]).
pub fn lot_name() -> Object {
    line(MAX_NAME, false)
}

/// A lot's new name, or `null` for no change.
pub fn lot_name_or_null() -> Object {
    line(MAX_NAME, true)
}

/// A lot's address, or `null` for none.
pub fn address_or_null() -> Object {
    line(MAX_ADDRESS, true)
}

/// A note of 1 to 500 characters that may span lines ([`crate::domain::text::check_note`]).
pub fn note() -> Object {
    note_schema(false)
}

/// A note, or `null` for none.
pub fn note_or_null() -> Object {
    note_schema(true)
}

fn note_schema(nullable: bool) -> Object {
    string(nullable)
        .min_length(Some(1))
        .max_length(Some(500))
        .pattern(Some(crate::domain::text::NOTE_PATTERN.as_str()))
        .build()
}

/// An IANA time zone name ([`TimeZone::parse`]).
pub fn timezone() -> Object {
    string(false)
        .enum_values(Some(TimeZone::names()))
        .examples(["Asia/Shanghai"])
        .build()
}

/// An ISO 4217 currency code with a minor unit ([`Currency::parse`]).
pub fn currency() -> Object {
    string(false)
        .enum_values(Some(Currency::codes()))
        .examples(["CNY"])
        .build()
}

/// A space code ([`crate::domain::space::SpaceCode::parse`]).
pub fn space_code() -> Object {
    string(false)
        .min_length(Some(1))
        .max_length(Some(MAX_CODE))
        .pattern(Some(CODE_PATTERN))
        .build()
}

/// A vehicle's plate as typed ([`crate::domain::plate::Plate::parse`]).
pub fn plate() -> Object {
    plate_schema(false)
}

/// A plate, or `null` for none.
pub fn plate_or_null() -> Object {
    plate_schema(true)
}

fn plate_schema(nullable: bool) -> Object {
    string(nullable)
        .pattern(Some(crate::domain::plate::PATTERN.as_str()))
        .examples(["沪A12345"])
        .build()
}

/// An RFC 3339 instant, or `null`.
pub fn instant_or_null() -> Object {
    string(true)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// A space's status: `active`, or `out_of_service` (parking cannot start there).
pub fn space_status() -> Object {
    use crate::domain::space::SpaceStatus;
    string(false)
        .enum_values(Some(
            [SpaceStatus::Active, SpaceStatus::OutOfService].map(|s| s.as_str()),
        ))
        .build()
}

/// Shapes that one schema object cannot say and the validation enforces: a violation names
/// its space by exactly one of `qr` and `space_id`.
pub struct ShapesDoc;

impl utoipa::Modify for ShapesDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AllOfBuilder, OneOfBuilder, Schema};

        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(violation) = components.schemas.get_mut("NewViolation") else {
            return;
        };
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let by = |given: &str, given_schema: ObjectBuilder, other: &str| {
            ObjectBuilder::new()
                .property(given, given_schema)
                .required(given)
                .property(other, null())
        };
        let one_of = OneOfBuilder::new()
            .item(by("qr", string(false), "space_id"))
            .item(by(
                "space_id",
                string(false).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                "qr",
            ))
            .description(Some("exactly one of `qr` and `space_id`"));
        let object = std::mem::replace(violation, RefOr::T(Schema::default()));
        *violation = AllOfBuilder::new().item(object).item(one_of).into();
    }
}

/// An RFC 3339 instant.
pub fn instant() -> Object {
    string(false)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// A session's status: `active` or `stopped`.
pub fn session_status() -> Object {
    use crate::domain::session::SessionStatus;
    string(false)
        .enum_values(Some(SessionStatus::ALL.iter().map(|s| s.as_str())))
        .build()
}

/// The format of the operator's metrics: `json` or `csv`.
pub fn metrics_format() -> Object {
    string(false).enum_values(Some(["json", "csv"])).build()
}

/// The format of an audit export: `jsonl` or `csv`.
pub fn export_format() -> Object {
    string(false).enum_values(Some(["jsonl", "csv"])).build()
}
