//! Everything that can go wrong while serving a request, grouped by who is at
//! fault. The messages are what the app reads, so they say what to fix and
//! never carry an upstream secret. [`GatewayError::body`] renders an error in
//! the calling format's own shape (each codec knows its shape).
//!
//! One error serves every reader: the app's status and body, the trace's
//! error column ([`GatewayError::kind`]), each upstream attempt's entry
//! ([`GatewayError::attempt_note`]), the retry decision
//! ([`GatewayError::retryable`], and the credential's cool-down) and the
//! metrics' labels; [`GatewayError::origin`] says whose fault it is.

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
    /// A provider API for state the provider keeps (a stored response),
    /// which the gateway does not proxy.
    #[error(
        "{method} {path} is not served by this gateway: it does not fetch stored responses from the provider. Ask for a background response with `stream: true` to receive it as it runs."
    )]
    NotProxied { method: String, path: String },
    /// A WebSocket handshake at `/v1/responses` (Codex's preferred
    /// transport): 426, which Codex takes as the sign to use HTTP at once
    /// instead of retrying the handshake.
    #[error(
        "WebSocket transport is not served at {path}: send the same request as an HTTP POST (server-sent events for streams)."
    )]
    WebSocketNotServed { path: String },
    /// A known path called with another method; `allow` is the `Allow`
    /// header's value.
    #[error("Invalid method for URL ({method} {path}): it takes {allow}.")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: &'static str,
    },

    #[error("{}", rate_limited_message(limit, budget, *value, *requested, *retry_after_secs))]
    RateLimited {
        limit: &'static str,
        /// Whose budget: `key checkout`, `user alice`, `team research`.
        budget: String,
        /// Its id, for the trace.
        budget_id: String,
        retry_after_secs: u64,
        /// The limit's value (for the `x-ratelimit-*` headers).
        value: f64,
        /// The request alone asks for more than the limit: how much.
        requested: Option<f64>,
    },

    // --- not ready or out of capacity ---
    #[error("The gateway has not received its configuration yet; retry shortly.")]
    NotReady,
    #[error(
        "The gateway is holding too many request bodies at once; retry after {retry_after_secs} s."
    )]
    Busy { retry_after_secs: u64 },
    #[error(
        "Every upstream credential of provider `{provider}` is cooling down after errors or rate limits; retry after {retry_after_secs} s."
    )]
    PoolExhausted {
        provider: String,
        retry_after_secs: u64,
    },
    /// Every credential left is rejected by the provider or disabled: no
    /// `Retry-After`, since none comes back until an operator acts.
    #[error(
        "Every upstream credential of provider `{provider}` is rejected by the provider or disabled (revoked, or found invalid by a health check); an operator must fix the provider's keys."
    )]
    PoolUnusable { provider: String },

    // --- the upstream's fault ---
    #[error("The upstream provider `{provider}` failed: {failure}")]
    Upstream { provider: String, failure: Failure },
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
        /// The prompt overflowed the model's context window (the message
        /// already says so in the app's provider's words; OpenAI's clients
        /// also read a code, see `context_limit`).
        context_overflow: bool,
    },
    /// What the target provider cannot express, or the app's request
    /// got wrong on the way (`param`: the field, as the app wrote it).
    #[error("{message}")]
    Unsupported {
        message: String,
        param: Option<String>,
    },

    // --- ours ---
    #[error("Internal gateway error.")]
    Internal(String),
}

/// What a 429 of the gateway's own says: the limit reached, or that the
/// limit store is away and the budget refuses meanwhile.
fn rate_limited_message(
    limit: &str,
    budget: &str,
    value: f64,
    requested: Option<f64>,
    retry_after_secs: u64,
) -> String {
    if limit == crate::ratelimit_headers::STORE_DOWN {
        return format!(
            "The limit store is not answering, and {budget} refuses requests until it does (`when_store_down: refuse`); retry after {retry_after_secs} s."
        );
    }
    if let Some(asked) = requested {
        // Counted as reserved: the prompt (about a token per two bytes)
        // and the output cap the request set, or the gateway's default.
        return format!(
            "Request too large for the {limit} limit of {budget}: limit {value}, requested {asked} (the prompt, input it refers to by id such as `previous_response_id`, and its output cap; without `max_tokens` the gateway's default cap counts). Send a shorter prompt or a lower `max_tokens`."
        );
    }
    format!("The {limit} limit of {budget} is reached; retry after {retry_after_secs} s.")
}

