//! The one error type of the HTTP layer, answered as RFC 9457 problem JSON with a stable
//! `code` from [`ErrorCode`]. A 500 is logged with its cause and answered without it.

mod code;

pub use code::ErrorCode;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::qr::resolve::Refusal;
use crate::store::{Constraint, StoreError};

/// A problem to report to the client, or an internal failure to log and hide.
#[derive(Debug)]
pub enum ApiError {
    /// A client-facing problem with its status and stable code.
    Problem(Box<Problem>),
    /// A failure on our side (500): logged with its cause, answered without it.
    Internal(anyhow::Error),
    /// The database did not answer in time or at all (503).
    Unavailable(anyhow::Error),
}

/// The content of a problem answer.
#[derive(Debug)]
pub struct Problem {
    pub code: ErrorCode,
    pub detail: String,
    /// Extra members (such as `errors`) merged into the body.
    pub extensions: Map<String, Value>,
    /// A `WWW-Authenticate` challenge for 401 answers.
    pub challenge: Option<String>,
    /// Other headers of the answer (`Retry-After` of a 429).
    pub headers: HeaderMap,
}

/// One field that failed validation, named by its JSON path (`$.codes[2]`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    /// A problem with the field at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The problem JSON body (RFC 9457), as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// A URI naming the kind of problem: `urn:qrpark:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, fixed summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// A stable machine-readable code (`validation_failed`, `not_found`, `space_code_taken`...).
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// Every invalid field, for `validation_failed`, `unknown_field` and `tariff_invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// A client problem with no extra members.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Problem(Box::new(Problem {
            code,
            detail: detail.into(),
            extensions: Map::new(),
            challenge: None,
            headers: HeaderMap::new(),
        }))
    }

    /// Adds a member to the problem body (ignored for internal errors).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if let Self::Problem(problem) = &mut self {
            problem.extensions.insert(key.to_owned(), value);
        }
        self
    }

    /// Adds a header to the answer (ignored for internal errors).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Self::Problem(problem) = &mut self {
            problem.headers.insert(name, value);
        }
        self
    }

    /// 404 for something that does not exist or is not the caller's to see.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.path, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(ErrorCode::ValidationFailed, detail).with("errors", json!(errors))
    }

    /// 401 with a Bearer challenge.
    pub fn unauthorized(code: ErrorCode, detail: &str, realm: &str) -> Self {
        debug_assert_eq!(code.status(), StatusCode::UNAUTHORIZED);
        let challenge = if code == ErrorCode::Unauthorized {
            format!("Bearer realm=\"{realm}\"")
        } else {
            format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
        };
        let mut error = Self::new(code, detail);
        if let Self::Problem(problem) = &mut error {
            problem.challenge = Some(challenge);
        }
        error
    }

    /// 500 for a failure on our side.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The one place where schema constraints become answers.
        let (code, detail) = match err {
            StoreError::Conflict(Constraint::LotName) => (
                ErrorCode::LotNameTaken,
                "you already have a lot with this name",
            ),
            StoreError::Conflict(Constraint::SpaceCode) => (
                ErrorCode::SpaceCodeTaken,
                "a space with this code exists in this lot",
            ),
            StoreError::Conflict(Constraint::OperatorName) => (
                ErrorCode::OperatorNameTaken,
                "an operator with this name exists",
            ),
            StoreError::Conflict(Constraint::TariffVersion) => (
                ErrorCode::TariffConflict,
                "another tariff was published for this lot at the same moment; try again",
            ),
            StoreError::Conflict(Constraint::ActiveSessionPerSpace) => SPACE_OCCUPIED,
            StoreError::Conflict(Constraint::ActiveSessionsPerDriver) => TOO_MANY_ACTIVE_SESSIONS,
            StoreError::Conflict(other @ Constraint::OperatorKeyHash) => {
                return Self::internal(anyhow::anyhow!("unexpected conflict: {other:?}"));
            }
            StoreError::Database(db) if crate::store::is_unavailable(&db) => {
                return Self::Unavailable(db.into());
            }
            StoreError::Database(db) => return Self::Internal(db.into()),
        };
        Self::new(code, detail)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // Through the store's classification, so no caller can skip it.
        Self::from(StoreError::from(err))
    }
}

/// What a start on a space with an active session answers.
pub const SPACE_OCCUPIED: (ErrorCode, &str) = (
    ErrorCode::SpaceOccupied,
    "someone is already parked on this space",
);

/// What a start beyond the driver's cap on active sessions answers.
pub const TOO_MANY_ACTIVE_SESSIONS: (ErrorCode, &str) = (
    ErrorCode::TooManyActiveSessions,
    "you already have the most active sessions allowed: stop one first",
);

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::Problem(Box::new(refusal.into()))
    }
}

impl From<Refusal> for Problem {
    /// How every API answers a scanned code that must not be paid through.
    fn from(refusal: Refusal) -> Self {
        let (code, detail) = match refusal {
            Refusal::Forged => (
                ErrorCode::QrInvalid,
                "this code is not a genuine qrpark code: do not pay through this code, and \
                 tell the lot's operator",
            ),
            Refusal::NoSpace => (
                ErrorCode::QrInvalid,
                "this code names no space: do not pay through this code, and tell the lot's \
                 operator",
            ),
            Refusal::Revoked => (
                ErrorCode::QrRevoked,
                "this code was replaced by the operator: do not pay through it, and look for \
                 the space's current code",
            ),
        };
        Self::bare(code, detail)
    }
}

impl From<anyhow::Error> for ApiError {
    /// A failure from below HTTP: a database that does not answer stays a 503.
    fn from(err: anyhow::Error) -> Self {
        let database = err
            .downcast_ref::<StoreError>()
            .and_then(|e| match e {
                StoreError::Database(db) => Some(db),
                StoreError::Conflict(_) => None,
            })
            .or_else(|| err.downcast_ref::<sqlx::Error>());
        if database.is_some_and(crate::store::is_unavailable) {
            Self::Unavailable(err)
        } else {
            Self::Internal(err)
        }
    }
}

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::Problem(problem) => *problem,
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Problem::bare(
                    ErrorCode::Internal,
                    "something went wrong on our side; it has been logged",
                )
            }
            Self::Unavailable(cause) => {
                tracing::error!(error = ?cause, "database unavailable");
                Problem::bare(
                    ErrorCode::Unavailable,
                    "the database is not answering; try again shortly",
                )
            }
        };
        problem.into_response()
    }
}

impl Problem {
    /// A problem with no extra members (what [`ApiError::new`] answers).
    pub fn bare(code: ErrorCode, detail: &str) -> Self {
        Self {
            code,
            detail: detail.into(),
            extensions: Map::new(),
            challenge: None,
            headers: HeaderMap::new(),
        }
    }

    /// The status this problem is answered with.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The problem JSON body.
    pub fn body(&self) -> String {
        let code = self.code.code();
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("urn:qrpark:problem:{code}")));
        body.insert("title".into(), json!(self.code.title()));
        body.insert("status".into(), json!(self.code.status().as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(code));
        body.extend(self.extensions.clone());
        Value::Object(body).to_string()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.extend(self.headers);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
