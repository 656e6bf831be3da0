//! The respond phase: turns the upstream's answer into the app's, streamed
//! event by event or whole, passed through or translated back, usage
//! metered either way. A whole answer is finished here; a streamed one is
//! returned as a [`Reply::Stream`] for the pipeline to hand its context to
//! (the stream then runs the logging phase when it ends).

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Either, Full, Limited};

use crate::context::RequestCtx;
use crate::endpoints::{AppCall, Op};
use crate::error::{Failure, GatewayError};
use crate::forward::Answer;
use crate::json_array::JsonArrayParser;
use crate::pipeline::ResBody;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::state::AppState;
use crate::stream::{AppStream, MeteredStream, Metering, Mode};
use crate::trace_report::{TraceDraft, Written};
use crate::translate::{self, Framing};
use crate::upstream_client::UpstreamBody;

/// Largest non-streamed upstream answer the gateway buffers (a few inline
/// images in base64 fit; each request in flight may hold this much).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The app's answer, before the logging phase. (Moved once per request, so
/// the stream's metering state is not boxed.)
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// Whole: the pipeline logs the request once it is built.
    Whole(Response<Full<Bytes>>),
    /// Streamed: the body still needs the request's context, which it logs
    /// when the stream ends, breaks or is dropped.
    Stream(Response<(UpstreamBody, Metering)>),
}

impl Reply {
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        match self {
            Self::Whole(r) => r.headers_mut(),
            Self::Stream(r) => r.headers_mut(),
        }
    }

    /// The response the app gets; the context goes with a streamed body,
    /// and is logged here for a whole one, whose trace ticket the caller
    /// awaits before answering.
    pub fn into_response(self, ctx: RequestCtx) -> (Response<ResBody>, Option<Written>) {
        match self {
            Self::Whole(r) => {
                let written = ctx.log(r.status().as_u16());
                (r.map(Either::Left), Some(written))
            }
            Self::Stream(r) => {
                let status = r.status().as_u16();
                let r = r.map(|(body, metering)| {
                    Either::Right(AppStream::new(MeteredStream::new(
                        body, metering, ctx, status,
                    )))
                });
                (r, None)
            }
        }
    }
}

pub async fn respond(
    state: &AppState,
    call: &AppCall,
    plan: &Plan,
    answer: Answer,
    trace: &mut TraceDraft,
) -> Result<Reply, GatewayError> {
    let Answer { response, redactor } = answer;
    let (up, up_body) = response.into_parts();
    let content_type = up.headers.get(CONTENT_TYPE).cloned();
    let is_sse = crate::forward::is_event_stream(&up.headers);
    if plan.stream {
        let (app, target) = (call.format.codec(), plan.target.codec());
        // Gemini without `?alt=sse` streams a JSON array, not events.
        let framing = app.framing(call);
        let app_array = framing == Framing::JsonArray;
        let mode = match (&plan.ir, is_sse) {
            (Some(ir), true) => Mode::Translate {
                decoder: {
                    let mut d = target.stream_decoder();
                    d.translating();
                    d
                },
                encoder: app.stream_encoder(ir, framing),
                names: plan.tool_names.clone(),
            },
            (None, true) if target.stream_usage_on_request() => Mode::OpenAiChat {
                strip_usage_chunk: plan.strip_usage_chunk,
            },
            (None, true) => Mode::Observe(target.stream_decoder()),
            (None, false) if app_array => Mode::JsonArray {
                parser: JsonArrayParser::new(),
                decoder: target.stream_decoder(),
            },
            (None, false) => Mode::Raw {
                kept: Some(Vec::new()),
            },
            (Some(_), false) => {
                return Err(GatewayError::upstream(
                    &trace.rec.provider,
                    Failure::NotAStream,
                ));
            }
        };
        let metering = Metering {
            mode,
            redactor,
            app: call.format,
            framing,
            upstream: target,
            idle_timeout: Duration::from_secs(state.cfg.stream_idle_timeout_secs.max(1)),
        };
        let mut r = Response::new((up_body, metering));
        *r.status_mut() = up.status;
        let h = r.headers_mut();
        if is_sse && app_array {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        } else if is_sse {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        } else if let Some(ct) = content_type {
            h.insert(CONTENT_TYPE, ct);
        }
        return Ok(Reply::Stream(r));
    }
    // The body gets the same time its head had: an upstream that sends
    // the head and then nothing (or a byte a minute) must not hold the app,
    // the connection and the budget reservation for ever.
    let timeout = state.cfg.upstream_timeout();
    let read = tokio::time::timeout(timeout, Limited::new(up_body, MAX_RESPONSE_BYTES).collect());
    let failure = match read.await {
        Err(_) => Failure::Timeout(timeout.as_secs()),
        Ok(Err(e)) => Failure::BodyBroken(e.to_string()),
        Ok(Ok(c)) => return whole(call, plan, trace, up, content_type, c.to_bytes(), &redactor),
    };
    // A whole answer is made, and billed, before its head is sent: one
    // that broke off after a success head is charged as an answer the app
    // left (the prompt's estimate and the whole output estimate), not as
    // free.
    if up.status.is_success() && call.op != Op::CountTokens {
        let output = trace.output_estimate;
        trace.charge_unreported(output, "estimated_broken");
    }
    Err(GatewayError::upstream(&trace.rec.provider, failure))
}

