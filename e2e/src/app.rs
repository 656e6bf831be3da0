//! The mock's HTTP surface: the provider endpoints of every wire format, and
//! the `/_mock/*` test controls (absent in `--fast` mode).
//!
//! | format | endpoints | credential |
//! |---|---|---|
//! | OpenAI | `POST /v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `GET /v1/models[/ID]` | `Authorization: Bearer X` |
//! | Anthropic | `POST /v1/messages`, `/v1/messages/count_tokens`, `GET /v1/models[/ID]` with `anthropic-version` | `x-api-key` or `Authorization: Bearer` (+ `anthropic-version` required) |
//! | Gemini | `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens`, `:embedContent`, `:batchEmbedContents`, `GET /v1beta/models[/ID]`; the same under `/v1/`; `GET /v1/models` with a Gemini key | `x-goog-api-key` or `?key=` |
//!
//! Every provider request goes through [`serve`]: recorded, its credential
//! checked, parsed by its format's module into a [`Ready`] answer, then the
//! queued fault (if any) applied, errors rendered in the format's own shape.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::Value;

use crate::accounts::{Accounts, KeyState, SetState};
use crate::error::MockError;
use crate::faults::{Fault, FaultQueue};
use crate::recording::{Recorded, Recorder};
use crate::{anthropic, embeddings, gemini, ids, openai, responses};

/// Larger than any body a data plane forwards (its default limit is 16 MiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How long a cut body waits, after its last chunk, before failing.
const CUT_FLUSH_GRACE: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Mock {
    recorder: Recorder,
    faults: FaultQueue,
    accounts: Accounts,
}

/// The provider a request addresses: decides the credential header, the
/// error shape and the headers of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

/// A valid request's answer, before faults.
#[derive(Debug)]
pub enum Answer {
    /// A JSON body and the usage object it reports (if any).
    Json { body: Value, usage: Option<Value> },
    /// SSE frames, the usage the stream reports in the end (if any), and the
    /// index of the frame that completes it: a stream cut before that frame
    /// reported no usage.
    Sse {
        frames: Vec<Bytes>,
        usage: Option<Value>,
        usage_index: Option<usize>,
    },
}

/// A parsed request: the model it is for (for fault filters) and its answer.
#[derive(Debug)]
pub struct Ready {
    pub model: String,
    pub answer: Answer,
}

impl Mock {
    /// `fast`: record nothing (and [`router`] adds no control endpoints).
    pub fn new(fast: bool) -> Self {
        Self {
            recorder: Recorder::new(!fast),
            faults: FaultQueue::default(),
            accounts: Accounts::default(),
        }
    }

    /// Queues a fault, as `POST /_mock/faults` does.
    pub fn add_fault(&self, fault: Fault) {
        self.faults.push(fault);
    }

    /// The faults not used up yet, as `GET /_mock/faults` lists them.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.faults.pending()
    }

    /// What the mock received so far, oldest first (`GET /_mock/requests`).
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorder.all()
    }

    /// Sets a credential's account state, as `POST /_mock/keys` does.
    pub fn set_key(&self, key: &str, state: KeyState) {
        self.accounts.set(SetState {
            key: key.to_owned(),
            state,
        });
    }
}

/// The whole mock. `fast`: no recording, no faults, no control endpoints.
pub fn router(mock: Arc<Mock>, fast: bool) -> Router {
    let mut app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(responses_create))
        .route("/v1/embeddings", post(embeddings_create))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models_v1))
        .route("/v1/models/{*rest}", get(model_v1).post(gemini_action))
        .route("/v1beta/models", get(gemini_models))
        .route(
            "/v1beta/models/{*rest}",
            get(gemini_model).post(gemini_action),
        );
    if !fast {
        app = app
            .route("/_mock/requests", get(list_requests).delete(clear_requests))
            .route(
                "/_mock/faults",
                get(list_faults).post(add_faults).delete(clear_faults),
            )
            .route(
                "/_mock/keys",
                get(list_keys).post(set_key).delete(clear_keys),
            );
    }
    app.fallback(unknown)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(strict_request_line))
        .with_state(mock)
}

