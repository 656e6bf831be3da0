//! Decides, per provider tried, what goes upstream: the provider's format,
//! whether the body passes through or is translated, the path, the body (with
//! the provider's model name) and the few headers that may travel.

use aigw_proto::model::ProviderKind;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use crate::endpoints::{AppCall, Op};
use crate::error::GatewayError;
use crate::providers::openai::ChatRequest as OpenAiProbe;
use crate::runtime::Upstream;
use crate::translate::ir::Drops;
use crate::translate::tool_names::ToolNames;
use crate::translate::{self, Format, UpstreamCall, ir};
use crate::validate;

/// What the gateway read from the app's request before choosing a provider.
pub struct Probe {
    /// The model the request is served as (an alias applied).
    pub model: String,
    /// The model the app named, as its body or path has it.
    pub requested: String,
    pub stream: bool,
    /// OpenAI chat only: the app asked for usage in the stream.
    pub include_usage: bool,
    /// The answer's cap as the app set it (`max_tokens` and its kin).
    pub output_cap: Option<u64>,
    /// How many answers it asks for (`n`, `candidateCount`).
    pub choices: u64,
    /// A Responses job to run in the background (`background: true`).
    pub background: bool,
}

impl Probe {
    pub fn parse(call: &AppCall, body: &[u8]) -> Result<Self, GatewayError> {
        validate::json_body(body)?;
        let probe = if let Some(model) = &call.path_model {
            // Gemini: model and streaming are in the URL; the body must be JSON.
            let caps = serde_json::from_slice::<crate::providers::openai::OutputCaps>(body)
                .map_err(|e| GatewayError::BadJson(e.to_string()))?;
            let model = model.strip_prefix("models/").unwrap_or(model);
            if call.endpoint == crate::embed_batch::ENDPOINT {
                crate::embed_batch::check(body, model)?;
            }
            Self {
                model: model.to_string(),
                requested: model.to_string(),
                stream: call.path_stream,
                include_usage: false,
                output_cap: caps.cap(),
                choices: caps.choices(),
                background: false,
            }
        } else {
            let p = OpenAiProbe::parse(body)?;
            Self {
                requested: p.model.clone(),
                model: p.model,
                stream: p.stream && call.op == Op::Generate,
                include_usage: p.include_usage,
                output_cap: p.output_cap,
                choices: p.choices,
                background: p.background && call.format == crate::translate::Format::Responses,
            }
        };
        validate::model(&probe.model)?;
        Ok(probe)
    }
}

/// The upstream request for one provider.
pub struct Plan {
    /// The provider's format.
    pub target: Format,
    /// Same format on both sides: bodies pass through.
    pub native: bool,
    pub path: String,
    pub body: Bytes,
    pub headers: HeaderMap,
    pub stream: bool,
    /// OpenAI chat pass-through: drop the usage chunk the gateway asked for.
    pub strip_usage_chunk: bool,
    /// The app's request as IR, when translating.
    pub ir: Option<ir::ChatRequest>,
    /// Tool names the target would have refused, sent fitted: the answer's
    /// calls are given back under the app's names.
    pub tool_names: Option<ToolNames>,
    /// Fields of the app's request left out when translating.
    pub dropped: Drops,
}

/// Names the fields dropped from the app's request, so it knows its answer
/// was made without them (the trace keeps them too).
pub const DROPPED_HEADER: &str = "x-aigw-dropped-fields";

/// Longest `x-aigw-dropped-fields` value; the trace keeps the full list.
const MAX_DROPPED_HEADER: usize = 2048;

impl Plan {
    /// `x-aigw-dropped-fields: a, b, …` when something was dropped.
    pub fn dropped_header(&self) -> Option<HeaderValue> {
        if self.dropped.is_empty() {
            return None;
        }
        let mut v = String::new();
        for d in self.dropped.iter() {
            if v.len() + d.field.len() + 2 > MAX_DROPPED_HEADER {
                break;
            }
            if !v.is_empty() {
                v.push_str(", ");
            }
            v.push_str(&d.field);
        }
        HeaderValue::from_str(&v).ok()
    }

    pub fn dropped_fields(&self) -> Vec<String> {
        self.dropped.iter().map(|d| d.field.clone()).collect()
    }
}

/// The provider format a call is served in, and whether that is the app's
/// own: the app's format when the provider speaks it, else (for generation
/// only) the provider's own format, translated.
fn target(call: &AppCall, kind: ProviderKind) -> Result<(Format, bool), GatewayError> {
    if call.format.codec().spoken_by(kind) {
        return Ok((call.format, true));
    }
    if call.op != Op::Generate {
        return Err(refuse(call, kind));
    }
    Ok((Format::from(kind), false))
}

