//! The request pipeline, in the order it runs: authenticate → read body →
//! probe (model, stream) → route (with fallbacks) → allow-list → plan the
//! upstream request (pass through or translate) → forward through the pool →
//! answer (metered, translated back when needed) → file the trace. Each
//! phase lives in its own module; this file only composes them.

use std::sync::Arc;
use std::time::Duration;

use aigw_proto::model::{Affinity, ClientKey};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;

use crate::endpoints::{AppCall, Op};
use crate::error::{GatewayError, upstream_message};
use crate::forward::{self, Call};
use crate::json_array::JsonArrayParser;
use crate::plan::{DROPPED_HEADER, Plan, Probe, plan};
use crate::ratelimit::Held;
use crate::runtime::Runtime;
use crate::state::AppState;
use crate::stream::{MeteredStream, Mode};
use crate::trace_report::TraceDraft;
use crate::translate::{self, Format, Framing};
use crate::upstream_client::UpstreamBody;
use crate::{auth, models};
use crate::{demand, ratelimit_headers};

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

/// A model call in any format. Files one trace per authenticated call.
pub async fn serve(
    state: &Arc<AppState>,
    parts: Parts,
    body: Incoming,
    call: AppCall,
    request_id: &str,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, &parts)?;
    let mut draft = TraceDraft::new(
        request_id,
        call.endpoint,
        call.format.as_str(),
        &state.cfg.region,
        &state.node_id,
    );
    draft.rec.client_key_id = key.id.clone();
    draft.rec.client_key_name = key.name.clone();
    let mut draft = Some(draft);
    let result = run(state, &rt, &key, &parts, body, &call, &mut draft).await;
    // A streamed answer files its own trace when it ends.
    if let Some(mut d) = draft {
        let status = match &result {
            Ok(r) => r.status(),
            Err(e) => {
                d.set_error(e.kind());
                if let GatewayError::RateLimited {
                    budget_id, limit, ..
                } = e
                {
                    d.rec.refused_by = format!("{budget_id}/{limit}");
                }
                e.status()
            }
        };
        state.traces.submit(d.finish(status.as_u16()));
    }
    result
}