/// What a strict origin (nginx, Google's and Cloudflare's front ends) refuses
/// before any API logic: an HTTP/1.1 request without `Host`, or with a
/// request line in absolute form whose authority is not the `Host` sent.
async fn strict_request_line(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let bad = match (req.version(), host) {
        (axum::http::Version::HTTP_11, None) => true,
        (_, Some(h)) => req.uri().authority().is_some_and(|a| a.as_str() != h),
        _ => false,
    };
    if bad {
        let mut r = (StatusCode::BAD_REQUEST, "400 Bad Request\n").into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    next.run(req).await
}

// ---------------------------------------------------------------- credentials

/// X of `Authorization: Bearer X`, if non-empty.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `?key=X` (percent-decoding is not needed for the keys the tests use).
fn query_key(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "key")
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The upstream credential a request carries, where its provider wants it.
fn credential(wire: Wire, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    match wire {
        Wire::OpenAi => bearer(headers).map(str::to_owned),
        // The `anthropic` SDK 2.x sends its key as a bearer token.
        Wire::Anthropic => header_str(headers, "x-api-key")
            .or_else(|| bearer(headers))
            .map(str::to_owned),
        Wire::Gemini => header_str(headers, "x-goog-api-key")
            .map(str::to_owned)
            .or_else(|| query_key(uri)),
    }
}

// ---------------------------------------------------------------- responses

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Adds the headers the real API sends with every answer. OpenAI's own
/// `x-request-id` included: a gateway must not pass it off as its own.
fn provider_headers(wire: Wire, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    match wire {
        Wire::OpenAi => {
            if let Ok(v) = HeaderValue::from_str(&format!("req_{}", ids::random_hex(32))) {
                h.insert("x-request-id", v);
            }
            h.insert("openai-version", HeaderValue::from_static("2020-10-01"));
            h.insert("openai-processing-ms", HeaderValue::from_static("1"));
        }
        Wire::Anthropic => {
            if let Ok(v) = HeaderValue::from_str(&format!("req_011C{}", ids::random_alnum(20))) {
                h.insert("request-id", v);
            }
            h.insert(
                "anthropic-organization-id",
                HeaderValue::from_static("00000000-0000-0000-0000-00000000m0c4"),
            );
        }
        Wire::Gemini => {
            h.insert(
                "server",
                HeaderValue::from_static("scaffolding on HTTPServer2"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
        }
    }
    resp
}

fn error_response(wire: Wire, err: &MockError, retry_after: Option<u64>) -> Response {
    let (status, body) = match wire {
        Wire::OpenAi => openai::error_parts(err),
        Wire::Anthropic => anthropic::error_parts(err),
        Wire::Gemini => gemini::error_parts(err),
    };
    let mut resp = json_response(status, &body);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    provider_headers(wire, resp)
}

/// A streamed answer's type: Gemini without `?alt=sse` streams one JSON
/// array (see `gemini`), every other stream is SSE.
fn stream_content_type(wire: Wire, uri: &Uri) -> &'static str {
    match wire {
        Wire::Gemini if !crate::gemini::wants_sse(uri.query().unwrap_or("")) => {
            "application/json; charset=UTF-8"
        }
        Wire::Gemini => "text/event-stream",
        Wire::OpenAi | Wire::Anthropic => "text/event-stream; charset=utf-8",
    }
}

// ---------------------------------------------------------------- the common path

/// Records a provider request and answers it: credential, parse (`parse`
/// turns the body into a [`Ready`]), fault, answer.
async fn serve(
    mock: &Mock,
    wire: Wire,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    parse: impl FnOnce(&[u8]) -> Result<Ready, MockError>,
) -> Response {
    let ticket = mock.recorder.record(method, uri, headers, body);
    let (resp, usage) = answer(mock, wire, uri, headers, body, parse).await;
    mock.recorder.answer(ticket, resp.status().as_u16(), usage);
    resp
}

async fn answer(
    mock: &Mock,
    wire: Wire,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<Ready, MockError>,
) -> (Response, Option<Value>) {
    let Some(key) = credential(wire, headers, uri) else {
        return (error_response(wire, &MockError::MissingKey, None), None);
    };
    if let Some(refused) = mock.accounts.refusal(wire, &key) {
        return (error_response(wire, &refused, None), None);
    }
    if wire == Wire::Anthropic && header_str(headers, "anthropic-version").is_none() {
        return (error_response(wire, &MockError::MissingVersion, None), None);
    }
    let ready = match parse(body) {
        Ok(r) => r,
        Err(e) => return (error_response(wire, &e, None), None),
    };
    let fault = mock
        .faults
        .take(&key, &ready.model, uri.path())
        .unwrap_or_default();
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = fault.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(body) = fault.error_body.clone() {
            let ct = match body.as_bytes().first() {
                Some(b'<') => "text/html",
                Some(b'{') => "application/json",
                _ => "text/plain",
            };
            let resp = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, ct)
                .body(Body::from(body))
                .unwrap_or_default();
            return (resp, None);
        }
        let err = MockError::Injected {
            status,
            message: fault
                .message
                .clone()
                .unwrap_or_else(|| MockError::default_message(status)),
        };
        return (error_response(wire, &err, fault.retry_after), None);
    }

    match ready.answer {
        Answer::Sse {
            mut frames,
            mut usage,
            mut usage_index,
        } => {
            if let Some(body) = &fault.stream_body {
                frames = vec![Bytes::from(body.clone())];
                usage = None;
                usage_index = None;
            }
            if let Some(chunks) = &fault.stream_chunks {
                frames = chunks.iter().cloned().map(Bytes::from).collect();
                usage = None;
                usage_index = None;
            }
            if fault.omit_usage
                && let Some(i) = usage_index.take()
                && i < frames.len()
            {
                frames.remove(i);
                usage = None;
            }
            // The usage reached the client only if the stream got that far.
            let usage = usage.filter(|_| {
                usage_index.is_none_or(|i| fault.cut_after_chunks.is_none_or(|n| i < n))
            });
            let resp = Response::builder()
                .status(StatusCode::OK)
                .header(
                    header::CONTENT_TYPE,
                    fault
                        .stream_content_type
                        .as_deref()
                        .unwrap_or(stream_content_type(wire, uri)),
                )
                .header(header::CACHE_CONTROL, "no-cache")
                .body(chunked_body(frames, &fault))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            (provider_headers(wire, resp), usage)
        }
        Answer::Json {
            mut body,
            mut usage,
        } => {
            if fault.omit_usage
                && let Some(o) = body.as_object_mut()
            {
                o.remove("usage");
                o.remove("usageMetadata");
                usage = None;
            }
            if fault.cut_after_chunks.is_some() {
                // Half the JSON, then the connection drops.
                let bytes = Bytes::from(body.to_string());
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
                return (provider_headers(wire, resp), None);
            }
            (
                provider_headers(wire, json_response(StatusCode::OK, &body)),
                usage,
            )
        }
    }
}

