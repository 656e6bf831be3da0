//! The only code that talks to upstreams. Sends one request through a
//! provider's pool, moving to the next credential on a connection error, a
//! timeout, a 429, an auth failure or a 5xx, and cooling down the credential
//! that failed. Each failed attempt is one [`GatewayError`]: it decides the
//! retry, the cool-down and the attempt's entry in the trace (see
//! `error.rs`). Plans shape bodies; this module only moves bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};

use crate::error::{Failure, GatewayError};
use crate::redact::Redactor;
use crate::runtime::Upstream;
use crate::stream_start;
use crate::telemetry::metrics;
use crate::trace_report::TraceDraft;
use crate::upstream_client::{UpstreamBody, UpstreamClient};

pub type HttpClient = UpstreamClient;

/// Largest upstream error body relayed to the app (a larger one is not).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A connection failure quicker than this (refused, reset) benches its
/// credential in a way a probe may try (see `schedule::Pool::probe`); a
/// slower one (a connect that hung until its timeout) would cost the probing
/// app as much again.
const FAILS_FAST: Duration = Duration::from_secs(1);

pub fn build_client(
    extra_ca: Option<&std::path::Path>,
) -> Result<HttpClient, crate::upstream_client::ClientError> {
    UpstreamClient::new(extra_ca)
}

pub struct Call<'a> {
    pub upstream: &'a Arc<Upstream>,
    /// Path and query appended to the provider's base URL.
    pub path: &'a str,
    pub body: Bytes,
    pub headers: &'a HeaderMap,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Requests sharing a prompt cache (with the provider's affinity on).
    pub affinity: Option<u64>,
}

/// A successful upstream response, headers received, body not yet read.
pub struct Answer {
    pub response: Response<UpstreamBody>,
    /// Takes the credential it was sent with out of what the app gets.
    pub redactor: Arc<Redactor>,
}

