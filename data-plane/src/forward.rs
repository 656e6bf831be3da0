//! The only code that talks to upstreams. Sends one request through a
//! provider's pool, moving to the next credential on a connection error, a
//! timeout, a 429, an auth failure or a 5xx, and cooling down the credential
//! that failed. Providers shape bodies; this module only moves bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};

use crate::error::GatewayError;
use crate::runtime::Upstream;
use crate::trace_report::TraceDraft;
use crate::upstream_client::{UpstreamBody, UpstreamClient};

pub type HttpClient = UpstreamClient;

/// Largest upstream error body relayed to the app.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
}

pub async fn send(
    client: &HttpClient,
    call: Call<'_>,
    draft: &mut TraceDraft,
) -> Result<Answer, GatewayError> {
    let up = call.upstream;
    let provider = &up.provider.name;
    draft.rec.provider = provider.clone();
    let uri: Uri = format!("{}{}", up.provider.base_url, call.path)
        .parse()
        .map_err(|_| GatewayError::Internal(format!("bad upstream URL for provider {provider}")))?;
    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<GatewayError> = None;
    while (tried.len() as u32) < call.max_attempts.max(1) {
        let idx = match up.pool.pick(&tried, call.affinity) {
            Ok(i) => i,
            Err(ex) => {
                return Err(last.unwrap_or(GatewayError::PoolExhausted {
                    provider: provider.clone(),
                    retry_after_secs: ex.retry_after_secs,
                }));
            }
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

        let t0 = Instant::now();
        let result = tokio::time::timeout(call.timeout, client.request(req)).await;
        let latency_us = t0.elapsed().as_micros() as u64;
        let resp = match result {
            Err(_) => {
                key.health.cool_down(2_000);
                draft.attempt(provider, &key.name, 0, latency_us, "timeout");
                draft.cooled_down(2_000);
                last = Some(GatewayError::Upstream {
                    provider: provider.clone(),
                    detail: format!("no response within {} s", call.timeout.as_secs()),
                    timeout: true,
                });
                continue;
            }
            Ok(Err(e)) => {
                key.health.cool_down(2_000);
                let detail = if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                tracing::warn!(provider = %provider, key = %key.name, error = %e, "upstream attempt failed");
                draft.attempt(provider, &key.name, 0, latency_us, detail);
                draft.cooled_down(2_000);
                last = Some(GatewayError::Upstream {
                    provider: provider.clone(),
                    detail: detail.to_string(),
                    timeout: false,
                });
                continue;
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status.is_success() {
            key.health.observe_latency(latency_us);
            draft.attempt(provider, &key.name, status.as_u16(), latency_us, "");
            return Ok(Answer { response: resp });
        }
        let retry_after = retry_after_secs(resp.headers());
        let body = read_error_body(resp.into_body()).await;
        let body = scrub(body, up.pool.keys.iter().map(|k| k.secret.as_str()));
        draft.attempt(
            provider,
            &key.name,
            status.as_u16(),
            latency_us,
            status.canonical_reason().unwrap_or(""),
        );
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let ms = retry_after.unwrap_or(1).min(300) * 1000;
                key.health.cool_down(ms);
                draft.cooled_down(ms);
                last = Some(GatewayError::UpstreamResponse {
                    status,
                    retry_after: Some(retry_after.unwrap_or(1)),
                    body,
                });
            }
            // The pool's credential is bad, not the app's request: the
            // upstream's message may quote the credential, so it is not
            // relayed. (A 403 is not taken as that: an app can provoke one,
            // e.g. with a model the credential may not use, and must not be
            // able to take the pool's credentials offline for everyone.)
            s if s == StatusCode::UNAUTHORIZED || rejects_credential(s, &body) => {
                key.health.cool_down(60_000);
                draft.cooled_down(60_000);
                tracing::error!(provider = %provider, key = %key.name, %status, "upstream rejected a pool credential");
                last = Some(GatewayError::Upstream {
                    provider: provider.clone(),
                    detail: format!(
                        "it rejected the gateway's credential (HTTP {})",
                        status.as_u16()
                    ),
                    timeout: false,
                });
            }
            s if s.is_server_error() || s.as_u16() == 529 => {
                last = Some(GatewayError::UpstreamResponse {
                    status,
                    retry_after,
                    body,
                });
            }
            // The request itself is wrong: another credential won't help.
            _ => {
                return Err(GatewayError::UpstreamResponse {
                    status,
                    retry_after,
                    body,
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::Internal("no attempt was made".into())))
}

/// Gemini answers a bad API key with 400 `API_KEY_INVALID` rather than 401.
fn rejects_credential(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST && body.windows(15).any(|w| w == b"API_KEY_INVALID")
}

fn retry_after_secs(h: &HeaderMap) -> Option<u64> {
    h.get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s.ceil() as u64)
}

async fn read_error_body(body: UpstreamBody) -> Bytes {
    match Limited::new(body, MAX_ERROR_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

/// Replaces any pool secret an upstream echoed back.
pub fn scrub<'a>(body: Bytes, secrets: impl Iterator<Item = &'a str>) -> Bytes {
    let mut text: Option<String> = None;
    for s in secrets.filter(|s| s.len() >= 8) {
        let hay = text.as_deref().map(str::as_bytes).unwrap_or(&body);
        if hay.windows(s.len()).any(|w| w == s.as_bytes()) {
            let t = text
                .take()
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            text = Some(t.replace(s, "[redacted]"));
        }
    }
    text.map(Bytes::from).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_echoed_secrets() {
        let b = Bytes::from_static(b"{\"error\":\"bad key sk-secret-123456 used\"}");
        let out = scrub(b, ["sk-secret-123456", "short"].into_iter());
        assert_eq!(&out[..], b"{\"error\":\"bad key [redacted] used\"}");
    }

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after_secs(&h), Some(2));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after_secs(&h), None);
    }
}
