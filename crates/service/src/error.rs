//! The service's one error type, and its JSON shape on the wire.

use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error of the service, naming the field at fault and why. Every rejected request answers
/// with `{ "error": { "field": ..., "reason": ... } }` and leaves stored state unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// What the error is about: a JSON path, a header, an account id, an instrument name.
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What went wrong; each kind has one HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// Malformed JSON or a value of the wrong type (400).
    Malformed(String),
    /// Well-formed input that the domain refuses: unknown instrument, negative balance (422).
    Invalid(String),
    /// The resource does not exist (404).
    NotFound,
    /// The resource exists already, or an idempotency key was reused for another request (409).
    Conflict(String),
    /// The body is larger than the limit (413).
    TooLarge {
        /// The limit.
        limit_bytes: usize,
    },
    /// The database failed; nothing was acknowledged (500 or, at startup, a refusal to start).
    Storage(String),
    /// No key, or a key that is malformed, unknown, revoked or expired (401).
    Unauthorized(String),
    /// A valid key whose role may not do this (403).
    Forbidden(String),
    /// A key over its request rate (429).
    TooManyRequests(String),
    /// A write whose body is not declared JSON (415): a browser page on another origin can send
    /// `text/plain` without asking first, never `application/json`.
    UnsupportedMediaType,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Malformed(why) => write!(f, "malformed: {why}"),
            ErrorKind::Invalid(why)
            | ErrorKind::Conflict(why)
            | ErrorKind::Unauthorized(why)
            | ErrorKind::Forbidden(why)
            | ErrorKind::TooManyRequests(why) => f.write_str(why),
            ErrorKind::NotFound => f.write_str("not found"),
            ErrorKind::TooLarge { limit_bytes } => {
                write!(f, "body larger than {limit_bytes} bytes")
            }
            ErrorKind::Storage(why) => write!(f, "storage: {why}"),
            ErrorKind::UnsupportedMediaType => {
                f.write_str("a write's body must be application/json")
            }
        }
    }
}

impl Error {
    /// Builds an error about `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind }
    }

    /// A refusal of well-formed input.
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::Invalid(why.into()))
    }

    /// A database failure.
    pub fn storage(field: impl Into<String>, why: impl fmt::Display) -> Error {
        Error::new(field, ErrorKind::Storage(why.to_string()))
    }

    /// The HTTP status of this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Malformed(_) => StatusCode::BAD_REQUEST,
            ErrorKind::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict(_) => StatusCode::CONFLICT,
            ErrorKind::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden(_) => StatusCode::FORBIDDEN,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The JSON body of this error.
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        let reason = match &self.kind {
            ErrorKind::Invalid(why) | ErrorKind::Conflict(why) => why.clone(),
            other => other.to_string(),
        };
        serde_json::json!({ "error": ErrorDetail { field: self.field.clone(), reason } })
    }
}

/// The inner object of an error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The field at fault (a JSON path, a header or a path parameter).
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

/// The error body: `{ "error": { "field": ..., "reason": ... } }`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<formats::Error> for Error {
    fn from(e: formats::Error) -> Error {
        match e.kind {
            formats::ErrorKind::Syntax(why) => Error::new(e.location, ErrorKind::Malformed(why)),
            other => Error::invalid(e.location, other.to_string()),
        }
    }
}

impl From<margin::Error> for Error {
    fn from(e: margin::Error) -> Error {
        Error::invalid(e.field, e.kind.to_string())
    }
}

impl From<netting::Error> for Error {
    fn from(e: netting::Error) -> Error {
        Error::invalid(e.field, e.kind.to_string())
    }
}

impl From<liquidation::Error> for Error {
    fn from(e: liquidation::Error) -> Error {
        Error::invalid(e.field, e.kind.to_string())
    }
}