/// A call no provider of `kind` can serve.
fn refuse(call: &AppCall, kind: ProviderKind) -> GatewayError {
    let what = match call.op {
        Op::Embed => "An embeddings request in this format",
        Op::CountTokens => "A token count in this format",
        Op::Generate => "This request",
    };
    GatewayError::Unsupported {
        message: format!(
            "{what} cannot be served by a provider of kind {kind}; route this model to a provider that supports it"
        ),
        param: None,
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a path
/// segment, so a model name stays one segment whatever it holds.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The upstream path for the documented operation: only the model, escaped
/// as a single segment, comes from the request.
fn upstream_path(
    call: &AppCall,
    kind: ProviderKind,
    target: Format,
    native: bool,
    model: &str,
    stream: bool,
) -> Result<String, GatewayError> {
    let model = percent_encoding::utf8_percent_encode(model, SEGMENT).to_string();
    let to = UpstreamCall {
        call,
        model: &model,
        stream,
        native,
    };
    target
        .codec()
        .upstream_path(&to)
        .ok_or_else(|| refuse(call, kind))
}

/// `strict`: the model's route refuses fields the target cannot express
/// instead of dropping hints (`ir::Dropped`).
pub fn plan(
    call: &AppCall,
    probe: &Probe,
    body: &Bytes,
    app_headers: &HeaderMap,
    up: &Upstream,
    strict: bool,
) -> Result<Plan, GatewayError> {
    let kind = up.provider.kind;
    let (target, native) = target(call, kind)?;
    let codec = target.codec();
    let model = up.provider.upstream_model(&probe.model);
    let path = upstream_path(call, kind, target, native, model, probe.stream)?;
    let mut headers = HeaderMap::new();
    codec.upstream_headers(app_headers, native, &mut headers);
    if native {
        // A stream the app did not ask usage for is asked for it anyway (the
        // trace needs the counts); the extra usage chunk is taken out again
        // on the way back.
        let strip_usage_chunk = codec.stream_usage_on_request()
            && call.op == Op::Generate
            && probe.stream
            && !probe.include_usage;
        let new_model = (!codec.model_in_path() && model != probe.requested).then_some(model);
        let out = if strip_usage_chunk || new_model.is_some() {
            crate::body_rewrite::rewrite(body, new_model, strip_usage_chunk)?
        } else if call.endpoint == crate::embed_batch::ENDPOINT && model != probe.requested {
            crate::embed_batch::rename(body, model)?
        } else {
            body.clone()
        };
        return Ok(Plan {
            target,
            native,
            path,
            body: out,
            headers,
            stream: probe.stream,
            strip_usage_chunk,
            ir: None,
            tool_names: None,
            dropped: Drops::default(),
        });
    }
    let mut req = translate::decode_request(
        call.format,
        body,
        call.path_model.as_deref(),
        call.path_stream,
    )
    .map_err(GatewayError::from)?;
    if matches!(target, Format::Anthropic | Format::Gemini) {
        req.refuse_empty_conversation(target.as_str())
            .map_err(|e| GatewayError::from(translate::name_refusal(call.format, e)))?;
    }
    let app_req = req.clone();
    let tool_names = ToolNames::fit(&mut req, target);
    req.model = model.to_string();
    let body = codec
        .encode_request_for(&mut req, kind)
        .map_err(|e| GatewayError::from(translate::name_refusal(call.format, e)))?;
    translate::name_drops(call.format, &mut req.dropped);
    if strict && let Some(d) = req.dropped.strict_refusal() {
        return Err(GatewayError::Unsupported {
            message: format!(
                "`{}` cannot be expressed for {} {} provider, and this model's route is strict; remove it or route this model to a provider that supports it",
                d.field,
                translate::ir::article(target.as_str()),
                target.as_str()
            ),
            param: Some(d.field.clone()),
        });
    }
    Ok(Plan {
        target,
        native,
        path,
        body: Bytes::from(body),
        headers,
        stream: req.stream,
        strip_usage_chunk: false,
        ir: Some(app_req),
        tool_names,
        dropped: req.dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{Endpoint, classify};
    use crate::schedule::Pool;
    use aigw_proto::model::{Glob, Provider, Strategy};
    use http::Method;
    use serde_json::Value;

    fn upstream(kind: ProviderKind, map: &[(&str, &str)]) -> Upstream {
        Upstream {
            provider: Provider {
                name: "p".into(),
                kind,
                base_url: "http://x".into(),
                models: vec![Glob::new("*")],
                strategy: Strategy::RoundRobin,
                keys: vec![],
                model_map: map
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                affinity: Default::default(),
            },
            pool: Pool::new(vec![], Strategy::RoundRobin),
        }
    }

    fn call(path: &str, query: Option<&str>) -> AppCall {
        match classify(&Method::POST, path, query, &HeaderMap::new()) {
            Endpoint::Call(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// A plan with no app headers and a lenient route.
    fn plan_plain(
        c: &AppCall,
        probe: &Probe,
        body: &Bytes,
        up: &Upstream,
    ) -> Result<Plan, GatewayError> {
        plan(c, probe, body, &HeaderMap::new(), up, false)
    }

    #[test]
    fn native_openai_passes_through_with_mapped_model() {
        let c = call("/v1/chat/completions", None);
        let body =
            Bytes::from_static(br#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#);
        let probe = Probe::parse(&c, &body).unwrap();
        let p = plan_plain(
            &c,
            &probe,
            &body,
            &upstream(ProviderKind::OpenAi, &[("fast", "gpt-4o-mini")]),
        )
        .unwrap();
        assert!(p.native);
        assert_eq!(p.path, "/v1/chat/completions");
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["messages"][0]["content"], "hi");
        // Unmapped: the very same bytes go upstream.
        let p = plan_plain(
            &c,
            &probe,
            &body,
            &upstream(ProviderKind::OpenAiCompatible, &[]),
        )
        .unwrap();
        assert_eq!(p.body, body);
    }

    #[test]
    fn include_usage_is_asked_for_only_when_missing() {
        let c = call("/v1/chat/completions", None);
        let up = upstream(ProviderKind::OpenAi, &[("fast", "gpt-4o-mini")]);
        let body = Bytes::from_static(br#"{"model":"m","stream":true,"stream_options":{"x":1}}"#);
        let p = plan(
            &c,
            &Probe::parse(&c, &body).unwrap(),
            &body,
            &HeaderMap::new(),
            &up,
            false,
        )
        .unwrap();
        assert!(p.strip_usage_chunk);
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);

        let body = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let p = plan(
            &c,
            &Probe::parse(&c, &body).unwrap(),
            &body,
            &HeaderMap::new(),
            &up,
            false,
        )
        .unwrap();
        assert!(!p.strip_usage_chunk);
        assert_eq!(p.body, body);

        // Model map and usage in one rewrite.
        let body = Bytes::from_static(br#"{"model":"fast","stream":true}"#);
        let p = plan(
            &c,
            &Probe::parse(&c, &body).unwrap(),
            &body,
            &HeaderMap::new(),
            &up,
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            (
                v["model"].as_str(),
                v["stream_options"]["include_usage"].as_bool()
            ),
            (Some("gpt-4o-mini"), Some(true))
        );
    }

    #[test]
    fn gemini_paths_keep_the_callers_streaming_mode() {
        let body = Bytes::from_static(br#"{"contents":[]}"#);
        let c = call(
            "/v1beta/models/gemini-x:streamGenerateContent",
            Some("alt=sse"),
        );
        let probe = Probe::parse(&c, &body).unwrap();
        assert_eq!(probe.model, "gemini-x");
        let p = plan_plain(
            &c,
            &probe,
            &body,
            &upstream(ProviderKind::Gemini, &[("gemini-x", "gemini-2.5-flash")]),
        )
        .unwrap();
        assert_eq!(
            p.path,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(p.body, body);
        let c = call("/v1beta/models/gemini-x:streamGenerateContent", None);
        let p = plan_plain(&c, &probe, &body, &upstream(ProviderKind::Gemini, &[])).unwrap();
        assert_eq!(p.path, "/v1beta/models/gemini-x:streamGenerateContent");
    }

    #[test]
    fn unsupported_combinations_are_refused_clearly() {
        let c = call("/v1/embeddings", None);
        let body = Bytes::from_static(br#"{"model":"m","input":"x"}"#);
        let probe = Probe::parse(&c, &body).unwrap();
        let Err(e) = plan_plain(&c, &probe, &body, &upstream(ProviderKind::Anthropic, &[])) else {
            panic!("embeddings to anthropic must be refused")
        };
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("anthropic"), "{e}");
    }

    #[test]
    fn anthropic_version_is_supplied_for_anthropic_targets() {
        let c = call("/v1/messages", None);
        let body = Bytes::from_static(br#"{"model":"m","max_tokens":5,"messages":[]}"#);
        let probe = Probe::parse(&c, &body).unwrap();
        let mut h = HeaderMap::new();
        h.insert("anthropic-version", HeaderValue::from_static("2023-01-01"));
        h.insert("anthropic-beta", HeaderValue::from_static("tools-2024"));
        h.insert("x-api-key", HeaderValue::from_static("sk-app"));
        let p = plan(
            &c,
            &probe,
            &body,
            &h,
            &upstream(ProviderKind::Anthropic, &[]),
            false,
        )
        .unwrap();
        assert_eq!(p.headers["anthropic-version"], "2023-01-01");
        assert_eq!(p.headers["anthropic-beta"], "tools-2024");
        assert!(!p.headers.contains_key("x-api-key"));
    }

    #[test]
    fn the_model_cannot_steer_the_upstream_path() {
        // In the body, translated to Gemini: refused before any plan.
        let c = call("/v1/chat/completions", None);
        for model in ["x:batchGenerateContent#", "../../v1/files", "m?alt=json"] {
            let body = serde_json::json!({"model": model, "messages": []}).to_string();
            let Err(e) = Probe::parse(&c, body.as_bytes()) else {
                panic!("{model} must be refused")
            };
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{model}");
        }
        // In a Gemini path: `%2F` and friends never get through.
        let g = call("/v1beta/models/a%2F..%2Fb:generateContent", None);
        assert!(Probe::parse(&g, b"{}").is_err());
        // A name with `/` or `:` that is allowed stays one escaped segment.
        let body = Bytes::from_static(
            br#"{"model":"org/m:1","messages":[{"role":"user","content":"hi"}]}"#,
        );
        let probe = Probe::parse(&c, &body).unwrap();
        let p = plan_plain(&c, &probe, &body, &upstream(ProviderKind::Gemini, &[])).unwrap();
        assert_eq!(p.path, "/v1beta/models/org%2Fm%3A1:generateContent");
    }

    /// A system-only chat is an OpenAI request; Anthropic and Gemini
    /// refuse an empty conversation, so the gateway says so in the app's
    /// terms instead of relaying (and tracing) the provider's refusal.
    #[test]
    fn an_empty_conversation_is_refused_for_providers_that_need_a_turn() {
        let c = call("/v1/chat/completions", None);
        let body = Bytes::from_static(
            br#"{"model":"m","messages":[{"role":"system","content":"be terse"}]}"#,
        );
        let probe = Probe::parse(&c, &body).unwrap();
        for kind in [ProviderKind::Anthropic, ProviderKind::Gemini] {
            let Err(e) = plan_plain(&c, &probe, &body, &upstream(kind, &[])) else {
                panic!("{kind:?}: an empty conversation must be refused");
            };
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{kind:?}");
            assert!(e.to_string().contains("at least one user message"), "{e}");
        }
        assert!(plan_plain(&c, &probe, &body, &upstream(ProviderKind::OpenAi, &[])).is_ok());
    }

    #[test]
    fn dropped_fields_are_named_and_strict_routes_refuse_them() {
        let c = call("/v1/messages", None);
        let body = Bytes::from_static(
            br#"{"model":"m","max_tokens":5,"context_management":{"edits":[]},"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}"#,
        );
        let probe = Probe::parse(&c, &body).unwrap();
        let openai = upstream(ProviderKind::OpenAi, &[]);
        let p = plan(&c, &probe, &body, &HeaderMap::new(), &openai, false).unwrap();
        assert_eq!(
            p.dropped_header().unwrap(),
            "context_management, messages[*].content[*].cache_control"
        );
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert!(v.get("context_management").is_none());
        assert_eq!(v["messages"][0]["content"], "hi");
        let Err(e) = plan(&c, &probe, &body, &HeaderMap::new(), &openai, true) else {
            panic!("a strict route refuses what it would drop")
        };
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
        let msg = e.to_string();
        assert!(
            msg.contains("`context_management`") && msg.contains("strict"),
            "{msg}"
        );
        // Only the cache breakpoint (always dropped): a strict route serves it.
        let cached = Bytes::from_static(
            br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}"#,
        );
        let probe = Probe::parse(&c, &cached).unwrap();
        assert!(plan(&c, &probe, &cached, &HeaderMap::new(), &openai, true).is_ok());
        // The provider's own format: nothing is dropped, strict or not.
        let native = upstream(ProviderKind::Anthropic, &[]);
        let p = plan(
            &c,
            &Probe::parse(&c, &body).unwrap(),
            &body,
            &HeaderMap::new(),
            &native,
            true,
        )
        .unwrap();
        assert!(p.native && p.dropped_header().is_none());
    }

    #[test]
    fn an_alias_renames_the_model_in_a_passed_through_body() {
        let c = call("/v1/chat/completions", None);
        let body = Bytes::from_static(br#"{"model":"claude-haiku-4-5","messages":[]}"#);
        let mut probe = Probe::parse(&c, &body).unwrap();
        probe.model = "gpt-4o-mini".into();
        let p = plan_plain(&c, &probe, &body, &upstream(ProviderKind::OpenAi, &[])).unwrap();
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
    }
}