async fn run(
    state: &Arc<AppState>,
    rt: &Runtime,
    key: &ClientKey,
    parts: &Parts,
    body: Incoming,
    call: &AppCall,
    draft: &mut Option<TraceDraft>,
) -> Result<Response<ResBody>, GatewayError> {
    let deadline = Duration::from_secs(state.cfg.body_timeout_secs.max(1));
    let body = tokio::time::timeout(deadline, read_body(parts, body, state.cfg.max_body_bytes))
        .await
        .map_err(|_| GatewayError::BodyTimeout {
            secs: deadline.as_secs(),
        })??;
    let mut probe = Probe::parse(call, &body)?;
    // An alias route serves the model as another; strict routes refuse what
    // the provider's format cannot express.
    let served = rt.snapshot.resolve(&probe.model);
    let strict = served.strict;
    probe.model = served.model.to_string();
    let d = draft
        .as_mut()
        .ok_or_else(|| GatewayError::Internal("trace missing".into()))?;
    d.rec.model = probe.model.clone();
    d.rec.stream = probe.stream;
    let mut chain = rt.route_chain(&probe.model).peekable();
    if chain.peek().is_none() {
        return Err(GatewayError::UnknownModel(probe.model));
    }
    if !key.allows(&probe.model) {
        return Err(GatewayError::ModelNotAllowed(probe.model));
    }
    // Budgets: reserve what the request may use before any upstream work.
    let now = crate::schedule::now_ms();
    let budgets = state.limiter.budgets_of(&rt.snapshot, key, now);
    let cost_limited = budgets
        .iter()
        .any(|b| b.limits.cost_per_day.is_some() || b.limits.cost_per_month.is_some());
    let mut headroom = None;
    if !budgets.is_empty() {
        let price = match chain.peek() {
            Some(up) if call.op != Op::CountTokens => {
                price_for(rt, cost_limited, up.provider.upstream_model(&probe.model))?
            }
            _ => None,
        };
        let demand = demand::estimate(call, &body, price, state.cfg.default_max_output_tokens);
        let r = state
            .limiter
            .admit(&budgets, &d.rec.request_id, demand, now)
            .await
            .map_err(|e| GatewayError::RateLimited {
                limit: e.limit,
                budget: e.budget,
                budget_id: e.budget_id,
                retry_after_secs: e.retry_after_secs,
                value: e.value,
            })?;
        headroom = Some(r.headroom);
        d.held = Some(Held::new(state.limiter.clone(), r));
    }
    // Charged when a stream is abandoned before the provider reports usage.
    d.prompt_estimate = demand::prompt_tokens(&body) / 2;
    let mut last = None;
    while let Some(upstream) = chain.next() {
        if call.op != Op::CountTokens {
            d.price = price_for(
                rt,
                cost_limited,
                upstream.provider.upstream_model(&probe.model),
            )?;
        }
        let plan = plan(call, &probe, &body, &parts.headers, upstream, strict)?;
        d.rec.dropped_fields = plan.dropped_fields();
        let sent = forward::send(
            &state.client,
            Call {
                upstream,
                path: &plan.path,
                body: plan.body.clone(),
                headers: &plan.headers,
                timeout: state.cfg.upstream_timeout(),
                max_attempts: state.cfg.max_attempts,
                affinity: (upstream.provider.affinity == Affinity::PromptCache)
                    .then(|| crate::affinity::key(&body, &parts.headers))
                    .flatten(),
            },
            d,
        )
        .await;
        match sent {
            Ok(answer) => {
                let mut r = answer_app(state, call, &plan, answer.response, draft).await?;
                if let Some(v) = plan.dropped_header() {
                    r.headers_mut().insert(DROPPED_HEADER, v);
                }
                if let Some(h) = &headroom {
                    ratelimit_headers::success(r.headers_mut(), h);
                }
                return Ok(r);
            }
            Err(e) => {
                let err = in_app_format(e, &plan);
                if chain.peek().is_some() && falls_back(&err) {
                    tracing::info!(provider = %upstream.provider.name, error = %err, "provider failed; trying the next in the route");
                    last = Some(err);
                    continue;
                }
                return Err(err);
            }
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::Internal("no provider was tried".into())))
}

/// The price of what is sent upstream (the model after the provider's
/// `model_map`), not of what the app asked for: an alias cannot make a
/// request cheaper. A request under a cost limit (its key's, user's or
/// team's) is never served a model without a price, which would cost nothing.
fn price_for(
    rt: &Runtime,
    cost_limited: bool,
    upstream_model: &str,
) -> Result<Option<aigw_proto::model::Price>, GatewayError> {
    let price = rt.snapshot.price(upstream_model);
    if price.is_none() && cost_limited {
        return Err(GatewayError::Unpriced(upstream_model.to_string()));
    }
    Ok(price)
}

/// Another provider may succeed where this one failed for capacity or health.
fn falls_back(e: &GatewayError) -> bool {
    match e {
        GatewayError::PoolExhausted { .. } | GatewayError::Upstream { .. } => true,
        GatewayError::UpstreamResponse { status, .. }
        | GatewayError::UpstreamStatus { status, .. } => {
            status.as_u16() == 429 || status.is_server_error()
        }
        _ => false,
    }
}

/// An upstream error body in another format is re-rendered in the app's.
fn in_app_format(e: GatewayError, plan: &Plan) -> GatewayError {
    match e {
        GatewayError::UpstreamResponse {
            status,
            retry_after,
            body,
        } if !plan.native => GatewayError::UpstreamStatus {
            status,
            retry_after,
            message: upstream_message(&body),
        },
        other => other,
    }
}