/// How an upstream failed without an answer the app can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no response within {0} s")]
    Timeout(u64),
    #[error("connection failed")]
    Connect,
    #[error("request failed")]
    Request,
    /// The pool's credential is bad, not the app's request.
    #[error("it rejected the gateway's credential (HTTP {})", .0.as_u16())]
    CredentialRejected(StatusCode),
    #[error("the response body broke off: {0}")]
    BodyBroken(String),
    #[error("its answer could not be read: {0}")]
    Unreadable(String),
    #[error("it answered a streaming request without an event stream")]
    NotAStream,
}

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The app's request (fixing it is the app's job).
    App,
    /// The gateway: not ready, out of capacity, or a bug.
    Gateway,
    /// The provider or the way to it.
    Upstream,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Gateway => "gateway",
            Self::Upstream => "upstream",
        }
    }
}

/// How long a credential that failed this way is benched: transport
/// failures briefly, a rate limit for what the provider asked (at most 5
/// minutes), a rejected credential for a minute.
const TRANSPORT_COOL_DOWN_MS: u64 = 2_000;
const REJECTED_COOL_DOWN_MS: u64 = 60_000;
const MAX_RATE_LIMIT_COOL_DOWN_SECS: u64 = 300;

/// A translation refusal names the field, as the app wrote it: OpenAI's
/// clients read it from `param`.
impl From<crate::translate::ir::Unsupported> for GatewayError {
    fn from(e: crate::translate::ir::Unsupported) -> Self {
        Self::Unsupported {
            message: e.message,
            param: (!e.field.is_empty()).then_some(e.field),
        }
    }
}

impl GatewayError {
    pub fn upstream(provider: &str, failure: Failure) -> Self {
        Self::Upstream {
            provider: provider.to_string(),
            failure,
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Self::MissingKey
            | Self::InvalidKey
            | Self::ExpiredKey
            | Self::BadJson(_)
            | Self::InvalidRequest { .. }
            | Self::UnknownModel(_)
            | Self::ModelNotAllowed(_)
            | Self::Unpriced(_)
            | Self::BodyTooLarge { .. }
            | Self::BodyTimeout { .. }
            | Self::NotFound { .. }
            | Self::NotProxied { .. }
            | Self::MethodNotAllowed { .. }
            | Self::WebSocketNotServed { .. }
            | Self::RateLimited { .. }
            | Self::Unsupported { .. } => Origin::App,
            Self::NotReady
            | Self::Busy { .. }
            | Self::PoolExhausted { .. }
            | Self::PoolUnusable { .. }
            | Self::Internal(_) => Origin::Gateway,
            Self::Upstream { .. } | Self::UpstreamResponse { .. } | Self::UpstreamStatus { .. } => {
                Origin::Upstream
            }
        }
    }

    /// Whether another credential, or the route's next provider, may
    /// succeed where this failed: for capacity or health, not for what the
    /// request says (another credential would refuse it alike).
    pub fn retryable(&self) -> bool {
        match self {
            Self::PoolExhausted { .. } | Self::PoolUnusable { .. } => true,
            Self::Upstream { failure, .. } => !matches!(
                failure,
                Failure::BodyBroken(_) | Failure::Unreadable(_) | Failure::NotAStream
            ),
            Self::UpstreamResponse { status, .. } | Self::UpstreamStatus { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                    || status.as_u16() == 529
            }
            _ => false,
        }
    }

    /// Retrying the same request cannot succeed: a budget it alone
    /// exceeds. Told to the app as `x-should-retry: false`, which the
    /// OpenAI and Anthropic SDKs obey (they would otherwise retry the 429
    /// for nothing). Not a pool that is unusable: on a route with
    /// fallbacks, an earlier provider may have failed for a passing reason.
    pub fn hopeless(&self) -> bool {
        matches!(
            self,
            Self::RateLimited {
                requested: Some(_),
                ..
            }
        )
    }