pub async fn send(
    client: &HttpClient,
    call: Call<'_>,
    draft: &mut TraceDraft,
) -> Result<Answer, GatewayError> {
    let up = call.upstream;
    let provider = &up.provider.name;
    draft.rec.provider = provider.clone();
    draft.provider_kind = Some(up.provider.kind);
    let upstream_model = up.provider.upstream_model(&draft.rec.model).to_string();
    let uri: Uri = format!("{}{}", up.provider.base_url, call.path)
        .parse()
        .map_err(|_| GatewayError::Internal(format!("bad upstream URL for provider {provider}")))?;
    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<GatewayError> = None;
    // A pooled connection the server closed as the request went out is
    // no failure of anyone's: the request goes out once more, uncounted.
    let mut resent = false;
    while (tried.len() as u32) < call.max_attempts.max(1) {
        // Held for the attempt when it probes a benched credential.
        let mut probe = None;
        let idx = match up.pool.pick(&tried, call.affinity) {
            Ok(i) => i,
            Err(ex) if ex.unusable => {
                return Err(last.unwrap_or(GatewayError::PoolUnusable {
                    provider: provider.clone(),
                }));
            }
            Err(ex) => match up.pool.probe(&tried) {
                Some((i, p)) => {
                    probe = Some(p);
                    i
                }
                None => {
                    // Another request is probing: back in a moment, maybe.
                    let retry_after_secs = if up.pool.probe_out() {
                        1
                    } else {
                        ex.retry_after_secs
                    };
                    return Err(last.unwrap_or(GatewayError::PoolExhausted {
                        provider: provider.clone(),
                        retry_after_secs,
                    }));
                }
            },
        };
        tried.push(idx);
        let key = &up.pool.keys[idx];
        draft.rec.provider_key = key.name.clone();
        let mut req = Request::post(uri.clone())
            .body(Full::new(call.body.clone()))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        let h = req.headers_mut();
        h.clone_from(call.headers);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("aigw/", env!("CARGO_PKG_VERSION"))),
        );
        h.insert(key.auth_header.clone(), key.auth.clone());
        for (name, value) in &key.headers {
            h.insert(name.clone(), value.clone());
        }
        // W3C trace context naming this attempt's span.
        let (traceparent, tracestate) = draft.span.start_attempt(up, &upstream_model);
        for (name, value) in [(TRACEPARENT, traceparent), (TRACESTATE, tracestate)] {
            match value {
                Some(v) => h.insert(name, v),
                None => h.remove(name),
            };
        }

        let t0 = Instant::now();
        let result = tokio::time::timeout(call.timeout, client.send(req, !resent)).await;
        if let Ok(Err(e)) = &result
            && e.closed_idle()
            && !resent
        {
            tracing::debug!(provider = %provider, error = %e, "sending again on a fresh connection");
            let us = t0.elapsed().as_micros() as u64;
            draft.attempt(
                provider,
                &key.name,
                0,
                us,
                "connection closed idle, sent again",
            );
            resent = true;
            tried.pop();
            continue;
        }
        let took = t0.elapsed();
        let latency_us = took.as_micros() as u64;
        let mut result = result;
        if let Ok(Ok(_)) = &result {
            key.health.reached();
        }
        // A stream that opens with an overload or rate-limit event failed
        // as a 529 or 429 would have (see `stream_start.rs`).
        let failed_start = match &mut result {
            Ok(Ok(r)) if r.status().is_success() && is_event_stream(r.headers()) => r
                .body_mut()
                .read_ahead(stream_start::WAIT)
                .await
                .and_then(|chunk| stream_start::failure(chunk)),
            _ => None,
        };
        let outcome = match (&result, &failed_start) {
            (_, Some((status, _))) => outcome_of(*status),
            (Err(_), None) => "timeout",
            (Ok(Err(e)), None) if e.is_connect() => "connect_error",
            (Ok(Err(_)), None) => "request_error",
            (Ok(Ok(r)), None) => outcome_of(r.status()),
        };
        metrics::attempt(provider, outcome, took);
        let pool_redactor = || {
            // The key's extra headers may be secrets too (a second key,
            // an organization id).
            let secrets = up.pool.keys.iter().flat_map(|k| {
                let extra = k.headers.iter().filter_map(|(_, v)| v.to_str().ok());
                std::iter::once(k.secret.as_str()).chain(extra)
            });
            Redactor::new(secrets)
        };
        // Whether the upstream said in a header how long to wait: a wait
        // read from the body only (Gemini's `RetryInfo`, per model) is told
        // to the app but cools the credential no longer than an unsaid one,
        // so that one tenant's model over its quota does not bench the
        // credential for everyone's other models.
        let mut header_wait = false;
        let err = match (result, failed_start) {
            (_, Some((status, body))) => {
                tracing::info!(provider = %provider, key = %key.name, %status, "upstream stream opened with an error event");
                refusal(provider, status, None, pool_redactor().scrub(body))
            }
            (Err(_), None) => {
                GatewayError::upstream(provider, Failure::Timeout(call.timeout.as_secs()))
            }
            (Ok(Err(e)), None) => {
                tracing::warn!(provider = %provider, key = %key.name, error = %e, "upstream attempt failed");
                let failure = if e.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Request
                };
                GatewayError::upstream(provider, failure)
            }
            (Ok(Ok(resp)), None) if resp.status().is_success() => {
                key.health.observe_latency(latency_us);
                draft.attempt(provider, &key.name, resp.status().as_u16(), latency_us, "");
                return Ok(Answer {
                    response: resp,
                    redactor: key.redactor.clone(),
                });
            }
            (Ok(Ok(resp)), None) if !(400..=599).contains(&resp.status().as_u16()) => {
                // A redirect (never followed: it would take the pool's key
                // elsewhere), a protocol switch, or a code HTTP does not
                // define: nothing an app's SDK can act on.
                let status = resp.status().as_u16();
                let failure = Failure::Unreadable(format!("unexpected status {status}"));
                GatewayError::upstream(provider, failure)
            }
            (Ok(Ok(resp)), None) => {
                let status = resp.status();
                let retry_after = retry_after_secs(resp.headers());
                header_wait = retry_after.is_some();
                // Boxed: the error path's future stays out of every request's.
                let body = Box::pin(read_error_body(resp.into_body(), call.timeout)).await;
                refusal(provider, status, retry_after, pool_redactor().scrub(body))
            }
        };
        draft.attempt(
            provider,
            &key.name,
            err.attempt_status(),
            latency_us,
            err.attempt_note(),
        );
        if let Some((ms, reason)) = err.cool_down() {
            let ms = match reason {
                "credential_rejected" => {
                    key.health.reject(ms);
                    ms
                }
                "timeout" | "connection" => {
                    let fast = reason == "connection" && took < FAILS_FAST;
                    key.health.transport_failure(ms, fast, probe.is_some())
                }
                "rate_limited" if !header_wait => {
                    let ms = ms.min(UNSAID_RATE_LIMIT_COOL_DOWN_MS);
                    key.health.cool_down(ms);
                    ms
                }
                _ => {
                    key.health.cool_down(ms);
                    ms
                }
            };
            draft.cooled_down(ms);
            metrics::cooldown(provider, reason);
        }
        if !err.retryable() {
            // The request itself is wrong: another credential won't help.
            return Err(err);
        }
        last = Some(err);
    }
    Err(last.unwrap_or_else(|| GatewayError::Internal("no attempt was made".into())))
}

