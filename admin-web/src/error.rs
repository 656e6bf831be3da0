//! The crate's error type and the one place it becomes an HTTP answer:
//! `{"error": {"code": "...", "message": "..."}}` with the status the
//! control plane's gRPC code maps to. The control plane already keeps its
//! internals out of messages; transport failures are logged here and
//! answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The control plane refused or failed the call.
    #[error("{}", .0.message())]
    Rpc(#[from] tonic::Status),
    /// No session cookie and no bearer token.
    #[error("sign in first (no session cookie or bearer token)")]
    NoCredentials,
    /// A cookie-authenticated change without the CSRF header, or from
    /// another origin.
    #[error("{0}")]
    Csrf(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A create-only upsert (`If-None-Match: *`) naming an existing object.
    #[error("{0}")]
    AlreadyExists(String),
    /// A body axum's extractor refused: too large (413), not JSON by its
    /// `Content-Type` (415), or not the expected shape (400).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// e.g. permission_denied, unauthenticated, invalid_argument, not_found.
    pub code: String,
    pub message: String,
}

fn code_of(c: Code) -> (StatusCode, &'static str) {
    match c {
        Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::AlreadyExists | Code::Aborted => (StatusCode::CONFLICT, "already_exists"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        _ => (StatusCode::BAD_GATEWAY, "internal"),
    }
}

impl ApiError {
    pub fn parts(&self) -> (StatusCode, String, String) {
        match self {
            ApiError::Rpc(s) => {
                let (status, code) = code_of(s.code());
                let message = match s.code() {
                    // Transport errors carry connection details; the
                    // control plane's own internal errors are generic.
                    Code::Unavailable | Code::Unknown | Code::Internal
                        if std::error::Error::source(s).is_some() || s.message().is_empty() =>
                    {
                        tracing::warn!(status = %s, "control plane call failed");
                        "the control plane is not reachable; try again shortly".to_string()
                    }
                    _ => s.message().to_string(),
                };
                (status, code.to_string(), message)
            }
            ApiError::NoCredentials => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated".into(),
                self.to_string(),
            ),
            ApiError::Csrf(_) => (StatusCode::FORBIDDEN, "csrf".into(), self.to_string()),
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_argument".into(),
                self.to_string(),
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found".into(), self.to_string()),
            ApiError::AlreadyExists(_) => (
                StatusCode::PRECONDITION_FAILED,
                "already_exists".into(),
                self.to_string(),
            ),
            ApiError::Rejected { status, message } => {
                let code = match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "invalid_argument",
                };
                (*status, code.into(), message.clone())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        // The control plane's throttles say how long to wait.
        let retry_after = match &self {
            ApiError::Rpc(s) if s.code() == Code::ResourceExhausted => s
                .metadata()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
            _ => None,
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The error answers every call may give, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum Errors {
    /// Invalid input; the message says what to fix.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No, a wrong, expired or revoked session or token.
    #[response(status = 401)]
    Unauthenticated(#[to_schema] ErrorBody),
    /// The caller's role may not do this, or a missing CSRF header.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// The object does not exist.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// It conflicts with another object or with the current state.
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// The body is larger than the API takes.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// The body is not sent as `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] ErrorBody),
    /// Too many attempts (sign-in); `Retry-After` says how long to wait.
    #[response(status = 429)]
    TooMany(#[to_schema] ErrorBody),
    /// The control plane failed.
    #[response(status = 502)]
    BadGateway(#[to_schema] ErrorBody),
    /// The control plane is not reachable.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        let status = match r.status() {
            s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::Rejected {
            status,
            message: format!("invalid JSON body: {}", r.body_text()),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(format!("invalid query: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest(format!("invalid path: {}", r.body_text()))
    }
}
