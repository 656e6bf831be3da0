//! One health check: the cheapest call that proves a credential works and
//! costs nothing, the provider's model listing, and what its answer means.
//! Pure: the request is built and the answer classified without I/O.

use std::time::Duration;

use aigw_proto::model::ProviderKind;
use aigw_proto::pb::config as pb;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::outbound::{Answer, CallError};
use crate::redact::scrub;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    InvalidCredential,
    QuotaExhausted,
    RateLimited,
    UpstreamDown,
    NetworkError,
}

impl Status {
    /// Every status, for the metrics served at 0 from the start.
    pub const ALL: [Self; 6] = [
        Self::Ok,
        Self::InvalidCredential,
        Self::QuotaExhausted,
        Self::RateLimited,
        Self::UpstreamDown,
        Self::NetworkError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InvalidCredential => "invalid_credential",
            Self::QuotaExhausted => "quota_exhausted",
            Self::RateLimited => "rate_limited",
            Self::UpstreamDown => "upstream_down",
            Self::NetworkError => "network_error",
        }
    }
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub http_status: u16,
    /// What the upstream said (its error message, trimmed), never a secret.
    pub detail: String,
    /// Rate limited: how long the upstream asked to wait.
    pub retry_after: Option<Duration>,
}

/// Rate limited without a `Retry-After`: try again after this.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The model-listing request for `key` of `provider`, authenticated as the
/// data planes would send a real request.
pub fn request(provider: &pb::Provider, key: &pb::ProviderKey) -> Option<Request<Full<Bytes>>> {
    let kind: ProviderKind = provider.kind.parse().ok()?;
    let base = if provider.base_url.is_empty() {
        kind.default_base_url()?.to_string()
    } else {
        provider.base_url.trim_end_matches('/').to_string()
    };
    let base = base.strip_suffix("/v1").unwrap_or(&base).to_string();
    let path = match kind {
        ProviderKind::Gemini => "/v1beta/models?pageSize=1",
        _ => "/v1/models",
    };
    let mut b = Request::get(format!("{base}{path}"))
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("aigw-health/", env!("CARGO_PKG_VERSION")),
        );
    let secret = HeaderValue::from_str(&key.secret).ok()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", key.secret)).ok()?;
    b = match (kind, key.oauth) {
        (_, true) | (ProviderKind::OpenAi | ProviderKind::OpenAiCompatible, false) => {
            b.header(AUTHORIZATION, bearer)
        }
        (ProviderKind::Anthropic, false) => b.header("x-api-key", secret),
        (ProviderKind::Gemini, false) => b.header("x-goog-api-key", secret),
    };
    if kind == ProviderKind::Anthropic {
        b = b.header("anthropic-version", "2023-06-01");
    }
    for (name, value) in &key.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            b = b.header(n, v);
        }
    }
    b.body(Full::new(Bytes::new())).ok()
}

/// What an answer (or its absence) says about the credential.
pub fn classify(result: &Result<Answer, CallError>, secret: &str) -> Outcome {
    let a = match result {
        Ok(a) => a,
        Err(e) => {
            return Outcome {
                status: Status::NetworkError,
                http_status: 0,
                detail: clip(&scrub(&e.to_string(), &[secret])),
                retry_after: None,
            };
        }
    };
    let code = a.status.as_u16();
    let message = clip(&scrub(&message_of(&a.body), &[secret]));
    let lower = message.to_ascii_lowercase();
    let quota = [
        "insufficient_quota",
        "quota",
        "billing",
        "credit balance",
        "exceeded your current",
    ]
    .iter()
    .any(|w| lower.contains(w));
    let status = match a.status {
        s if s.is_success() => Status::Ok,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Status::InvalidCredential,
        StatusCode::PAYMENT_REQUIRED => Status::QuotaExhausted,
        StatusCode::TOO_MANY_REQUESTS if quota => Status::QuotaExhausted,
        StatusCode::TOO_MANY_REQUESTS => Status::RateLimited,
        // Gemini answers a bad key with 400 API_KEY_INVALID; Anthropic an
        // empty balance with 400 "credit balance is too low".
        StatusCode::BAD_REQUEST
            if lower.contains("api_key_invalid") || lower.contains("api key not valid") =>
        {
            Status::InvalidCredential
        }
        StatusCode::BAD_REQUEST if quota => Status::QuotaExhausted,
        s if s.is_server_error() || code == 529 => Status::UpstreamDown,
        // Anything else (a server without a model listing, say) is no
        // evidence against the credential: it answered.
        _ => Status::Ok,
    };
    let retry_after = (status == Status::RateLimited).then(|| {
        a.headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(DEFAULT_RETRY_AFTER, |s| {
                Duration::from_secs_f64(s.min(3600.0))
            })
    });
    Outcome {
        status,
        http_status: code,
        detail: if status == Status::Ok {
            String::new()
        } else {
            message
        },
        retry_after,
    }
}

