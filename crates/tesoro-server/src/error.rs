//! Errors: [`ServerError`] for starting and running the server, [`ApiError`] for one
//! request, always answered with the same body `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tesoro_store::StoreError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or queried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running there? pick another --bind)"
    )]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
    /// A user or token operation was refused.
    #[error("{0}")]
    Invalid(String),
}

/// An error answer to one request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`not_found`, `forbidden`, …).
    pub code: &'static str,
    /// What went wrong and what to do, for people.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 401: no valid session or token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in (POST /login) or send Authorization: Bearer TOKEN",
        )
    }
    /// 403: logged in, but the role or grant does not allow it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404: nothing by that name.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409: contradicts what is stored (duplicate name, address already watched).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 422: well-formed but refused (a private key, a bad descriptor).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
    /// 429: too many failed logins.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
    /// 500: our fault; the detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Duplicate(m) | StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Ambiguous(m) => ApiError::bad_request(m),
            // Stored input that does not hold up (a policy rule naming a bad entity code).
            StoreError::Invalid(m) => ApiError::unprocessable(m),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::office::OfficeError> for ApiError {
    fn from(e: crate::office::OfficeError) -> Self {
        use crate::office::OfficeError as O;
        match e {
            O::Invalid(m) => ApiError::unprocessable(m),
            O::NotFound(m) => ApiError::not_found(m),
            O::Conflict(m) => ApiError::conflict(m),
            O::Store(s) => s.into(),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
