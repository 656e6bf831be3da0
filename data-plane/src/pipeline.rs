//! The request pipeline, phase by phase in the order it runs (after
//! pingora's request phases): authenticate → read the body → probe (model,
//! stream) → route (fallback chain, allow-list) → limits (budget
//! reservation) → plan (pass through or translate) → forward upstream
//! (through the pool) → respond (metered, translated back when needed) →
//! logging (budgets charged, trace filed). Each phase is one function
//! here; the work is in the module it names.
//!
//! The request's context ([`RequestCtx`]) is owned by [`serve`], lent to
//! each phase, and moved into the response body when the answer streams,
//! so the logging phase runs exactly once on every path.

use std::iter::Peekable;
use std::sync::Arc;
use std::time::Duration;

use aigw_proto::model::{Affinity, ClientKey, ProviderKind};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};

use crate::body_budget::HeldBytes;
use crate::context::RequestCtx;
use crate::endpoints::{AppCall, Op};
use crate::error::{GatewayError, upstream_error};
use crate::forward::{self, Call};
use crate::plan::{DROPPED_HEADER, Plan, Probe, plan};
use crate::ratelimit::{Enforced, Headroom, Held};
use crate::respond::{Reply, respond};
use crate::runtime::{Runtime, Upstream};
use crate::service::AppBody;
use crate::state::AppState;
use crate::stream::AppStream;
use crate::translate::Format;
use crate::{auth, context_limit, models};
use crate::{demand, ratelimit_headers};

/// The app's answer body: whole, or a metered stream. The stream is boxed so
/// that every response (most are whole) stays a few words wide: responses
/// are moved through several futures, and a stream's state is kilobytes.
pub type ResBody = Either<Full<Bytes>, AppStream>;

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

/// A model call in any format, phase by phase. Files one trace per
/// authenticated call (the logging phase runs on every path: here for a
/// whole answer or an error, in the body for a stream).
pub async fn serve(
    state: &Arc<AppState>,
    parts: Parts,
    body: impl AppBody,
    call: AppCall,
    request_id: &str,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = authenticate(&rt, &parts)?;
    let mut ctx = RequestCtx::new(state, key, &call, &parts, request_id);
    // The answer leaves only once its trace is in the spool (a streamed
    // one waits at its end, in the body).
    match run(state, &rt, key, &parts, body, &call, &mut ctx).await {
        Ok(reply) => {
            let (mut resp, written) = reply.into_response(ctx);
            if let Some(w) = written {
                w.await;
            } else if let Either::Right(stream) = resp.body_mut() {
                stream.prime().await;
            }
            Ok(resp)
        }
        Err(e) => {
            ctx.log_error(&e).await;
            Err(e)
        }
    }
}

/// Phase 1, authenticate: the app's key, from any of the places SDKs put
/// it. An unauthenticated call gets no trace (it has no owner to bill).
fn authenticate<'r>(rt: &'r Runtime, parts: &Parts) -> Result<&'r ClientKey, GatewayError> {
    auth::authenticate(rt, parts)
}

/// A compressed body would read as broken JSON: say what is wrong instead
/// (no official SDK compresses its requests; the providers take none).
fn refuse_encoded_body(parts: &Parts) -> Result<(), GatewayError> {
    let Some(v) = parts.headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = String::from_utf8_lossy(v.as_bytes());
    let encoding = encoding.trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(());
    }
    let shown: String = encoding.chars().take(32).collect();
    Err(GatewayError::InvalidRequest {
        message: format!(
            "Request bodies with Content-Encoding `{shown}` are not accepted: send the JSON body uncompressed."
        ),
        param: None,
    })
}