    /// How long the credential an attempt failed with is benched, if at all
    /// (a 5xx is the provider's, not the credential's: no cool-down), and
    /// why, as the cool-down metric's `reason` label.
    pub fn cool_down(&self) -> Option<(u64, &'static str)> {
        match self {
            Self::Upstream { failure, .. } => match failure {
                Failure::Timeout(_) => Some((TRANSPORT_COOL_DOWN_MS, "timeout")),
                Failure::Connect | Failure::Request => Some((TRANSPORT_COOL_DOWN_MS, "connection")),
                Failure::CredentialRejected(_) => {
                    Some((REJECTED_COOL_DOWN_MS, "credential_rejected"))
                }
                _ => None,
            },
            Self::UpstreamResponse {
                status,
                retry_after,
                ..
            } if *status == StatusCode::TOO_MANY_REQUESTS => {
                let secs = retry_after.unwrap_or(1).min(MAX_RATE_LIMIT_COOL_DOWN_SECS);
                Some((secs * 1000, "rate_limited"))
            }
            _ => None,
        }
    }

    /// The upstream status an attempt got (0 when none came back).
    pub fn attempt_status(&self) -> u16 {
        match self {
            Self::Upstream {
                failure: Failure::CredentialRejected(s),
                ..
            }
            | Self::UpstreamResponse { status: s, .. }
            | Self::UpstreamStatus { status: s, .. } => s.as_u16(),
            _ => 0,
        }
    }

    /// What a failed attempt's entry in the trace says.
    pub fn attempt_note(&self) -> &'static str {
        match self {
            Self::Upstream { failure, .. } => match failure {
                Failure::Timeout(_) => "timeout",
                Failure::Connect => "connection failed",
                Failure::Request => "request failed",
                Failure::CredentialRejected(s) => s.canonical_reason().unwrap_or(""),
                Failure::BodyBroken(_) => "body broke off",
                Failure::Unreadable(_) => "unreadable answer",
                Failure::NotAStream => "not an event stream",
            },
            Self::UpstreamResponse { status, .. } | Self::UpstreamStatus { status, .. } => {
                status.canonical_reason().unwrap_or("")
            }
            _ => self.kind(),
        }
    }

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
            Self::UnknownModel(_) | Self::NotFound { .. } | Self::NotProxied { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::WebSocketNotServed { .. } => StatusCode::UPGRADE_REQUIRED,
            Self::ModelNotAllowed(_) | Self::Unpriced(_) => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotReady | Self::Busy { .. } | Self::PoolUnusable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::PoolExhausted { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream {
                failure: Failure::Timeout(_),
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamResponse { status, .. } | Self::UpstreamStatus { status, .. } => *status,
            Self::Unsupported { .. } => StatusCode::BAD_REQUEST,
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
            }
            | Self::Busy { retry_after_secs } => Some(*retry_after_secs),
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
            Self::NotFound { .. } | Self::NotProxied { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::WebSocketNotServed { .. } => "websocket_not_served",
            Self::NotReady => "not_ready",
            Self::Busy { .. } => "busy",
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::PoolUnusable { .. } => "pool_unusable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Upstream {
                failure: Failure::Timeout(_),
                ..
            } => "upstream_timeout",
            Self::Upstream { .. } => "upstream_error",
            Self::UpstreamResponse { .. } | Self::UpstreamStatus { .. } => "upstream_status",
            Self::Unsupported { .. } => "untranslatable",
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

/// What an upstream error body without a message becomes.
const NO_MESSAGE: &str = "the upstream provider returned an error";

/// An upstream error body, read once: its message and OpenAI's `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub message: String,
    pub code: Option<String>,
}

/// Reads an error body in any of the three shapes (or the raw text, unless
/// it is empty or a markup page such as a proxy's 502).
pub fn upstream_error(body: &[u8]) -> UpstreamError {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() || text.starts_with('<') {
                NO_MESSAGE.to_string()
            } else {
                text.chars().take(500).collect()
            };
            return UpstreamError {
                message,
                code: None,
            };
        }
    };
    let error = v.get("error");
    let message = error
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(|m| m.as_str())
        .or_else(|| v.get("message").and_then(|m| m.as_str()))
        .map_or_else(|| NO_MESSAGE.to_string(), str::to_string);
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .map(str::to_string);
    UpstreamError { message, code }
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
            upstream_error(br#"{"type":"error","error":{"type":"x","message":"boom"}}"#).message,
            "boom"
        );
        assert_eq!(
            upstream_error(
                br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#
            )
            .message,
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
