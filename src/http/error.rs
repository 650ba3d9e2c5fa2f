//! The one error type of the HTTP layer, answered as RFC 9457 problem JSON with a stable
//! `code`. A 500 is logged with its cause and answered without it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

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
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extra members (such as `errors`) merged into the body.
    pub extensions: Map<String, Value>,
    /// A `WWW-Authenticate` challenge for 401 answers.
    pub challenge: Option<String>,
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
    pub code: String,
    /// Every invalid field, for `validation_failed`, `unknown_field` and `tariff_invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// A client problem with no extra members.
    pub fn problem(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::Problem(Box::new(Problem {
            status,
            code,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            challenge: None,
        }))
    }

    /// Adds a member to the problem body (ignored for internal errors).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if let Self::Problem(problem) = &mut self {
            problem.extensions.insert(key.to_owned(), value);
        }
        self
    }

    /// 404 for something that does not exist or is not the caller's to see.
    pub fn not_found(what: &str) -> Self {
        Self::problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("no such {what}"),
        )
    }

    /// 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.path, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            detail,
        )
        .with("errors", json!(errors))
    }

    /// 401 with a Bearer challenge.
    pub fn unauthorized(code: &'static str, detail: &str, realm: &str) -> Self {
        let challenge = if code == "unauthorized" {
            format!("Bearer realm=\"{realm}\"")
        } else {
            format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
        };
        let mut error = Self::problem(StatusCode::UNAUTHORIZED, code, "Unauthorized", detail);
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
            StoreError::Conflict(Constraint::LotName) => {
                ("lot_name_taken", "you already have a lot with this name")
            }
            StoreError::Conflict(Constraint::SpaceCode) => (
                "space_code_taken",
                "a space with this code exists in this lot",
            ),
            StoreError::Conflict(Constraint::OperatorName) => {
                ("operator_name_taken", "an operator with this name exists")
            }
            StoreError::Conflict(Constraint::TariffVersion) => (
                "tariff_conflict",
                "another tariff was published for this lot at the same moment; try again",
            ),
            StoreError::Conflict(Constraint::OperatorKeyHash) => {
                return Self::internal(anyhow::anyhow!("API key hash collision"));
            }
            StoreError::Database(db) => return Self::from(db),
        };
        Self::problem(StatusCode::CONFLICT, code, "Conflict", detail)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(err.into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
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
                Problem {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal",
                    title: "Internal server error",
                    detail: "something went wrong on our side; it has been logged".into(),
                    extensions: Map::new(),
                    challenge: None,
                }
            }
            Self::Unavailable(cause) => {
                tracing::error!(error = ?cause, "database unavailable");
                Problem {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    title: "Service unavailable",
                    detail: "the database is not answering; try again shortly".into(),
                    extensions: Map::new(),
                    challenge: None,
                }
            }
        };
        problem.into_response()
    }
}

impl Problem {
    /// The problem JSON body.
    pub fn body(&self) -> String {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:qrpark:problem:{}", self.code)),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(self.code));
        body.extend(self.extensions.clone());
        Value::Object(body).to_string()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
