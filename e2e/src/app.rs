//! The mock's HTTP surface: the provider endpoints, and the `/_mock/*` test
//! controls (absent in `--fast` mode).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::Value;

use crate::error::MockError;
use crate::faults::{Fault, FaultQueue};
use crate::ids;
use crate::openai::{self, ChatRequest, Completion};
use crate::recording::Recorder;
use crate::tokens::Exchange;

/// Larger than any body a data plane forwards (its default limit is 16 MiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How long a cut body waits, after its last chunk, before failing.
const CUT_FLUSH_GRACE: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Mock {
    recorder: Recorder,
    faults: FaultQueue,
}

/// The whole mock. `fast`: no recording, no faults, no control endpoints.
pub fn router(fast: bool) -> Router {
    let mock = Arc::new(Mock {
        recorder: Recorder::new(!fast),
        faults: FaultQueue::default(),
    });
    let mut app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models));
    if !fast {
        app = app
            .route("/_mock/requests", get(list_requests).delete(clear_requests))
            .route(
                "/_mock/faults",
                get(list_faults).post(add_faults).delete(clear_faults),
            );
    }
    app.fallback(unknown)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(mock)
}

/// The upstream credential: X of `Authorization: Bearer X`, if non-empty.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Adds the headers the real API sends with every answer. Its own
/// `x-request-id` included: a gateway must not pass it off as its own.
fn provider_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("req_{}", ids::random_hex(32))) {
        h.insert("x-request-id", v);
    }
    h.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    h.insert("openai-processing-ms", HeaderValue::from_static("1"));
    resp
}

fn error_response(err: &MockError, retry_after: Option<u64>) -> Response {
    let (status, body) = openai::error_parts(err);
    let mut resp = json_response(status, &body);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    provider_headers(resp)
}

async fn chat(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ticket = mock.recorder.record(&method, &uri, &headers, &body);
    let (resp, usage) = answer_chat(&mock, &headers, &body).await;
    mock.recorder.answer(ticket, resp.status().as_u16(), usage);
    resp
}

/// The answer to a chat request, and the usage object it carries (if any).
async fn answer_chat(mock: &Mock, headers: &HeaderMap, body: &[u8]) -> (Response, Option<Value>) {
    let Some(key) = bearer(headers) else {
        return (error_response(&MockError::MissingKey, None), None);
    };
    let req = match ChatRequest::parse(body) {
        Ok(req) => req,
        Err(e) => return (error_response(&e, None), None),
    };
    let fault = mock.faults.take(key, &req.model).unwrap_or_default();
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = fault.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let err = MockError::Injected {
            status,
            message: fault
                .message
                .clone()
                .unwrap_or_else(|| MockError::default_message(status)),
        };
        return (error_response(&err, fault.retry_after), None);
    }

    let exchange = Exchange::for_messages(&req.messages);
    let completion = Completion::new(&req.model);
    if req.stream {
        let (frames, usage_index) = completion.stream_frames(&exchange, req.include_usage);
        // The usage reached the client only if the stream got that far.
        let usage = usage_index
            .filter(|i| fault.cut_after_chunks.is_none_or(|n| *i < n))
            .map(|_| openai::usage(&exchange));
        let resp = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(chunked_body(frames, &fault))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        (provider_headers(resp), usage)
    } else {
        let value = completion.response(&exchange);
        if fault.cut_after_chunks.is_some() {
            // Half the JSON, then the connection drops.
            let bytes = Bytes::from(value.to_string());
            let half = bytes.slice(..bytes.len() / 2);
            let cut = Fault {
                cut_after_chunks: Some(1),
                chunk_delay_ms: fault.chunk_delay_ms,
                ..Fault::default()
            };
            let resp = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(chunked_body(vec![half], &cut))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            return (provider_headers(resp), None);
        }
        let resp = json_response(StatusCode::OK, &value);
        (provider_headers(resp), Some(openai::usage(&exchange)))
    }
}

/// A body sent chunk by chunk, optionally slowly, optionally cut: after
/// `cut_after_chunks` chunks the body fails, which makes the server drop the
/// connection without finishing the response.
fn chunked_body(frames: Vec<Bytes>, fault: &Fault) -> Body {
    let mut items: Vec<Result<Bytes, io::Error>> = frames.into_iter().map(Ok).collect();
    if let Some(n) = fault.cut_after_chunks {
        items.truncate(n);
        items.push(Err(io::Error::other("mock fault: stream cut")));
    }
    let delay = fault.chunk_delay_ms.map(Duration::from_millis);
    let s = stream::iter(items).then(move |item| async move {
        if item.is_err() {
            // Let the server flush what was sent before dropping the
            // connection: the client must see the first chunks, then the cut.
            tokio::time::sleep(CUT_FLUSH_GRACE).await;
        } else if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        item
    });
    Body::from_stream(s)
}

async fn models(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ticket = mock.recorder.record(&method, &uri, &headers, b"");
    let resp = if bearer(&headers).is_some() {
        provider_headers(json_response(StatusCode::OK, &openai::models_list()))
    } else {
        error_response(&MockError::MissingKey, None)
    };
    mock.recorder.answer(ticket, resp.status().as_u16(), None);
    resp
}

/// Anything else is recorded (a misrouted call shows up in the tests) and
/// answered like the real API answers an unknown URL.
async fn unknown(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ticket = mock.recorder.record(&method, &uri, &headers, &body);
    let err = MockError::UnknownPath {
        method: method.to_string(),
        path: uri.path().to_owned(),
    };
    let resp = error_response(&err, None);
    mock.recorder.answer(ticket, resp.status().as_u16(), None);
    resp
}

async fn list_requests(State(mock): State<Arc<Mock>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(mock.recorder.all()))
}

async fn clear_requests(State(mock): State<Arc<Mock>>) -> StatusCode {
    mock.recorder.clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(mock): State<Arc<Mock>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(mock.faults.pending()))
}

/// Accepts one fault object or an array of them.
async fn add_faults(State(mock): State<Arc<Mock>>, body: Bytes) -> Result<StatusCode, Response> {
    let bad = |msg: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": null}}),
        )
    };
    let value: Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
    let list = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let faults = list
        .into_iter()
        .map(serde_json::from_value::<Fault>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid fault: {e}")))?;
    for f in faults {
        mock.faults.push(f);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(mock): State<Arc<Mock>>) -> StatusCode {
    mock.faults.clear();
    StatusCode::NO_CONTENT
}