/// A body sent chunk by chunk, optionally slowly, optionally cut: after
/// `cut_after_chunks` chunks the body fails, which makes the server drop the
/// connection without finishing the response.
fn chunked_body(frames: Vec<Bytes>, fault: &Fault) -> Body {
    let mut items: Vec<Result<Bytes, io::Error>> = frames.into_iter().map(Ok).collect();
    if let Some(len) = fault.endless_event_bytes {
        items.truncate(fault.cut_after_chunks.unwrap_or(1));
        items.push(Ok(Bytes::from_static(b"data: ")));
        let piece = Bytes::from(vec![b'a'; 64 * 1024]);
        items.extend((0..len.div_ceil(piece.len())).map(|_| Ok(piece.clone())));
        return Body::from_stream(stream::iter(items));
    }
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

// ---------------------------------------------------------------- OpenAI

async fn chat(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&mock, Wire::OpenAi, &method, &uri, &headers, &body, |b| {
        let req = openai::ChatRequest::parse(b)?;
        Ok(openai::answer(&req))
    })
    .await
}

async fn responses_create(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&mock, Wire::OpenAi, &method, &uri, &headers, &body, |b| {
        let req = responses::ResponsesRequest::parse(b)?;
        Ok(responses::answer(&req))
    })
    .await
}

async fn embeddings_create(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &mock,
        Wire::OpenAi,
        &method,
        &uri,
        &headers,
        &body,
        embeddings::answer,
    )
    .await
}

// ---------------------------------------------------------------- Anthropic

async fn messages(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &mock,
        Wire::Anthropic,
        &method,
        &uri,
        &headers,
        &body,
        |b| {
            let req = anthropic::MessagesRequest::parse(b, false)?;
            Ok(anthropic::answer(&req))
        },
    )
    .await
}