/// Turns the upstream's answer into the app's: streamed event by event or
/// whole, passed through or translated back, usage metered either way.
async fn answer_app(
    state: &Arc<AppState>,
    call: &AppCall,
    plan: &Plan,
    resp: Response<UpstreamBody>,
    draft: &mut Option<TraceDraft>,
) -> Result<Response<ResBody>, GatewayError> {
    let (up, up_body) = resp.into_parts();
    let content_type = up.headers.get(CONTENT_TYPE).cloned();
    let is_sse = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if plan.stream {
        let (app, target) = (call.format.codec(), plan.target.codec());
        // Gemini without `?alt=sse` streams a JSON array, not events.
        let framing = app.framing(call);
        let app_array = framing == Framing::JsonArray;
        let mode = match (&plan.ir, is_sse) {
            (Some(ir), true) => Mode::Translate {
                decoder: target.stream_decoder(),
                encoder: app.stream_encoder(ir, framing),
            },
            (None, true) if target.stream_usage_on_request() => Mode::OpenAiChat {
                strip_usage_chunk: plan.strip_usage_chunk,
            },
            (None, true) => Mode::Observe(target.stream_decoder()),
            (None, false) if app_array => Mode::JsonArray {
                parser: JsonArrayParser::new(),
                decoder: target.stream_decoder(),
            },
            (None, false) => Mode::Raw,
            (Some(_), false) => {
                return Err(GatewayError::Upstream {
                    provider: draft
                        .as_ref()
                        .map(|d| d.rec.provider.clone())
                        .unwrap_or_default(),
                    detail: "it answered a streaming request without an event stream".into(),
                    timeout: false,
                });
            }
        };
        let d = draft
            .take()
            .ok_or_else(|| GatewayError::Internal("trace missing".into()))?;
        let idle = Duration::from_secs(state.cfg.stream_idle_timeout_secs.max(1));
        let stream = MeteredStream::new(
            up_body,
            mode,
            target,
            d,
            state.traces.clone(),
            up.status.as_u16(),
            idle,
        );
        let mut r = Response::new(Either::Right(stream));
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
        return Ok(r);
    }
    let d = draft
        .as_mut()
        .ok_or_else(|| GatewayError::Internal("trace missing".into()))?;
    let bytes = Limited::new(up_body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| GatewayError::Upstream {
            provider: d.rec.provider.clone(),
            detail: format!("the response body broke off: {e}"),
            timeout: false,
        })?
        .to_bytes();
    d.first_byte();
    let out = if plan.native {
        if call.op != Op::CountTokens
            && let Some(u) = translate::usage_of_body(plan.target, call.op == Op::Embed, &bytes)
        {
            d.usage = u;
        }
        bytes
    } else {
        let answer = translate::decode_response(plan.target, &bytes).map_err(|e| {
            GatewayError::Upstream {
                provider: d.rec.provider.clone(),
                detail: format!("its answer could not be read: {}", e.message),
                timeout: false,
            }
        })?;
        d.usage = answer.usage;
        let encoded = translate::encode_response(call.format, &answer);
        Bytes::from(encoded.map_err(|e| GatewayError::Internal(e.to_string()))?)
    };
    let mut r = Response::new(Either::Left(Full::new(out)));
    *r.status_mut() = up.status;
    let ct = match (plan.native, content_type) {
        (true, Some(ct)) => ct,
        _ => HeaderValue::from_static("application/json"),
    };
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

/// Model listings, in the asking SDK's shape.
pub fn list_models(
    state: &AppState,
    parts: &Parts,
    format: Format,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, parts)?;
    let body = models::list(&rt, &key, format);
    Ok(full(StatusCode::OK, "application/json", body))
}

/// Gemini `GET /v1beta/models/{model}`.
pub fn get_model(
    state: &AppState,
    parts: &Parts,
    model: &str,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, parts)?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    if rt.route(model).is_none() || !key.allows(model) {
        return Err(GatewayError::UnknownModel(model.to_string()));
    }
    Ok(full(
        StatusCode::OK,
        "application/json",
        models::gemini_model(model).to_string(),
    ))
}
