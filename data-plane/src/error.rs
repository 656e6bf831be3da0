//! Everything that can go wrong while serving a request, grouped by who is at
//! fault. The messages are what the app reads, so they say what to fix and
//! never carry an upstream secret. [`GatewayError::body`] renders an error in
//! the calling format's own shape (each codec knows its shape).

use bytes::Bytes;
use http::StatusCode;

use crate::translate::Format;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    // --- the app's fault (4xx) ---
    #[error(
        "You didn't provide an API key. Send it as `Authorization: Bearer KEY`, `x-api-key`, `x-goog-api-key` or `?key=`."
    )]
    MissingKey,
    #[error("Incorrect API key provided.")]
    InvalidKey,
    #[error("This API key has expired.")]
    ExpiredKey,
    #[error("We could not parse the JSON body of your request: {0}")]
    BadJson(String),
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<&'static str>,
    },
    #[error("The model `{0}` does not exist or is not routed by this gateway.")]
    UnknownModel(String),
    #[error("This API key is not allowed to use the model `{0}`.")]
    ModelNotAllowed(String),
    #[error(
        "The model `{0}` has no price configured and this API key has a cost limit, so it cannot be used until an operator sets a price for it."
    )]
    Unpriced(String),
    #[error("The request body is too large: the limit is {limit} bytes.")]
    BodyTooLarge { limit: usize },
    #[error("The request body did not arrive within {secs} s.")]
    BodyTimeout { secs: u64 },
    #[error("Unknown request URL: {method} {path}.")]
    NotFound { method: String, path: String },

    #[error("The {limit} limit of {budget} is reached; retry after {retry_after_secs} s.")]
    RateLimited {
        limit: &'static str,
        /// Whose budget: `key checkout`, `user alice`, `team research`.
        budget: String,
        /// Its id, for the trace.
        budget_id: String,
        retry_after_secs: u64,
        /// The limit's value (for the `x-ratelimit-*` headers).
        value: f64,
    },

    // --- not ready or out of capacity ---
    #[error("The gateway has not received its configuration yet; retry shortly.")]
    NotReady,
    #[error(
        "Every upstream credential of provider `{provider}` is cooling down after errors or rate limits; retry after {retry_after_secs} s."
    )]
    PoolExhausted {
        provider: String,
        retry_after_secs: u64,
    },

    // --- the upstream's fault ---
    #[error("The upstream provider `{provider}` failed: {detail}")]
    Upstream {
        provider: String,
        detail: String,
        timeout: bool,
    },
    /// An upstream error response relayed as is (already in the app's format,
    /// already checked for secrets).
    #[error("upstream answered {status}")]
    UpstreamResponse {
        status: StatusCode,
        retry_after: Option<u64>,
        body: Bytes,
    },
    /// An upstream error in another format than the app's: its message,
    /// re-rendered in the app's shape with the upstream's status.
    #[error("{message}")]
    UpstreamStatus {
        status: StatusCode,
        retry_after: Option<u64>,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),

    // --- ours ---
    #[error("Internal gateway error.")]
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey | Self::ExpiredKey => StatusCode::UNAUTHORIZED,
            Self::BadJson(_) | Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownModel(_) | Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::ModelNotAllowed(_) | Self::Unpriced(_) => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::PoolExhausted { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamResponse { status, .. } | Self::UpstreamStatus { status, .. } => *status,
            Self::Unsupported(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::PoolExhausted {
                retry_after_secs, ..
            }
            | Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::UpstreamResponse { retry_after, .. }
            | Self::UpstreamStatus { retry_after, .. } => *retry_after,
            Self::NotReady => Some(1),
            _ => None,
        }
    }

    /// Low-cardinality label for metrics and the trace's error column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::InvalidKey => "invalid_key",
            Self::ExpiredKey => "expired_key",
            Self::BadJson(_) => "bad_json",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownModel(_) => "unknown_model",
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::Unpriced(_) => "model_not_priced",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::NotFound { .. } => "not_found",
            Self::NotReady => "not_ready",
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::RateLimited { .. } => "rate_limited",
            Self::Upstream { timeout: true, .. } => "upstream_timeout",
            Self::Upstream { .. } => "upstream_error",
            Self::UpstreamResponse { .. } | Self::UpstreamStatus { .. } => "upstream_status",
            Self::Unsupported(_) => "untranslatable",
            Self::Internal(_) => "internal",
        }
    }

    /// The error body in the shape `format`'s SDKs understand.
    pub fn body(&self, format: Format) -> Bytes {
        // Relayed as the upstream wrote it: already in the app's format.
        if let Self::UpstreamResponse { body, .. } = self {
            return body.clone();
        }
        format.codec().error_body(self)
    }
}

/// The message of an error body in any of the three shapes (or the raw text).
pub fn upstream_message(body: &[u8]) -> String {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return String::from_utf8_lossy(body).chars().take(500).collect(),
    };
    v.get("error")
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(|m| m.as_str())
        .or_else(|| v.get("message").and_then(|m| m.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| "the upstream provider returned an error".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_and_gemini_shapes() {
        let e = GatewayError::InvalidKey;
        let a: serde_json::Value = serde_json::from_slice(&e.body(Format::Anthropic)).unwrap();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "authentication_error");
        let g: serde_json::Value = serde_json::from_slice(&e.body(Format::Gemini)).unwrap();
        assert_eq!(g["error"]["code"], 401);
        assert_eq!(g["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(
            upstream_message(br#"{"type":"error","error":{"type":"x","message":"boom"}}"#),
            "boom"
        );
        assert_eq!(
            upstream_message(
                br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#
            ),
            "bad"
        );
    }

    #[test]
    fn openai_shape() {
        let e = GatewayError::UnknownModel("gpt-9".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body(Format::OpenAiChat)).unwrap();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
    }
}