/// Whether the answer is an event stream (a first event can be read).
pub fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..17))
        .is_some_and(|v| v.eq_ignore_ascii_case("text/event-stream"))
}

/// The `outcome` label of an attempt that got a response head.
fn outcome_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        429 => "rate_limited",
        401 => "unauthorized",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// What an upstream's error answer means for the app and the pool.
fn refusal(
    provider: &str,
    status: StatusCode,
    retry_after: Option<u64>,
    body: Bytes,
) -> GatewayError {
    // The pool's credential is bad, not the app's request: the upstream's
    // message may quote the credential, so it is not relayed. (A 403 is not
    // taken as that: an app can provoke one, e.g. with a model the
    // credential may not use, and must not be able to take the pool's
    // credentials offline for everyone.)
    if status == StatusCode::UNAUTHORIZED || rejects_credential(status, &body) {
        tracing::error!(provider = %provider, %status, "upstream rejected a pool credential");
        return GatewayError::upstream(provider, Failure::CredentialRejected(status));
    }
    // A rate limit always tells the app when to retry: Gemini says when in
    // its body only (`google.rpc.RetryInfo`), not in a header.
    let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
        Some(retry_after.or_else(|| retry_delay_in(&body)).unwrap_or(1))
    } else {
        retry_after
    };
    GatewayError::UpstreamResponse {
        status,
        retry_after,
        body,
    }
}

/// Gemini answers a bad API key with 400 rather than 401, naming the reason
/// in the error's structured details (`google.rpc.ErrorInfo`). Only there:
/// the message text can quote what the app sent (Google echoes unknown field
/// names, OpenAI bad enum values), and a body that merely contains the word
/// must not let an app take the pool's credentials offline.
fn rejects_credential(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST
        && google_details(body)
            .iter()
            .any(|d| d.reason.as_ref().and_then(|r| r.as_str()) == Some("API_KEY_INVALID"))
}

/// Gemini's `error.details[].retryDelay` (`"30s"`, `"0.5s"`, a protobuf
/// Duration in JSON) of a `RetryInfo`, in whole seconds rounded up.
fn retry_delay_in(body: &[u8]) -> Option<u64> {
    google_details(body).iter().find_map(|d| {
        d.retry_delay
            .as_ref()?
            .as_str()?
            .strip_suffix('s')?
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.ceil().clamp(1.0, MAX_RETRY_AFTER_SECS as f64) as u64)
    })
}

