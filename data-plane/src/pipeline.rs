//! The request pipeline, one phase per line, in the order they run:
//! authenticate → read body → parse → route → allow-list → forward through the
//! pool → meter usage → file the trace. Each phase lives in its own module.

use std::sync::Arc;

use aigw_proto::model::ClientKey;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;

use crate::error::{ApiFormat, GatewayError};
use crate::forward::{self, Call};
use crate::providers::openai::{self, ChatRequest};
use crate::runtime::Runtime;
use crate::state::AppState;
use crate::stream::MeteredStream;
use crate::trace_report::TraceDraft;
use crate::{auth, models};

pub type ResBody = Either<Full<Bytes>, MeteredStream>;

/// Largest non-streamed upstream answer the gateway buffers.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResBody> {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn live(state: &AppState) -> Result<Arc<Runtime>, GatewayError> {
    state.live.load_full().ok_or(GatewayError::NotReady)
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    state: &Arc<AppState>,
    parts: Parts,
    body: Incoming,
    request_id: &str,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, &parts)?;
    let mut draft = Some(TraceDraft::new(
        request_id,
        "chat.completions",
        "openai",
        &state.cfg.region,
        &state.node_id,
    ));
    if let Some(d) = &mut draft {
        d.rec.client_key_id = key.id.clone();
        d.rec.client_key_name = key.name.clone();
    }
    let result = chat(state, &rt, &key, &parts, body, &mut draft).await;
    // A streamed answer files its own trace when it ends.
    if let Some(mut d) = draft {
        let status = match &result {
            Ok(r) => r.status(),
            Err(e) => {
                d.set_error(e.kind());
                e.status()
            }
        };
        state.traces.submit(d.finish(status.as_u16()));
    }
    result
}

async fn chat(
    state: &Arc<AppState>,
    rt: &Runtime,
    key: &ClientKey,
    parts: &Parts,
    body: Incoming,
    draft: &mut Option<TraceDraft>,
) -> Result<Response<ResBody>, GatewayError> {
    let body = read_body(parts, body, state.cfg.max_body_bytes).await?;
    let req = ChatRequest::parse(&body)?;
    if let Some(d) = draft.as_mut() {
        d.rec.model = req.model.clone();
        d.rec.stream = req.stream;
        d.price = rt.snapshot.price(&req.model);
    }
    let upstream = rt
        .route(&req.model)
        .ok_or_else(|| GatewayError::UnknownModel(req.model.clone()))?;
    if !key.allows(&req.model) {
        return Err(GatewayError::ModelNotAllowed(req.model));
    }
    let (upstream_body, strip_usage_chunk) = req.upstream_body(body)?;
    let Some(d) = draft.as_mut() else {
        return Err(GatewayError::Internal("trace missing".into()));
    };
    let answer = forward::send(
        &state.client,
        Call {
            upstream,
            path: "/v1/chat/completions",
            body: upstream_body,
            headers: forward::passed_headers(&parts.headers),
            timeout: state.cfg.upstream_timeout(),
            max_attempts: state.cfg.max_attempts,
        },
        d,
    )
    .await?;
    let (up_parts, up_body) = answer.response.into_parts();
    let is_sse = up_parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if req.stream && is_sse {
        let Some(d) = draft.take() else {
            return Err(GatewayError::Internal("trace missing".into()));
        };
        let status = up_parts.status;
        let stream = MeteredStream::new(
            up_body,
            strip_usage_chunk,
            d,
            state.traces.clone(),
            status.as_u16(),
        );
        let mut r = Response::new(Either::Right(stream));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(r);
    }
    let bytes = Limited::new(up_body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| GatewayError::Upstream {
            provider: upstream.provider.name.clone(),
            detail: format!("the response body broke off: {e}"),
            timeout: false,
        })?
        .to_bytes();
    d.first_byte();
    if let Some(u) = openai::usage_from_body(&bytes) {
        d.usage = u;
    }
    let mut r = Response::new(Either::Left(Full::new(bytes)));
    *r.status_mut() = up_parts.status;
    let ct = up_parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    r.headers_mut().insert(CONTENT_TYPE, ct);
    Ok(r)
}

/// Reads the app's body, refusing it as soon as it is known to be too large.
async fn read_body(parts: &Parts, body: Incoming, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::invalid(
            format!("could not read the request body: {e}"),
            None,
        )),
    }
}

/// `GET /v1/models`: the models this key may call, as OpenAI lists them.
pub fn list_models(state: &AppState, parts: &Parts) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, parts)?;
    let body = models::openai_list(&rt, &key);
    Ok(full(StatusCode::OK, "application/json", body))
}
