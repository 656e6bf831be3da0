//! The data plane as a `tower::Service`: classifies a request by path,
//! answers it (the model pipeline, model listings, health, metrics), stamps
//! it with its `x-request-id` and counts it. Errors become the calling
//! format's error body here, in one place. The listener serves it on
//! sockets; tests call it in process.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};

use crate::endpoints::{self, Endpoint};
use crate::error::GatewayError;
use crate::pipeline::{self, ResBody, full};
use crate::state::AppState;
use crate::translate::Format;

/// What an app's request body may be: hyper's `Incoming` on a socket, any
/// body of bytes in process.
pub trait AppBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}
impl<B> AppBody for B where B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers apps' requests. Cheap to clone (one `Arc`); never fails as a
/// service: every error is an HTTP answer.
#[derive(Clone)]
pub struct Gateway {
    state: Arc<AppState>,
}

impl Gateway {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

impl<B: AppBody> tower::Service<Request<B>> for Gateway {
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let state = self.state.clone();
        // The future is built in its box: an async block around `handle`
        // was moved (tens of kilobytes) into the box on every request.
        let f = handle(state, req).map(Ok);
        Box::pin(f)
    }
}

async fn handle<B: AppBody>(state: Arc<AppState>, req: Request<B>) -> Response<ResBody> {
    let started = Instant::now();
    let request_id = state.ids.next();
    let (parts, body) = req.into_parts();
    let endpoint = endpoints::classify(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
    );
    let label = endpoint.label();
    let format = endpoint.error_format();
    // A bug that panics must still answer, in the app's format and with
    // its request id, rather than tear the connection down unanswered.
    let answer = async {
        match endpoint {
            Endpoint::Call(call) => pipeline::serve(&state, parts, body, call, &request_id).await,
            Endpoint::ListModels(f) => pipeline::list_models(&state, &parts, f),
            Endpoint::GetModel(f, m) => pipeline::get_model(&state, &parts, f, &m),
            Endpoint::Healthz => Ok(full(StatusCode::OK, "text/plain", "ok\n")),
            Endpoint::Readyz => Ok(readyz(&state)),
            Endpoint::Metrics => Ok(full(
                StatusCode::OK,
                aigw_proto::prometheus::CONTENT_TYPE,
                crate::telemetry::metrics::render(&state),
            )),
            Endpoint::NotFound(_) if parts.uri.path().starts_with("/v1/responses/") => {
                Err(GatewayError::NotProxied {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                })
            }
            Endpoint::NotFound(_) => Err(GatewayError::NotFound {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
            }),
            Endpoint::MethodNotAllowed(..) if websocket_handshake(&parts) => {
                Err(GatewayError::WebSocketNotServed {
                    path: parts.uri.path().to_string(),
                })
            }
            Endpoint::MethodNotAllowed(_, allow) => Err(GatewayError::MethodNotAllowed {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                allow,
            }),
        }
    };
    let result = caught(answer).await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            crate::telemetry::metrics::request_error(e.kind());
            error_response(&e, format)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        // Anthropic's SDKs read theirs from `request-id` (`_request_id`,
        // and in the messages of their errors).
        if format == Format::Anthropic {
            resp.headers_mut().insert("request-id", v.clone());
        }
        resp.headers_mut().insert("x-request-id", v);
    }
    crate::telemetry::metrics::answered(label, status_class(resp.status()), started.elapsed());
    resp
}

/// `answer`'s result, or an internal error if it panicked. Not an `async
/// fn`: that would hold `answer` twice (as its argument and inside the
/// awaited future).
fn caught(
    answer: impl Future<Output = Result<Response<ResBody>, GatewayError>>,
) -> impl Future<Output = Result<Response<ResBody>, GatewayError>> {
    AssertUnwindSafe(answer).catch_unwind().map(|r| {
        r.unwrap_or_else(|_| {
            Err(GatewayError::Internal(
                "the request's handler panicked".into(),
            ))
        })
    })
}

pub fn error_response(e: &GatewayError, format: Format) -> Response<ResBody> {
    if matches!(e, GatewayError::Internal(_)) {
        tracing::error!(error = ?e, "internal error");
    }
    let mut r = full(e.status(), "application/json", e.body(format));
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if e.hopeless() {
        r.headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    if let GatewayError::MethodNotAllowed { allow, .. } = e {
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    if let GatewayError::RateLimited {
        limit,
        value,
        retry_after_secs,
        ..
    } = e
    {
        crate::ratelimit_headers::refused(r.headers_mut(), limit, *value, *retry_after_secs);
    }
    r
}

/// A WebSocket opening handshake (`GET` with `Upgrade: websocket`), as
/// Codex tries first at `/v1/responses`.
fn websocket_handshake(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::GET
        && parts
            .headers
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

fn readyz(state: &AppState) -> Response<ResBody> {
    match state.live.load().as_ref() {
        Some(rt) => full(
            StatusCode::OK,
            "text/plain",
            format!("ready {}\n", rt.version()),
        ),
        None => full(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "no snapshot yet\n",
        ),
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_an_internal_error() {
        let got = caught(async {
            if StatusCode::OK.is_success() {
                panic!("a bug");
            }
            Ok(full(StatusCode::OK, "text/plain", "never"))
        })
        .await;
        let Err(e) = got else {
            panic!("the panic was not caught")
        };
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_response(&e, Format::Anthropic);
        assert_eq!(body.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