/// The phases after authentication, up to the answer's head.
async fn run(
    state: &Arc<AppState>,
    rt: &Runtime,
    key: &ClientKey,
    parts: &Parts,
    body: impl AppBody,
    call: &AppCall,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    // A key past a limit is refused before its body is read and parsed.
    let now = crate::schedule::now_ms();
    let budgets = state.limiter.budgets_of(&rt.snapshot, key, now);
    state
        .limiter
        .precheck(&budgets, now)
        .map_err(rate_limited)?;
    refuse_encoded_body(parts)?;
    let deadline = Duration::from_secs(state.cfg.body_timeout_secs.max(1));
    // The body's bytes count against the node's bound until the answer's
    // head is ready (the body is dropped by then).
    let mut held = state.bodies.hold(key.key_hash());
    let body = tokio::time::timeout(
        deadline,
        read_body(parts, body, state.cfg.max_body_bytes, &mut held),
    )
    .await
    .map_err(|_| GatewayError::BodyTimeout {
        secs: deadline.as_secs(),
    })??;
    let (probe, strict) = probe(rt, call, &body, ctx)?;
    let mut chain = route(rt, key, &probe)?;
    let admitted = limits(state, rt, &budgets, call, &body, &probe, chain.peek(), ctx).await?;
    let mut last = None;
    while let Some(upstream) = chain.next() {
        let req = Request {
            call,
            probe: &probe,
            body: &body,
            parts,
            strict,
        };
        let plan = plan_for(rt, &req, upstream, admitted.cost_limited, ctx)?;
        match forward_upstream(state, &req, upstream, &plan, ctx).await {
            Ok(answer) => {
                let mut reply = respond(state, call, &plan, answer, &mut ctx.trace).await?;
                if let Some(v) = plan.dropped_header() {
                    reply.headers_mut().insert(DROPPED_HEADER, v);
                }
                if let Some(h) = &admitted.headroom {
                    ratelimit_headers::success(reply.headers_mut(), h);
                }
                return Ok(reply);
            }
            Err(e) => {
                let err = in_app_format(e, &plan, call.format);
                if chain.peek().is_some() && err.retryable() {
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

/// The app's request, as read and probed.
struct Request<'a> {
    call: &'a AppCall,
    probe: &'a Probe,
    body: &'a Bytes,
    parts: &'a Parts,
    strict: bool,
}

/// Phase 2, probe: the model and whether it streams, read from the body
/// without decoding it whole; an alias route serves the model as another.
/// Also says whether the route is strict (refusing what the provider's
/// format cannot express).
fn probe(
    rt: &Runtime,
    call: &AppCall,
    body: &Bytes,
    ctx: &mut RequestCtx,
) -> Result<(Probe, bool), GatewayError> {
    let mut probe = Probe::parse(call, body)?;
    let served = rt.snapshot.resolve(&probe.model);
    let strict = served.strict;
    probe.model = served.model.to_string();
    ctx.trace.rec.model.clone_from(&probe.model);
    ctx.trace.rec.stream = probe.stream;
    Ok((probe, strict))
}

/// Phase 3, route: the providers to try, in order (a route's fallback
/// chain), if the key may use the model at all.
fn route<'a>(
    rt: &'a Runtime,
    key: &ClientKey,
    probe: &'a Probe,
) -> Result<Peekable<impl Iterator<Item = &'a Arc<Upstream>> + 'a>, GatewayError> {
    let mut chain = rt.route_chain(&probe.model).peekable();
    if chain.peek().is_none() {
        return Err(GatewayError::UnknownModel(probe.model.clone()));
    }
    if !key.allows(&probe.model) {
        return Err(GatewayError::ModelNotAllowed(probe.model.clone()));
    }
    Ok(chain)
}

/// What the limits phase admitted.
struct Admitted {
    /// For the `x-ratelimit-*` headers of the answer.
    headroom: Option<Headroom>,
    /// A budget of the key limits cost: every model served must have a price.
    cost_limited: bool,
}

fn rate_limited(e: crate::ratelimit::Exceeded) -> GatewayError {
    GatewayError::RateLimited {
        limit: e.limit,
        budget: e.budget,
        budget_id: e.budget_id,
        retry_after_secs: e.retry_after_secs,
        value: e.value,
        requested: e.requested,
    }
}

/// Phase 4, limits: reserves in every budget the key counts against what
/// the request may use, before any upstream work (see `ratelimit`). The
/// reservation lives in the context until the logging phase settles it.
#[allow(clippy::too_many_arguments)]
async fn limits(
    state: &AppState,
    rt: &Runtime,
    budgets: &[Enforced],
    call: &AppCall,
    body: &Bytes,
    probe: &Probe,
    first: Option<&&Arc<Upstream>>,
    ctx: &mut RequestCtx,
) -> Result<Admitted, GatewayError> {
    // Input the body only refers to (a stored history, a file) is counted
    // at `AIGW_UNSEEN_INPUT_TOKENS` a reference; counting and embedding
    // calls are free or read only their own text.
    let scanned = demand::scan(body);
    let unseen = match call.op {
        Op::Generate => scanned.unseen.saturating_mul(state.cfg.unseen_input_tokens),
        Op::Embed | Op::CountTokens => 0,
    };
    let prompt = scanned.prompt.saturating_add(unseen);
    // Charged when a stream is abandoned before the provider reports usage.
    ctx.trace.prompt_estimate = prompt / 2;
    let default_output = default_output(state, rt, call, probe);
    if call.op == Op::Generate {
        ctx.trace.output_estimate = probe
            .output_cap
            .unwrap_or(default_output)
            .saturating_mul(probe.choices);
    }
    let now = crate::schedule::now_ms();
    let cost_limited = budgets
        .iter()
        .any(|b| b.limits.cost_per_day.is_some() || b.limits.cost_per_month.is_some());
    // A background job not streamed is answered with its id before it
    // runs, to be fetched later (`GET /v1/responses/{id}`), which the
    // gateway does not proxy: accepted, it would run (and cost) with no
    // way for the app to get its result.
    if probe.background && !probe.stream {
        return Err(GatewayError::invalid(
            "A `background` response is fetched later with `GET /v1/responses/{id}`, which this \
             gateway does not proxy; send it with `stream: true` to receive it as it runs, or \
             without `background`",
            Some("background"),
        ));
    }
    // A background job is answered before it runs, without usage, and
    // fetched later by other calls: what it uses cannot be charged to the
    // budget that admitted it, so a budget of tokens or cost refuses it.
    if probe.background
        && budgets.iter().any(|b| {
            let l = &b.limits;
            l.tokens_per_day.is_some()
                || l.tokens_per_minute.is_some()
                || l.cost_per_day.is_some()
                || l.cost_per_month.is_some()
        })
    {
        return Err(GatewayError::invalid(
            "`background` responses cannot be metered, and this key has a token or cost \
             limit; send the request without `background`",
            Some("background"),
        ));
    }
    if budgets.is_empty() {
        return Ok(Admitted {
            headroom: None,
            cost_limited,
        });
    }
    let price = match first {
        Some(up) if call.op != Op::CountTokens => {
            price_for(rt, cost_limited, up.provider.upstream_model(&probe.model))?
        }
        _ => None,
    };
    let demand = demand::estimate(
        call,
        prompt,
        probe.output_cap,
        probe.choices,
        price,
        default_output,
    );
    let r = state
        .limiter
        .admit(budgets, &ctx.trace.rec.request_id, demand, now)
        .await
        .map_err(rate_limited)?;
    let headroom = r.headroom;
    ctx.held = Some(Held::new(state.limiter.clone(), r));
    Ok(Admitted {
        headroom: Some(headroom),
        cost_limited,
    })
}

/// The answer's cap when the app set none: `AIGW_DEFAULT_MAX_OUTPUT_TOKENS`,
/// or, where the route may translate for Anthropic (which needs a
/// `max_tokens`, and gets the model's own limit: see
/// `anthropic::default_max_tokens`), the largest such limit among the
/// route's providers, fallbacks included, so the reservation covers what
/// the answer may really use whichever serves it.
fn default_output(state: &AppState, rt: &Runtime, call: &AppCall, probe: &Probe) -> u64 {
    let configured = state.cfg.default_max_output_tokens;
    // Only a request without a cap, translated, can be sent another one.
    if probe.output_cap.is_some() || call.format == Format::Anthropic {
        return configured;
    }
    rt.route_chain(&probe.model)
        .filter(|up| up.provider.kind == ProviderKind::Anthropic)
        .map(|up| {
            let model = up.provider.upstream_model(&probe.model);
            crate::translate::anthropic::max_output_tokens(model)
        })
        .fold(configured, u64::max)
}

/// Phase 5, plan: the request for one provider of the route (passed
/// through or translated; see `plan.rs`), and the price of what it sends.
fn plan_for(
    rt: &Runtime,
    req: &Request<'_>,
    upstream: &Arc<Upstream>,
    cost_limited: bool,
    ctx: &mut RequestCtx,
) -> Result<Plan, GatewayError> {
    if req.call.op != Op::CountTokens {
        let model = upstream.provider.upstream_model(&req.probe.model);
        ctx.trace.price = price_for(rt, cost_limited, model)?;
    }
    let plan = plan(
        req.call,
        req.probe,
        req.body,
        &req.parts.headers,
        upstream,
        req.strict,
    )?;
    ctx.trace.rec.dropped_fields = plan.dropped_fields();
    Ok(plan)
}

/// Phase 6, forward upstream: through the provider's pool, credential by
/// credential (see `forward.rs`); every attempt lands in the trace.
async fn forward_upstream(
    state: &AppState,
    req: &Request<'_>,
    upstream: &Arc<Upstream>,
    plan: &Plan,
    ctx: &mut RequestCtx,
) -> Result<forward::Answer, GatewayError> {
    let call = Call {
        upstream,
        path: &plan.path,
        body: plan.body.clone(),
        headers: &plan.headers,
        timeout: state.cfg.upstream_timeout(),
        max_attempts: state.cfg.max_attempts,
        affinity: (upstream.provider.affinity == Affinity::PromptCache)
            .then(|| crate::affinity::key(req.body, &req.parts.headers))
            .flatten(),
    };
    forward::send(&state.client, call, &mut ctx.trace).await
}

// Phase 7, respond: `respond.rs`. Phase 8, logging: `RequestCtx::log`.

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

/// An upstream error body in another format is re-rendered in the app's
/// (a context-window overflow in the words the app's clients act on, see
/// `context_limit`), and so is one in no format at all (an empty body, a
/// proxy's HTML page, a vendor's own shape): only a JSON error object of
/// the app's own format passes through as is.
/// Anthropic's 529 (overloaded) becomes 503 for apps of other formats,
/// whose SDKs know (and retry) only the standard statuses.
fn in_app_format(e: GatewayError, plan: &Plan, app: Format) -> GatewayError {
    match e {
        GatewayError::UpstreamResponse {
            status,
            retry_after,
            body,
        } => {
            let status = match status.as_u16() {
                529 if app != Format::Anthropic => StatusCode::SERVICE_UNAVAILABLE,
                _ => status,
            };
            if plan.native && is_error_object(&body) {
                GatewayError::UpstreamResponse {
                    status,
                    retry_after,
                    body,
                }
            } else {
                let said = upstream_error(&body);
                let overflow = context_limit::detect(&said);
                GatewayError::UpstreamStatus {
                    status,
                    retry_after,
                    message: match overflow {
                        Some(o) => context_limit::message(app, o),
                        None => said.message,
                    },
                    context_overflow: overflow.is_some(),
                }
            }
        }
        other => other,
    }
}

/// A JSON object with an `error` member: the shape all three formats'
/// error bodies share (OpenAI's and Gemini's `{"error":{…}}`, Anthropic's
/// `{"type":"error","error":{…}}`).
fn is_error_object(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(rename = "error")]
        _error: serde::de::IgnoredAny,
    }
    serde_json::from_slice::<Shape>(body).is_ok()
}

/// Reads the app's body, refusing it as soon as it is known to be too large
/// or to take the node past its bound on bodies held (`held` grows with
/// what arrives: a declared length reserves nothing, or requests that
/// declare 16 MiB and send nothing would hold the node's bound for free).
async fn read_body(
    parts: &Parts,
    body: impl AppBody,
    limit: usize,
    held: &mut HeldBytes,
) -> Result<Bytes, GatewayError> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                GatewayError::BodyTooLarge { limit }
            } else {
                GatewayError::invalid(format!("could not read the request body: {e}"), None)
            }
        })?;
        if let Ok(data) = frame.into_data() {
            len += data.len();
            held.grow_to(len)?;
            chunks.push(data);
        }
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut all = bytes::BytesMut::with_capacity(len);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    })
}

/// Model listings, in the asking SDK's shape.
pub fn list_models(
    state: &AppState,
    parts: &Parts,
    format: Format,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, parts)?;
    let body = models::list(&rt, key, format);
    Ok(full(StatusCode::OK, "application/json", body))
}

/// One model: Gemini's `GET /v1beta/models/{model}`, OpenAI's and
/// Anthropic's `GET /v1/models/{model}`.
pub fn get_model(
    state: &AppState,
    parts: &Parts,
    format: Format,
    model: &str,
) -> Result<Response<ResBody>, GatewayError> {
    let rt = live(state)?;
    let key = auth::authenticate(&rt, parts)?;
    let model = match format {
        Format::Gemini => model.strip_prefix("models/").unwrap_or(model),
        _ => model,
    };
    match models::one(&rt, key, format, model) {
        Some(body) => Ok(full(StatusCode::OK, "application/json", body)),
        None => Err(GatewayError::UnknownModel(model.to_string())),
    }
}