async fn count_tokens(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &mock,
        Wire::Anthropic,
        &method,
        &uri,
        &headers,
        &body,
        |b| {
            let req = anthropic::MessagesRequest::parse(b, true)?;
            Ok(anthropic::count_tokens(&req))
        },
    )
    .await
}

// ---------------------------------------------------------------- Gemini

/// `POST /v1beta/models/{model}:{action}` (and `/v1/...`).
async fn gemini_action(
    State(mock): State<Arc<Mock>>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&mock, Wire::Gemini, &method, &uri, &headers, &body, |b| {
        gemini::answer(&rest, uri.query().unwrap_or_default(), b)
    })
    .await
}

// ---------------------------------------------------------------- model lists

/// Which provider a `GET /v1/models...` addresses: Anthropic's SDK sends
/// `anthropic-version`, Gemini's a Gemini key; anything else is OpenAI.
fn models_wire(headers: &HeaderMap, uri: &Uri) -> Wire {
    if headers.contains_key("anthropic-version") {
        Wire::Anthropic
    } else if headers.contains_key("x-goog-api-key") || query_key(uri).is_some() {
        Wire::Gemini
    } else {
        Wire::OpenAi
    }
}

/// Answers a model list or lookup; `id` is `None` for the list. Recorded,
/// never faulted.
fn models_answer(
    mock: &Mock,
    wire: Wire,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Response {
    let ticket = mock.recorder.record(method, uri, headers, b"");
    let key = credential(wire, headers, uri);
    let refused = key.as_deref().and_then(|k| mock.accounts.refusal(wire, k));
    let resp = if key.is_none() {
        error_response(wire, &MockError::MissingKey, None)
    } else if let Some(e) = refused {
        error_response(wire, &e, None)
    } else {
        let found = match (wire, id) {
            (Wire::OpenAi, None) => Some(openai::models_list()),
            (Wire::OpenAi, Some(id)) => openai::model(id),
            (Wire::Anthropic, None) => Some(anthropic::models_list()),
            (Wire::Anthropic, Some(id)) => anthropic::model(id),
            (Wire::Gemini, None) => Some(gemini::models_list()),
            (Wire::Gemini, Some(id)) => gemini::model(id),
        };
        match found {
            Some(body) => provider_headers(wire, json_response(StatusCode::OK, &body)),
            None => error_response(
                wire,
                &MockError::Injected {
                    status: StatusCode::NOT_FOUND,
                    message: MockError::default_message(StatusCode::NOT_FOUND),
                },
                None,
            ),
        }
    };
    mock.recorder.answer(ticket, resp.status().as_u16(), None);
    resp
}

async fn models_v1(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let wire = models_wire(&headers, &uri);
    models_answer(&mock, wire, &method, &uri, &headers, None)
}

async fn model_v1(
    State(mock): State<Arc<Mock>>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let wire = models_wire(&headers, &uri);
    models_answer(&mock, wire, &method, &uri, &headers, Some(&rest))
}

async fn gemini_models(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    models_answer(&mock, Wire::Gemini, &method, &uri, &headers, None)
}

async fn gemini_model(
    State(mock): State<Arc<Mock>>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    models_answer(&mock, Wire::Gemini, &method, &uri, &headers, Some(&rest))
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
    let wire = if uri.path().starts_with("/v1beta/") {
        Wire::Gemini
    } else if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Wire::Anthropic
    } else {
        Wire::OpenAi
    };
    let err = MockError::UnknownPath {
        method: method.to_string(),
        path: uri.path().to_owned(),
    };
    let resp = error_response(wire, &err, None);
    mock.recorder.answer(ticket, resp.status().as_u16(), None);
    resp
}

// ---------------------------------------------------------------- test controls

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

async fn list_keys(State(mock): State<Arc<Mock>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(mock.accounts.all()))
}

async fn set_key(
    State(mock): State<Arc<Mock>>,
    axum::Json(set): axum::Json<SetState>,
) -> StatusCode {
    mock.accounts.set(set);
    StatusCode::NO_CONTENT
}

async fn clear_keys(State(mock): State<Arc<Mock>>) -> StatusCode {
    mock.accounts.clear();
    StatusCode::NO_CONTENT
}