/// A whole answer read: its usage taken, translated for the app if needed,
/// and scrubbed of the pool's secret.
fn whole(
    call: &AppCall,
    plan: &Plan,
    trace: &mut TraceDraft,
    up: http::response::Parts,
    content_type: Option<HeaderValue>,
    bytes: Bytes,
    redactor: &Redactor,
) -> Result<Reply, GatewayError> {
    trace.first_byte();
    let answer_len = bytes.len() as u64;
    let out = if plan.native {
        if call.op != Op::CountTokens
            && let Some(u) = translate::usage_of_body(plan.target, call.op == Op::Embed, &bytes)
        {
            trace.usage = u;
        }
        trace.observe_answer(&bytes);
        redactor.scrub(bytes)
    } else {
        let mut answer = match translate::decode_response(plan.target, &bytes) {
            Ok(a) => a,
            Err(e) => {
                // An answer that cannot be given (Gemini's failed function
                // call, an error object sent with `200`, say) may still
                // report what the provider billed.
                if let Some(u) = translate::usage_of_body(plan.target, false, &bytes) {
                    trace.usage = u;
                }
                return Err(GatewayError::upstream(
                    &trace.rec.provider,
                    Failure::Unreadable(redactor.scrub_str(&e.message)),
                ));
            }
        };
        if let Some(names) = &plan.tool_names {
            names.restore_response(&mut answer);
        }
        trace.usage = answer.usage;
        if trace.response_model.is_empty() {
            trace.response_model.clone_from(&answer.model);
        }
        let encoded = translate::encode_response(call.format, &answer);
        redactor.scrub(Bytes::from(
            encoded.map_err(|e| GatewayError::Internal(e.to_string()))?,
        ))
    };
    // About a token per four bytes of the answer, if it reported nothing.
    // Embeddings are billed by their input alone, which Gemini's API never
    // reports (its embed answers carry no usage): the prompt's estimate.
    match call.op {
        Op::Generate => trace.charge_if_unreported(answer_len.div_ceil(4)),
        Op::Embed => trace.charge_if_unreported(0),
        Op::CountTokens => {}
    }
    let mut r = Response::new(Full::new(out));
    *r.status_mut() = up.status;
    let ct = match (plan.native, content_type) {
        (true, Some(ct)) => ct,
        _ => HeaderValue::from_static("application/json"),
    };
    r.headers_mut().insert(CONTENT_TYPE, ct);
    Ok(Reply::Whole(r))
}