/// One of a Google error's structured `details`, as far as they are read.
#[derive(serde::Deserialize)]
struct GoogleDetail {
    #[serde(default)]
    reason: Option<serde_json::Value>,
    #[serde(rename = "retryDelay", default)]
    retry_delay: Option<serde_json::Value>,
}

/// The `details` of a Google error body (`{"error": {…}}`, alone or as the
/// first element of an array, as streaming endpoints send it); none for any
/// other body.
fn google_details(body: &[u8]) -> Vec<GoogleDetail> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Body {
        // Tried first: serde would read an array as a struct's fields.
        Many(Vec<Wrapped>),
        One(Wrapped),
    }
    #[derive(serde::Deserialize)]
    struct Wrapped {
        error: Error,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        #[serde(default)]
        details: Vec<GoogleDetail>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body::One(w)) => w.error.details,
        Ok(Body::Many(v)) => v
            .into_iter()
            .next()
            .map(|w| w.error.details)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fn retry_after_secs(h: &HeaderMap) -> Option<u64> {
    h.get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s.ceil().min(MAX_RETRY_AFTER_SECS as f64) as u64)
}

/// How long a credential rests after a 429 whose wait no header said.
const UNSAID_RATE_LIMIT_COOL_DOWN_MS: u64 = 1_000;

/// The longest wait relayed to an app from an upstream's `Retry-After`.
const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// The error body, if it comes whole within `timeout` and the size bound
/// (else none: the app then gets the gateway's words for the status).
async fn read_error_body(body: UpstreamBody, timeout: Duration) -> Bytes {
    let read = Limited::new(body, MAX_ERROR_BODY).collect();
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) | Err(_) => Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_googles_structured_reason_marks_a_rejected_key() {
        let google = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert!(rejects_credential(StatusCode::BAD_REQUEST, google));
        assert!(!rejects_credential(StatusCode::FORBIDDEN, google));
        // What an app can make an upstream echo: the word, not the reason.
        for echoed in [
            &br#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"API_KEY_INVALID\": Cannot find field.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"description":"Unknown name \"API_KEY_INVALID\""}]}]}}"#[..],
            br#"{"error":{"message":"Invalid value: 'API_KEY_INVALID'. Supported values are: 'low' and 'high'.","type":"invalid_request_error"}}"#,
            b"API_KEY_INVALID",
        ] {
            assert!(
                !rejects_credential(StatusCode::BAD_REQUEST, echoed),
                "{}",
                String::from_utf8_lossy(echoed)
            );
        }
    }

    #[test]
    fn reads_geminis_retry_delay_from_the_body() {
        let body = br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "29.5s"}]}}"#;
        assert_eq!(retry_delay_in(body), Some(30));
        let many = format!("[{}]", std::str::from_utf8(body).unwrap_or_default());
        assert_eq!(retry_delay_in(many.as_bytes()), Some(30));
        assert_eq!(
            retry_delay_in(br#"{"error": {"details": [{"retryDelay": "1e9s"}]}}"#),
            Some(3600)
        );
        for none in [
            &br#"{"error": {"message": "slow down"}}"#[..],
            b"<html>",
            b"",
        ] {
            assert_eq!(retry_delay_in(none), None);
        }
        match refusal(
            "gemini",
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Bytes::from_static(body),
        ) {
            GatewayError::UpstreamResponse { retry_after, .. } => assert_eq!(retry_after, Some(30)),
            other => panic!("{other:?}"),
        }
        // A header, when sent, wins.
        match refusal(
            "gemini",
            StatusCode::TOO_MANY_REQUESTS,
            Some(5),
            Bytes::from_static(body),
        ) {
            GatewayError::UpstreamResponse { retry_after, .. } => assert_eq!(retry_after, Some(5)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after_secs(&h), Some(2));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1e300"));
        assert_eq!(retry_after_secs(&h), Some(3600));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after_secs(&h), None);
    }
}