/// `text` cut to what a detail shows, without control characters. Only
/// ever of scrubbed text: a secret across the cut would keep its first
/// part, which no longer matches to be scrubbed.
fn clip(text: &str) -> String {
    let mut t: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    t.truncate(t.trim_end().len());
    t
}

/// The message of an error body in any provider's shape, whole (see
/// [`clip`]).
fn message_of(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v
            .get("error")
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(|m| {
                m.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(m.to_string()))
            })
            .unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, retry_after: Option<&str>) -> Result<Answer, CallError> {
        let mut headers = http::HeaderMap::new();
        if let Some(r) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
        })
    }

    #[test]
    fn answers_are_classified_as_providers_send_them() {
        let c = |s, b, r| classify(&answer(s, b, r), "sk-secret-0000").status;
        assert_eq!(c(200, "{}", None), Status::Ok);
        assert_eq!(
            c(401, r#"{"error":{"message":"Incorrect API key"}}"#, None),
            Status::InvalidCredential
        );
        assert_eq!(
            c(
                429,
                r#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#,
                None
            ),
            Status::QuotaExhausted
        );
        assert_eq!(
            c(
                429,
                r#"{"error":{"message":"Rate limit reached"}}"#,
                Some("7")
            ),
            Status::RateLimited
        );
        assert_eq!(
            c(
                400,
                r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#,
                None
            ),
            Status::InvalidCredential
        );
        assert_eq!(
            c(
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}"#,
                None
            ),
            Status::QuotaExhausted
        );
        assert_eq!(c(503, "upstream connect error", None), Status::UpstreamDown);
        assert_eq!(
            c(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error"}}"#,
                None
            ),
            Status::UpstreamDown
        );
        assert_eq!(c(404, "not found", None), Status::Ok);
        let o = classify(&answer(429, "{}", Some("7")), "x");
        assert_eq!(o.retry_after, Some(Duration::from_secs(7)));
        let o = classify(&Err(CallError::Failed("connection refused".into())), "x");
        assert_eq!((o.status, o.http_status), (Status::NetworkError, 0));
    }

    #[test]
    fn an_echoed_secret_never_leaves() {
        let o = classify(
            &answer(
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-secret-0000"}}"#,
                None,
            ),
            "sk-secret-0000",
        );
        assert!(
            !o.detail.contains("sk-secret-0000") && o.detail.contains("[redacted]"),
            "{}",
            o.detail
        );
    }

    /// A detail is cut at 300 characters: a key echoed across the cut is
    /// scrubbed whole before, not left with its first part showing.
    #[test]
    fn a_secret_echoed_across_the_cut_never_shows_its_first_part() {
        let key = "sk-proj-SECRETPREFIX-0123456789abcdefghijklmnop";
        let body = format!(
            r#"{{"error":{{"message":"{}invalid key {key}"}}}}"#,
            "x".repeat(270)
        );
        let o = classify(&answer(401, &body, None), key);
        assert!(!o.detail.contains("sk-proj-SECRET"), "{}", o.detail);
        assert!(o.detail.chars().count() <= 300, "{}", o.detail);
    }

    #[test]
    fn requests_authenticate_like_the_data_planes() {
        let key = |oauth| pb::ProviderKey {
            name: "k".into(),
            secret: "sk-abc".into(),
            weight: 1,
            health: None,
            oauth,
            headers: [("anthropic-beta".to_string(), "oauth-2025-04-20".to_string())].into(),
        };
        let provider = |kind: &str, url: &str| pb::Provider {
            name: "p".into(),
            kind: kind.into(),
            base_url: url.into(),
            ..Default::default()
        };
        let r = request(&provider("gemini", "http://m:1/"), &key(false)).unwrap();
        assert_eq!(r.uri().to_string(), "http://m:1/v1beta/models?pageSize=1");
        assert_eq!(r.headers()["x-goog-api-key"], "sk-abc");
        let r = request(&provider("anthropic", "http://m:1/v1"), &key(false)).unwrap();
        assert_eq!(r.uri().path(), "/v1/models");
        assert_eq!(r.headers()["x-api-key"], "sk-abc");
        assert_eq!(r.headers()["anthropic-version"], "2023-06-01");
        let r = request(&provider("anthropic", ""), &key(true)).unwrap();
        assert_eq!(r.uri().to_string(), "https://api.anthropic.com/v1/models");
        assert_eq!(r.headers()[AUTHORIZATION], "Bearer sk-abc");
        assert_eq!(r.headers()["anthropic-beta"], "oauth-2025-04-20");
        let r = request(&provider("openai-compatible", "http://m:1"), &key(false)).unwrap();
        assert_eq!(r.headers()[AUTHORIZATION], "Bearer sk-abc");
    }
}
